// Package soak holds the churn soak test of the whole system in one
// process: an embedded NATS server with the NODES stream and the MQTT
// listener, the CoAP, MQTT (node logic), MQTT-SN and websocket gateways,
// the command queue and the dashboard.
//
// Distinct node ids come through every edge (simulated nodes of each
// protocol, real sockets on loopback), each one comes online and then goes
// silent or disconnects, so every one goes offline. After the dashboard's
// retention (Config.ForgetAfter) and the stream's own age limit, every
// structure keyed by node ids must be back where it started: no node in
// any gateway or in the dashboard, the same NATS subscriptions, a browser's
// snapshot as small as before, and the live heap (after a GC) within 10 %
// of its start.
//
// The test churns 200 ids per protocol by default (a few seconds of work
// in CI); AIOT_SOAK=N churns N per protocol (the long run is
// AIOT_SOAK=100000, which takes a while: each id is a real client);
// AIOT_SOAK_BATCH=M runs M simulated nodes at once (50 by default),
// AIOT_SOAK_PROTOCOLS=coap,mqtt,mqtt-sn,websocket picks the edges, and
// AIOT_SOAK_PROFILES=DIR writes heap profiles at the start and the end.
package soak
