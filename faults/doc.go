// Package faults holds goaiot's fault-injection tests: the NATS server
// restarting under running gateways, a gateway process killed and started
// again, the dashboard restarting under its browsers, floods of malformed
// datagrams and of browsers while a good node's values keep arriving, and
// members of a three-member hub cluster killed under two sites, two
// dashboards and their browsers (cluster_test.go; AIOT_CLUSTER_LONG=1 for
// five rounds of kills instead of one). Each test runs real components (in
// process, or the aiot binary) against a real embedded nats-server on
// loopback, counts what was sent and what arrived, and logs the counts
// (go test -v ./faults shows them; the figures are quoted in SECURITY.md).
package faults
