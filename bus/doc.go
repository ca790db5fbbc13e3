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
//	aiot.claims.refused        {"uid","owner","claimant"} a gateway refused to claim an id
//	                                                      another gateway owns ([ClaimRefused])
//	aiot.commands.<node>.<res>.result  {"command","ok","code",…}  the outcome of a command that
//	                                                      waited for its offline node
//	                                                      ([CommandResult], gateways/queue)
//
// Every gateway subscribes to gateway.*.*.set once and answers only for the
// nodes it owns ([CommandNode] reads the node token). A set request to a
// node no gateway owns is answered by the queue (gateways/queue): with the
// header Aiot-Queue-For: <duration> ([HeaderQueueFor]) to an offline node,
// {"ok":true,"code":"queued","command":ID,"until":…}; without it to a node
// known offline, {"ok":false,"code":"offline",…}; to an id never seen,
// {"ok":false,"code":"no_gateway",…}.
//
// MQTT topics map onto subjects exactly as nats-server's MQTT listener maps
// them: "/" becomes ".", "+" becomes "*" and "#" becomes ">". Node ids and
// resource names are single subject tokens; [ValidateNodeID] and
// [ValidateResource] reject anything that is not (".", "*", ">", white space,
// empty, over-long, non-UTF-8) and the reserved names.
//
// # Who may do what
//
// The embedded server authenticates every connection itself (edgeauth.go,
// nats-server's custom client authentication), with or without an [Auth]:
//
//	nkey or password user of a role      RolePermissions (admin: anything)
//	user of role node, MQTT client       NodePermissions: its own node.<id>.*
//	  without credentials                (never $state) and node.check; receives
//	                                     gateway.<id>.> and gateway.check. The id
//	                                     is the user name, or the MQTT client id
//	                                     (<id> or mqtt-<id>, ClientNodeIDs)
//	leaf node                            a LeafUser (any leaf when none is set)
//	NATS client without credentials      admin without Auth (loopback default),
//	                                     refused with it
//
// So no node-facing endpoint reaches $JS, $SYS, _INBOX, aiot.> or another
// node's subjects; the MQTT-SN and websocket gateways apply the same rule
// to their clients (SpeaksFor), and per-node quotas (quota.go).
//
// # Storage
//
// The NODES stream captures node.> and keeps, per subject, the last value
// plus a bounded history (a count and an age). It is the source of the
// dashboard's snapshot and of chart history; see [EnsureNodesStream]. It
// refuses a message above MaxMsgSize (8 KiB) and, once MaxBytes is reached,
// new messages rather than old ones (DiscardNew): no node, however loud,
// evicts another node's history.
//
// The NODE_TABLES key-value bucket ([NodeTablesBucket], stream
// KV_NODE_TABLES) keeps the gateways' node tables across restarts (package
// gateways/persist): keys <kind>.<gateway>.<id>, one JSON entry each,
// bounded per entry, in total and in age ([NodeTablesConfig]). Only the
// gateway role may use it ([NodeTablesRights]); no node-facing endpoint
// reaches $KV or $JS.
//
// # Clustering
//
// With a [ClusterConfig] the embedded server is a member of a NATS cluster
// (routes, clustered JetStream); nothing else changes for the parts. Every
// member has its own Name and data directory. [Server.WaitJetStream] waits
// for a meta leader (a quorum of members) before the stream is made.
// StreamConfig.Replicas (1 to [MaxReplicas], checked by [CheckReplicas])
// applies to NODES, and [EnsureNodeTablesReplicas] to NODE_TABLES. Members
// make NODES at the same moment: JetStream answers only one of identical
// creates in flight, so setup goes through [RetryJetStream]. A process
// against an external NATS takes NODES as it is ([UseNodesStream]).
// Values are published with core NATS: while a stream elects a new leader,
// values published straight into the cluster are delivered live but not
// stored; a site's values are stored at the site first and sourced by the
// hub, which loses none (docs/scaling.md).
package bus
