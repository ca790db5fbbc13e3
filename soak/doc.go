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
// A batch starts only once the goroutines of the one before have ended:
// Go keeps the descriptor of every goroutine it ever ran at once, so
// batches piling up would raise that high-water mark, which is not
// something the ids left behind. The warm-up runs twice the batch.
//
// The test churns 200 ids per protocol by default (about a minute in
// CI); AIOT_SOAK=N churns N per protocol (the long run is
// AIOT_SOAK=100000, about an hour here: each id is a real client);
// AIOT_SOAK_BATCH=M runs M simulated nodes at once (50 by default; MQTT
// nodes at most 50, bound by nats-server's MQTT CONNECT),
// AIOT_SOAK_PROTOCOLS=coap,mqtt,mqtt-sn,websocket picks the edges,
// AIOT_SOAK_PROFILES=DIR writes heap profiles at the start and the end, and
// AIOT_SOAK_WAIT=D waits D (a Go duration; 13 s by default) before each
// reading of the heap. Some state is kept for a minute by design and
// counts in the heap until then: the delete markers of NODE_TABLES
// (bus.NodeTablesMarkerTTL) and the MQTT-SN gateway's per-address limiters.
// At 200 ids it is within the noise; a long run needs AIOT_SOAK_WAIT=75s.
package soak
