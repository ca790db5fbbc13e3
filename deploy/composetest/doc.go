// Package composetest checks the repository's compose.yaml without a
// container engine: it loads the file with the compose-spec loader
// (compose-go, the library of `docker compose`), checks that the hub and its
// sites fit together (leaf URLs, logins, site names, node id prefixes, host
// ports, every AIOT_* variable a real flag of its command), then runs the
// same topology as processes of the real aiot binary on loopback.
//
// It is a module of its own so that compose-go stays out of goaiot's go.mod:
//
//	cd deploy/composetest && go test ./...
package composetest
