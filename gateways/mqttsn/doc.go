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
// Every PUBLISH (QoS −1, 0, 1, 2) is published on its subject with the
// headers Aiot-Transport: MQTT-SN and Aiot-Address: <host:port of the
// client>. QoS 1 is acknowledged (PUBACK) once the message is handed to the
// NATS connection, QoS 2 is relayed once however often the client re-sends
// it before PUBREL. The retain flag is ignored (NATS keeps no retained
// messages; the NODES stream keeps the last value of every node subject).
// QoS −1 needs no connection and accepts predefined and short topic ids.
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
// and QoS −1 PUBLISH) are answered with DISCONNECT, so that clients of a
// restarted gateway connect again.
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
// log lines about one address are rate limited too. Sessions are capped
// (MaxClients; the longest-silent one is evicted when idle, otherwise
// CONNACK 0x01), as are topic ids (MaxTopics, REGACK 0x01), subscriptions
// (MaxSubscriptions, SUBACK 0x01) and queued messages per client.
package mqttsn
