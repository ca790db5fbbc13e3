// Package mqtt is the node logic of MQTT and MQTT-SN nodes on goaiot's
// subject tree (role `aiot mqtt`), plus an optional bridge to an external
// broker (package bridge) and a simulated node (package mqttsim).
//
// # Who carries the nodes
//
// The subjects are Pyaiot's MQTT topics with "/" → ".", so the node logic
// does not care how a node's messages reached the bus:
//
//   - MQTT nodes connected to nats-server's MQTT listener (the embedded one of
//     `aiot run`, --mqtt-listen) publish straight onto the subjects: no
//     translation at all. Their messages carry no goaiot header.
//   - MQTT nodes on an existing broker (mosquitto, RSMB, EMQX…) reach the bus
//     through the bridge (--mqtt-broker); its messages carry bridge.HeaderBridge
//     (this gateway's bridge name) and bus.HeaderAddress (the broker URL).
//   - MQTT-SN nodes (RIOT's emcute) reach it through the MQTT-SN gateway, a
//     pure transport; its messages carry bus.HeaderTransport "MQTT-SN" and
//     bus.HeaderAddress (the node's UDP address). Their $state says protocol
//     "MQTT-SN" and carries that address.
//
// node.check messages that carry bus.HeaderOwner come from gateways that own
// their nodes themselves (CoAP, websocket): they are ignored, never claimed.
// The gateway's one node.check subscription also feeds its two trackers,
// which follow the other gateways' claims (presence.Config.SharedChecks).
//
// # Identity
//
// A listener node's connection may publish only its own node.<id>.* and
// node.check, and receive only gateway.<id>.> and gateway.check; its id is
// its MQTT client id, or <id> for a client id "mqtt-<id>" (bus.edgeAuth,
// bus.ClientNodeIDs). node.check still names any id, so from the listener
// it is only a claim: the gateway subscribes to node.X.> and asks X for its
// resources, and X becomes a node at the first message on its own subjects
// (the list, a value), which only X's connection can publish. At most 1 024
// claims wait for their proof (the oldest pushed out first), each for
// 6 × RediscoverInterval. MQTT-SN nodes' checks come from the MQTT-SN
// gateway, which already holds each client to its own id, and bridged
// nodes' from the broker this gateway bridges: both are claimed at once.
// An id online at another gateway is never claimed (package presence).
//
// # Protocol (Pyaiot §4, with its bugs fixed)
//
//	node.check {"id":X}       new X: subscribe node.X.>, publish gateway.X.discover
//	                          "resources"; $state online once proven (listener)
//	                          or at once (MQTT-SN, bridge). Known X: refreshed;
//	                          still without resources: asked again (≤ every 5 s)
//	node.X.resources [..]     publish gateway.X.discover "values" (≤ once a second)
//	node.X.<res> {"value":v}  a sign of life; confirms a pending command of v on <res>
//	gateway.check             published at start and every 30 s (--mqtt-check-interval)
//	silence > --node-timeout  $state offline (default 120 s), node.X.> unsubscribed
//
// The node id is the one in node.check, not a random uuid as in Pyaiot, and
// everything is awaited. Ids and resource names must be single subject
// tokens: a node.check with an unsafe id, malformed JSON, a bad resource list
// or a value without "value" is dropped with a log line (at most one per
// reason per second) and counted in Stats.Dropped. Each owned node has its own
// channel subscription (node.X.>) into one of 16 lanes, chosen by a hash of
// its id, and one worker per lane handles them: a node's messages keep their
// order and the gateway holds 16 goroutines whatever its number of nodes. A
// lane holds 4 096 pending messages; past that nats.go drops them and reports
// a slow consumer on the node's subscription, so a node flooding its subjects
// delays and overflows only its lane (1/16 of the nodes), never the others;
// the bridge also holds each node to a message rate (--mqtt-node-rate) before
// anything reaches the bus. At most MaxNodes (--max-nodes, 100 000) nodes per
// transport: a new id past it is refused, logged ("node refused") and
// counted (Stats.MQTT.Refused, Stats.MQTTSN.Refused). Stats.Tracked and
// Stats.Claims count the entries of the gateway's own tables; an id that
// went offline, or a claim dropped, leaves both (TestChurnLeavesNothing;
// AIOT_SOAK=100000 for the long run).
//
// # Commands and their delivery guarantee
//
// A command is a NATS request on gateway.X.<res>.set. The presence tracker of
// the node's transport (MQTT or MQTT-SN; each receives every command of the
// bus and answers only for the nodes it owns) answers it by
// the one rule of package presence: {"ok":true,"code":"ok"} once the node
// republishes node.X.<res> with the commanded value (the payload; for a
// JSON value, its JSON text); code "refused" when it republished another
// value and not the commanded one within a second after it (that value may
// have been in flight); code "timeout" after --mqtt-command-timeout (5 s)
// without either (a node that refuses a payload, like the LED firmware
// given "5", just republishes nothing). If
// the node's latest value, reported within the command timeout before the
// tracker's handler ran, already is the payload, it confirms the command:
// the node may answer the request, which reaches it directly, before that
// handler runs (on a loaded machine, seconds before), and a node already in
// the commanded state is in it. The node must get the command exactly once, so who delivers
// it depends on the transport:
//
//   - Listener nodes: nats-server's MQTT listener delivers a message published
//     by a NATS client (the request itself) to every MQTT subscription on that
//     subject, at QoS 0 whatever the subscription's QoS: its QoS 1 path only
//     carries messages stored in its $MQTT_msgs stream with an "Nmqtt-Pub"
//     header, which only MQTT publishers produce (mqttDeliverMsgCbQoS0 and
//     mqttDeliverMsgCbQoS12 in nats-server/server/mqtt.go). A NATS publisher
//     cannot ask for QoS 1 short of writing into that internal stream, and
//     even then the plain request would still be delivered at QoS 0 as well,
//     i.e. twice. So the gateway does not send anything: the request reaches
//     the node once, at QoS 0 (at most once), and the reply tells whether the
//     node acted on it. A lost command ends in a timeout error; the sender may
//     retry.
//   - MQTT-SN nodes: the MQTT-SN gateway subscribes to the subjects its
//     clients subscribed to, so the request reaches it and it delivers it.
//     The gateway does not send anything either; the guarantee is the MQTT-SN
//     gateway's. RIOT's emcute firmware subscribes to nothing: its commands
//     time out.
//   - Bridged nodes: the request does not reach the external broker (the
//     bridge relays only gateway.check and gateway.X.discover), so the gateway
//     publishes gateway/X/<res>/set there itself, once, at QoS 1, and waits
//     for the broker's PUBACK and then the republished value. From the broker
//     to the node it is QoS 1 (at least once) if the node subscribed at
//     QoS 1: a redelivery then carries MQTT's DUP flag. A command is refused at
//     once while the broker is disconnected, never queued for later.
//
// Other messages: gateway.check and gateway.X.discover are published on NATS,
// hence reach listener nodes at QoS 0; a lost discover is repaired by the
// re-ask at the next node.check. The bridge relays them to the broker at
// QoS 1. Node messages from the broker come with QoS 1 on a persistent session
// (kept while the bridge reconnects), and a redelivered message the bridge
// already relayed (DUP flag, same packet id, topic and payload) is dropped, so
// they reach the bus once; node messages on the listener are the listener's.
//
// # Limits
//
// Run one MQTT gateway per NATS server: two would both claim the listener's
// nodes (under one gateway name both would own them and answer each command,
// twice: no queue group, see package presence). Do not
// point --mqtt-broker at the embedded listener itself, nor bridge the
// external broker to the listener: each relays node topics onto the same
// subjects, so every value would arrive twice.
package mqtt
