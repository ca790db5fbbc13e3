// Package bench is the load tool behind `aiot bench`: it drives a running
// goaiot (or any Pyaiot-compatible) system, or one it starts itself as a
// child `aiot run`, with simulated nodes of every protocol and simulated
// browsers, and reports throughput, loss, end-to-end latency and the
// server's CPU and memory.
//
// # What is measured
//
// Every value a simulated node sends carries the run id, the node's index,
// a per-node sequence number and the send time:
//
//	<run>/<node>/<seq>/<ns since the run's epoch>
//
// (CoAP: "b<k>:<value>" POSTed to /server; websocket: {"type":"update",
// "data":{"b<k>":<value>}}; MQTT and MQTT-SN: {"value":<value>} on
// node/<id>/b<k>). Resource b<k> is seq mod Resources. Each receiver (a
// browser on /ws, or a NATS subscriber on node.> for the bus stage) keeps a
// bitmap of the sequence numbers it got per node, so loss is counted, never
// inferred: a value not received is "superseded" when a later value of the
// same node and resource reached that receiver (the dashboard's documented
// coalescing for a browser that falls behind), and "lost" otherwise.
// Latency is the receive time minus the send time, both read from the same
// monotonic clock of this process, in an HDR histogram (1 µs to 60 s, three
// significant digits).
//
// Rows with several browsers also give the spread between the slowest and
// the fastest browser: values received per second and p99 latency.
//
// # The dashboard alone
//
// Scenario dashboard publishes the values itself on node.<id>.<res> (after
// an online $state per node), as a gateway would, so that no gateway's
// ingest bounds the rate: it measures bus → dashboard → browsers, beside
// the same load received by one bare NATS subscriber per browser on the
// same server. --rate max publishes as fast as the server takes it (a
// flush every 1 000 values); browsers that fall behind then get the
// latest value per resource (counted "superseded"). --dashboards N starts
// N-1 `aiot dashboard` processes on the same NATS beside the system's own
// dashboard and spreads the browsers over them round robin; the row's CPU
// and memory are the sum of those processes.
//
// # Nodes
//
// CoAP nodes are simulated by one UDP socket bound to the wildcard address:
// node i sends from its own loopback address (127.1.0.1, 127.1.0.2, …, set
// per datagram with IP_PKTINFO) and the same socket answers the gateway's
// discovery GETs and command PUTs addressed to any of them, on the node
// port the gateway uses. One socket thus holds 100 000 nodes without
// 100 000 file descriptors, exactly as RIOT nodes look to the gateway (one
// address each, server on a fixed port). Websocket nodes are gorilla
// clients on /node, MQTT nodes paho clients (scale-mqtt: raw connections
// with paho's packet codec only, one open file each, over 127.1.0.x
// sources), MQTT-SN nodes raw UDP clients speaking gateways/mqttsn/packet.
// scale-ws holds idle websocket nodes: one /node?id= connection each,
// answering only the gateway's pings (the per-node cost of an idle node);
// against Pyaiot, whose gateway gives each node a random uid, each node
// sends its id once as its "name" resource and is counted by that update.
// Each row's start_rss_mb (JSON) is the system's memory when the phase
// began: peak minus start over the nodes is the cost per node, for a
// self-started goaiot and for an external system given with --pids alike.
//
// # Server
//
// Without target addresses, bench starts `aiot run` as a child process on
// random loopback ports with a temporary data directory, and reads its CPU
// time from /proc/<pid>/stat and its resident memory from
// /proc/<pid>/status (VmRSS sampled every 50 ms, VmHWM reset per scenario
// through /proc/<pid>/clear_refs). A child keeps the load generator's own
// memory and CPU out of the server's numbers, which an in-process server
// could not. The child runs with the node-facing limits that would stop
// the load tool's nodes lifted (new ids per source, websocket frames and
// values per second, MQTT-SN datagrams per address and values per node,
// CoAP discovery rate): the edges' limits are measured by their own tests,
// not here.
//
// A running system is given by its addresses (--http, --ws-url,
// --node-url, --nats, …); --pids names its processes so that the same
// CPU and memory figures are read for it, summed: a goaiot started by hand,
// or Pyaiot's broker and websocket gateway (--target pyaiot), measured
// side by side with a self-started goaiot under the same load.
//
// With --cpu-profiles DIR, the server runs with --pprof and each
// scenario's measurement leaves a CPU, a block and a mutex profile in DIR
// (<scenario>.pprof, <scenario>.block.pprof, <scenario>.mutex.pprof). The
// dashboard scenario with its browsers still connected, and the scale
// scenarios at the end of registration and of the hold, also leave a heap
// profile, a goroutine profile and the heap profile as text, which ends
// with the runtime's MemStats (StackInuse among them): <name>.heap.pprof,
// <name>.goroutine.pprof, <name>.heap.txt, with name <scenario>,
// <scenario>-register or <scenario>-hold.
//
// Baselines run in the same invocation: raw NATS publish/subscribe on the
// server's own NATS (the floor of the bus), a no-op go-coap server (a child
// `aiot bench --noop-coap` answering 2.04), and a mosquitto child for MQTT.
//
// All traffic goes to 127.0.0.0/8: every address given is checked.
package bench
