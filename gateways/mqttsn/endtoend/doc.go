// Package endtoend holds tests of the whole MQTT-SN path: simulated RIOT
// nodes (snsim) → the MQTT-SN gateway → NATS ← the MQTT node logic
// (gateways/mqtt), which publishes $state and answers commands. It has no
// code of its own; it is a package apart so that the gateway's own tests
// do not depend on gateways/mqtt.
package endtoend
