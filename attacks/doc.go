// Package attacks holds tests that attack goaiot's node-facing edges the way
// a device on the LAN would, with the real clients such a device uses
// (paho and mosquitto_pub for MQTT, raw UDP datagrams for MQTT-SN, gorilla
// for websocket nodes, nats.go and the nats CLI with a role's key), and check
// two things each time: the attack is refused with the documented code or
// reason, and nothing was lost — the NODES stream and every other node's
// stored values are intact, the attacked node keeps its owner and its LED.
//
// SECURITY.md maps every attack to what stops it and to its test here or in
// the package that owns the edge.
package attacks
