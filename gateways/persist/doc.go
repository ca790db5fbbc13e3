// Package persist keeps a gateway's node table in JetStream, so that a
// restarted gateway (or a restarted `aiot`, or NATS restarted on the same
// data directory) knows its nodes at once: a CoAP node's values are
// matched to its uid before its next beacon, an MQTT-SN client keeps
// publishing without a new CONNECT.
//
// # Bucket and keys
//
// Entries live in the key-value bucket bus.NodeTablesBucket (NODE_TABLES,
// stream KV_NODE_TABLES, file storage in the data directory), one key per
// node:
//
//	<kind>.<gateway>.<id>      e.g. coap.coap=40lab.AB582D8277D4D97
//	                                mqttsn.mqttsn=40lab.mqtt-2
//
// kind is the gateway's protocol ("coap", "mqttsn"), gateway its instance
// name (--gateway, unique per process: two instances of one name would
// share their entries), id the node's uid or client id. Each token is
// escaped: every byte outside [A-Za-z0-9_-] becomes =XX (upper-case hex),
// so any id maps to a valid key and back (Key, ParseKey). The value is the
// gateway's JSON entry; its doc.go says what is in it.
//
// # Writes: off the hot path, bounded
//
// A gateway calls [Table.Changed] with a node's id whenever what it keeps
// of the node changed (a new node, a move, a topic registered, a
// subscription, a will, a sleep; a node forgotten or evicted). Changed is
// a map insert under the table's own small lock: no I/O, safe under the
// gateway's lock, and never called per value. [Table.Run] writes the
// changed ids at most Config.Delay later, all at once, outside every
// gateway lock: it asks the gateway for their current entries
// (Config.Entries), puts those it gets and deletes the others (a purge
// whose marker is gone after bus.NodeTablesMarkerTTL). A write that fails
// (NATS down, no rights) is tried again later, backing off to 30 s; an
// entry over bus.NodeTablesMaxValue is skipped with a log line. At most
// Config.MaxPending ids wait; past it a change is dropped and counted
// (the next refresh, or the node's next change, writes it). Every
// Config.Refresh (a quarter of bus.NodeTablesTTL) every live entry is
// written again, so that the bucket's TTL only drops the entries of
// gateways that are gone. A gateway that stops flushes its pending
// changes ([Table.Flush]) and deletes nothing: its nodes are still its
// nodes when it starts again.
//
// # Reads: once, at start, distrusting
//
// [Table.Load] creates or binds the bucket and reads this gateway's keys
// (kind and instance name) through one ordered consumer. Every entry goes
// through the gateway's Config.Decode, which checks it as it checks input
// from the network; a key that does not parse, an entry that does not
// decode or names another id, and entries past Config.MaxEntries are
// skipped with a log line, never a failure. Restored nodes are known, not
// online: each gateway publishes them online, through package presence
// and its ownership rules, only when they next speak.
//
// Without the bucket (no JetStream, a server that refuses the rights,
// Load timing out after Config.Timeout) Load returns the error, the
// gateway logs it and runs as before, unpersisted.
package persist
