// Package ws is the websocket node gateway: Linux, Android and Python nodes
// connect to /node on the shared HTTP listener and speak Pyaiot's node
// protocol; the gateway makes them look like every other node on the bus.
//
// # Wire protocol (JSON text frames, as Pyaiot's aiot-ws-gateway)
//
//	node → gw  {"type":"update","data":{"temperature":"21.5°C","led":"0"}}
//	node → gw  {"type":"new","data":"node"}     accepted and ignored (Pyaiot's test client sends it)
//	node → gw  {"type":"out"}                   accepted and ignored
//	node → gw  {"type":"reset"}                 extension: the node rebooted ($state reset, rediscovery)
//	gw → node  {"request":"discover"}           "send me all your values"
//	gw → node  {"endpoint":"led","payload":"1"} a command; the node answers with an update of led
//
// Each pair of an update becomes a value on node.<id>.<res>: a JSON string is
// published as the string, any other JSON value as its JSON text (so
// {"position":{"lat":1}} publishes the string `{"lat":1}`). A resource name
// that is not a safe subject token (".", "*", ">", space, reserved names) is
// skipped with a logged reason. node.<id>.resources is republished whenever
// a new resource appears.
//
// # Identity
//
// A node may ask for its id in the query string, ws://gw:8080/node?id=kitchen,
// so that it keeps its identity (and its history) across reconnects; the id
// must pass bus.ValidateNodeID or the handshake is refused with 400. Without
// it the gateway assigns a random UUID (a valid subject token), as Pyaiot
// does. When a second connection claims an id that is still connected, the
// newer one wins and the older one is closed with 1008: a node that
// reconnects after a network change must not wait for its dead socket to
// time out. Ids are not checked across gateways: a websocket node named like
// a CoAP node would share its subjects.
//
// # Presence
//
// Open → node online ($state), node.check (with bus.HeaderOwner) and a
// discover request. Every frame, ping and pong counts as a sign of life. The
// gateway pings every PingInterval; a node that sends nothing and answers no
// ping for NodeTimeout is closed and goes offline. Close → offline at once.
// gateway.check makes the gateway republish node.check for its nodes;
// gateway.<id>.discover "resources" republishes the list, "values" sends the
// node a discover request.
//
// # Commands
//
// A NATS request on gateway.<id>.<res>.set sends {"endpoint":res,
// "payload":<request data as a string>} and replies {"ok":true} as soon as
// the node sends an update of res with that value. An update of res with
// another value is the node's refusal ({"ok":false,"error":"node answered
// led=\"0\""}) unless the asked value follows within a second (the other
// value may have been in flight before the node read the command). No
// update within CommandTimeout, or a disconnect, replies an error too.
// Pyaiot itself had no reply at all: success was only seen in a later update.
//
// # Limits and bad frames
//
// A frame that is binary, not JSON, not an object, of an unknown type, or an
// update whose data is not an object closes the socket with 1003 and a reason
// (Pyaiot's rule). Frames above MaxFrameBytes close with 1009; frames above
// FrameRate (token bucket of FrameBurst) close with 1008; a node with more
// than MaxResources resources gets the extra ones skipped; past MaxNodes new
// connections close with 1013.
//
// # Origin policy
//
// The handshake accepts any Origin. Nodes are programs, not browsers: the
// Python websocket-client library sends an Origin made up from the URL,
// Android and embedded clients send whatever they like or none, so an
// allow-list would only break real nodes. An origin check protects a
// browser user's ambient credentials (cookies) from other sites; /node uses
// no credentials at all and is, like Pyaiot's, open to anyone who can reach
// it (as are CoAP, MQTT-SN and MQTT). Restrict who can reach it with the
// listen address, a firewall or a reverse proxy. The browser endpoint of
// the dashboard (/ws) is where an origin policy belongs.
package ws
