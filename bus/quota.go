package bus

// Per-node quotas shared by every node-facing edge (CoAP, MQTT, MQTT-SN,
// websocket). A gateway refuses what exceeds them with a reason, counts the
// refusal and logs it at a bounded rate; the NODES stream refuses stored
// values larger than MaxValueBytes as well (see NodesStreamConfig), so a
// node reaching the bus by a path no gateway sees (nats-server's MQTT
// listener) is held to the same size.
const (
	// DefaultMaxValueBytes bounds one value's payload as published on the
	// bus (node.<id>.<res>, node.<id>.resources, node.check).
	DefaultMaxValueBytes = 4096
	// DefaultMaxResources bounds the resources (distinct subjects) of one node.
	DefaultMaxResources = 256
	// DefaultNodeValueRate is the sustained values per second one node may
	// publish; DefaultNodeValueBurst the burst above it.
	DefaultNodeValueRate  = 50
	DefaultNodeValueBurst = 200
	// DefaultNewNodesPerSource bounds how many new node ids one source
	// (address, connection) may bring per second.
	DefaultNewNodesPerSource = 10
)
