// Package mqttsn is goaiot's MQTT-SN 1.2 gateway: constrained nodes (RIOT's
// emcute, bisquitt, Paho's clients) speak MQTT-SN over UDP and the gateway
// puts their messages straight onto NATS, with no MQTT broker in between
// (Pyaiot needed RSMB for this). It is a pure transport, as nats-server's
// MQTT listener is for MQTT clients: the node logic ($state, discovery,
// gateway.check, command replies) lives in gateways/mqtt and keys off the
// headers set here.
//
// # Topics and subjects
//
// A topic maps onto a subject exactly as nats-server's MQTT listener maps
// it (bus.TopicToSubject): "/" → ".", and in filters "+" → "*", "#" → ">".
// node/check → node.check, node/n1/temperature → node.n1.temperature.
// A topic that cannot be a subject (".", "*", ">", white space, an empty
// level…) is refused with return code 0x02 "rejected: invalid topic id" and
// a log line; it is never remapped onto another subject.
//
// # Client → NATS
//
// Every PUBLISH (QoS −1, 0, 1, 2) the client may send (see "Who may do
// what") is published on its subject with the headers Aiot-Transport:
// MQTT-SN and Aiot-Address: <host:port of the client>. QoS 1 is acknowledged (PUBACK) once the message is handed to the
// NATS connection, QoS 2 is relayed once however often the client re-sends
// it before PUBREL. The retain flag is ignored (NATS keeps no retained
// messages; the NODES stream keeps the last value of every node subject).
// QoS −1 accepts predefined and short topic ids and needs no CONNECT, but
// it needs a session at its address: a node speaks for the id it connected
// with, and an address without a session has none (dropped, counted as
// "anonymous").
//
// Topic ids: REGISTER hands back one id per topic name and client, the same
// id every time the same name is registered again (RIOT's emcute registers
// before every PUBLISH). Predefined ids come from a file (ParseTopics) and
// are the same for every client; short topic names (two characters) travel
// in the id itself. An unknown id is answered with PUBACK 0x02.
//
// # NATS → client
//
// SUBSCRIBE (a topic name with or without wildcards, a predefined id or a
// short name) subscribes on NATS; each message is delivered with the QoS the
// client subscribed with. A topic the client does not know yet is first
// REGISTERed with it. One message at a time is in flight per client (QoS 1
// waits for PUBACK, QoS 2 for PUBREC and PUBCOMP), sent again every
// RetryInterval, Retries times, after which the client counts as lost. When
// several subscriptions of one client match, the client gets the message
// once. A NATS request (gateway.<id>.<res>.set) is delivered like any other
// message; the gateway does not reply (the MQTT node logic does, once the
// node republishes the value).
//
// # Who may do what
//
// One rule for every MQTT edge (bus.ClientNodeIDs, as on nats-server's MQTT
// listener): a client speaks for the node whose id is its CONNECT client id
// (RIOT's emcute uses the node id, e.g. mqtt-2) and, for a client id
// mqtt-<id> (Pyaiot's firmware convention), for <id> too. A client id that
// is neither a valid node id (bus.ValidateNodeID: no ".", "/", "*", ">",
// white space, not "check", "resources", … nor "$…") nor mqtt-<valid id>
// gets CONNACK 0x03. Below, <id> is a node the client speaks for:
//   - it may publish node/<id>/<res> (res a valid resource: never $state or
//     any $ name), node/<id>/resources, and node/check whose JSON payload
//     is {"id":"<id>"} (checked at each PUBLISH);
//   - it may subscribe to gateway/check and to gateway/<id>/# or any filter
//     inside it (gateway/<id>/+/set, gateway/<id>/discover); nothing else
//     (#, gateway/#, another node's commands, _INBOX/#, $JS/…, $SYS/…).
//
// Rights are checked on every REGISTER, every PUBLISH (registered,
// predefined and short topic ids, QoS −1 to 2: a predefined topic from
// --mqttsn-topics is checked when used, not when loaded), SUBSCRIBE
// (wildcards included), WILLTOPIC and WILLTOPICUPD, and again when a will
// is published. Short topic names (two characters) can never be a node's
// topic: they are always refused.
//
// Quotas per client (Config, defaults from bus/quota.go): MaxValueBytes
// per payload (4096), NodeValueRate/NodeValueBurst values per second
// (50/200), MaxResources distinct resources (256, counted at REGISTER and
// at PUBLISH through predefined ids, kept across a clean reconnect of the
// same id, as is the value budget), and NewNodesPerSource new client ids
// per second from one IP address (10; reconnecting a held id is not new).
//
// Return codes (MQTT-SN 1.2 §5.3.10), chosen by what the client should do:
//   - 0x03 "rejected: not supported" for what sending again can never
//     change: REGACK, SUBACK, PUBACK (QoS 1 and 2) for a topic outside the
//     client's rights, a node/check for another id, a payload over
//     MaxValueBytes, one resource over MaxResources; CONNACK for a client
//     id that is not a node id or a will topic outside its rights;
//     WILLTOPICRESP for such a will topic.
//   - 0x01 "rejected: congestion" for quotas that pass with time (the
//     client waits T_wait and tries again, §6.13): PUBACK past the value
//     rate, CONNACK past the new ids of its address.
//   - 0x02 "rejected: invalid topic id" only where the id or name is
//     unusable as such: an id the gateway never handed out, a topic that
//     cannot be a subject. (A client answers 0x02 by registering again,
//     which for a forbidden topic would loop, hence 0x03 there.)
//
// Refused QoS 0 and −1 messages are dropped. Every refusal is counted in
// Stats.Refused by reason (client_id, new_ids, publish_topic, check_id,
// subscribe_topic, will_topic, value_bytes, value_rate, resources,
// anonymous; `nats micro stats aiot-mqttsn`) and logged within the
// gateway's log budget (20 lines a second, the rest summed up in one line;
// package internal/loglimit).
//
// Client ids are claims, not credentials: over plain UDP, whoever sends
// CONNECT (or PINGREQ with a client id) with a held id takes that session
// over, as in MQTT-SN itself. Which transport and gateway an online node id
// belongs to is decided by the node logic (gateways/mqtt), not here.
//
// # Sessions
//
// CONNECT opens a session keyed by client id (clean session discards the
// previous one; otherwise its registrations and subscriptions are kept while
// it is alive). With the will flag the gateway asks WILLTOPICREQ/WILLMSGREQ;
// the will is published on NATS (same headers) when the client is lost:
// silent for 1.5× its keep-alive, asleep for 1.5× its sleep duration, no
// answer after the retries, or evicted. A plain DISCONNECT ends the session
// without the will. DISCONNECT with a duration puts the client to sleep:
// messages for it are buffered (MaxQueue, oldest dropped first) and sent
// when it wakes with PINGREQ carrying its client id, followed by PINGRESP.
// Any message from the client counts as a sign of life.
//
// SEARCHGW is answered with GWINFO to the sender; ADVERTISE is sent every
// AdvertiseInterval to AdvertiseAddr when set. Messages from an address
// with no session (other than CONNECT, SEARCHGW, PINGREQ with a client id
// and QoS −1 PUBLISH, which is dropped) are answered with DISCONNECT, so
// that well-behaved clients connect again. A restart does not end the
// sessions (next section).
//
// # Restarts (NODE_TABLES)
//
// Sessions survive a restart of the gateway, of `aiot` or of NATS on the
// same data directory: RIOT's emcute connects only at boot and ignores a
// DISCONNECT it did not ask for, so a gateway that forgot it would lose it
// until the node reboots. Each session CONNACK accepted is kept in the
// NODE_TABLES key-value bucket (package gateways/persist) under
// mqttsn.<Name>.<client id>: {"v":1,"id","addr":"ip:port","clean",
// "keepalive" and "sleep" (seconds; sleep set: asleep),"will":{"subject",
// "data"},"topics":[{"id","name"}] (registered both ways),"next_topic",
// "subs":[{"filter","qos","type","topic_id","seq"}],"resources" (the
// MaxResources quota),"check" (the node its last node/check announced)}.
// It is written when one of these changes (PersistDelay later, outside the
// gateway's lock; never per PUBLISH nor per REGISTER of a known topic) and
// deleted when the session ends (DISCONNECT, lost, evicted, replaced, a
// clean CONNECT); a gateway that stops keeps it. Messages queued or in
// flight, QoS 2 ids and the value budget are not kept.
//
// Run reads the sessions back before it reads the first datagram, and
// checks each as it checks a client: client id, address, topics that are
// subjects, subscriptions and a will within the client's rights, counts
// within MaxTopics, MaxSubscriptions, MaxResources and MaxClients; a
// session that fails any of it is skipped with a log line, a
// subscription to a predefined id that --mqttsn-topics no longer maps
// the same way is dropped. A restored client goes on as if nothing
// happened: its PUBLISH with an old topic id is accepted, REGISTER hands
// back the same ids, its subscriptions deliver, a sleeping client wakes
// with PINGREQ, and one that stays silent is lost (will published) after
// 1.5× its keep-alive or sleep. Its first message (other than CONNECT or
// DISCONNECT) is preceded on NATS by the node/check it announced before
// the restart, relayed with its headers as if it had sent it, so that the
// MQTT node logic has it online at its first value, not at its next
// beacon; presence and ownership stay the node logic's.
// PersistDelay < 0 turns this off.
//
// The gateway's own message ids start at 0x8000: clients count theirs from
// 1, and some (bisquitt) keep both directions in one table.
//
// # Operations
//
// The gateway registers the NATS micro service "aiot-mqttsn" (`nats micro
// ls`; `nats micro stats aiot-mqttsn` shows Stats); its endpoint "clients"
// on aiot.aiot-mqttsn.clients lists the sessions (`nats req
// aiot.aiot-mqttsn.clients ""`). Node presence ($state) is not kept here but
// by gateways/mqtt, whose service for these nodes is "aiot-mqttsn-nodes".
//
// # Bad input and bounds
//
// Malformed, truncated or wrongly sized datagrams are dropped with a log
// line; every address is rate limited (Rate, Burst) before decoding, and
// log lines about bad input are rate limited too (all addresses together). Sessions are capped
// (MaxClients; the longest-silent one is evicted when idle, otherwise
// CONNACK 0x01), as are topic ids (MaxTopics, REGACK 0x01), subscriptions
// (MaxSubscriptions, SUBACK 0x01) and queued messages per client.
//
// One lock guards the sessions; no socket write happens under it: every
// datagram is encoded under the lock and queued (4 096 at most; past that
// dropped and counted in Stats, like a full socket buffer) for one writer
// goroutine, which sends them in order. NATS publishes (relayed PUBLISH,
// wills, node/check) are still made under the lock, because the PUBACK
// depends on their outcome; nats.go buffers them and writes to the socket
// only when its buffer is full.
package mqttsn
