// Package bus is goaiot's NATS layer: the embedded nats-server, client
// connections, the subject tree that mirrors Pyaiot's MQTT topics, the
// payload types carried on it and the NODES JetStream stream.
//
// # Subjects
//
//	node.check                 {"id":"<node>"}           a node announces itself (30 s beacon)
//	node.<node>.resources      ["board","led",…]          the node's resource names
//	node.<node>.<res>          {"value":…}                one value of one resource
//	node.<node>.$state         {"state":"online",…}       presence, published by the owning gateway
//	gateway.<node>.discover    resources | values         ask a node to publish its list or values
//	gateway.<node>.<res>.set   raw payload                a command, sent as a NATS request;
//	                                                      the owning gateway replies {"ok":true}
//	                                                      or {"ok":false,"error":"…"}
//	gateway.check              empty                      every node re-announces itself
//
// MQTT topics map onto subjects exactly as nats-server's MQTT listener maps
// them: "/" becomes ".", "+" becomes "*" and "#" becomes ">". Node ids and
// resource names are single subject tokens; [ValidateNodeID] and
// [ValidateResource] reject anything that is not (".", "*", ">", white space,
// empty, over-long, non-UTF-8) and the reserved names.
//
// # Storage
//
// The NODES stream captures node.> and keeps, per subject, the last value
// plus a bounded history (a count and an age). It is the source of the
// dashboard's snapshot and of chart history; see [EnsureNodesStream].
package bus
