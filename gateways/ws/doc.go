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
// does. Ids are not checked across gateways: a websocket node named like a
// CoAP node would share its subjects.
//
// Per-node tokens are optional (Config.Tokens, --ws-node-tokens FILE; lines
// "<node id> <sha256 of the token in hex>", written with the tokens by
// `aiot keys --ws-node-ids id,…`). An id listed there connects only with
// its token, as ?token=… or Authorization: Bearer …; without it, or with
// another, the handshake gets 401. The file holds hashes so that it is not
// itself every node's credential; SHA-256 rather than bcrypt because the
// tokens are 256 random bits (no dictionary to slow down) and bcrypt would
// let anyone who reaches /node spend tens of milliseconds of CPU per
// handshake. Ids not listed need no token, as in Pyaiot.
//
// When a connection claims an id that is still connected, it replaces the
// older connection (closed with 1008 "replaced…") only if
//   - it proved the id with the node's token, or
//   - the older socket is dead: the gateway pings it and it shows no sign
//     of life (pong, ping or frame) within TakeoverWait (2 s).
//
// Otherwise the newcomer is closed with 1008 "id in use" right after its
// handshake, and the node keeps its connection and its values: a node that
// reconnects after a network change waits at most TakeoverWait for its dead
// socket, and nobody else takes a live node's id by simply asking for it.
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
// "payload":<request data as a string>} and replies by the one rule of
// package presence: {"ok":true,"code":"ok"} as soon as the node sends an
// update of res with that value; an update of res with another value is the
// node's refusal ({"ok":false,"code":"refused","error":"refused: the node
// reported led=\"0\", not \"5\""}) unless the asked value follows within a
// second (the other value may have been in flight before the node read the
// command). No update within CommandTimeout replies code "timeout", a
// disconnect code "refused".
// Pyaiot itself had no reply at all: success was only seen in a later update.
//
// # Limits and bad frames
//
// A frame that is binary, not JSON, not an object, of an unknown type, or an
// update whose data is not an object closes the socket with 1003 and a reason
// (Pyaiot's rule). Frames above MaxFrameBytes close with 1009; frames above
// FrameRate (token bucket of FrameBurst) close with 1008; past MaxNodes new
// connections close with 1013. The per-node quotas of bus/quota.go skip a
// value, with a reason, a counter and a log line (at most 10 a second), and
// leave the socket open:
//   - a value larger than MaxValueBytes (4096) once published on the bus
//     (its text in the {"value":…,"ts":…} envelope);
//   - values past ValueRate per node (50/s, bursts of 200; values, not
//     frames: one frame may carry many; --ws-value-rate);
//   - a new resource past MaxResources (256) per node, or one whose name is
//     not a safe subject token.
//
// New node ids are rate limited per source IP address (the TCP peer; proxy
// headers are not trusted): past NewIDsPerSource (10/s, --ws-new-nodes) a
// handshake whose id is not connected here, generated ids included, gets
// 429. Token-proven ids are not counted. Behind a reverse proxy every node
// shares the proxy's address: raise the rate or turn it off (negative).
//
// Stats, which `nats micro stats aiot-ws` shows, count Takeovers and
// Refusals by reason: origin, bad_id, token, new_ids_rate, id_in_use,
// value_too_large, value_rate, too_many_resources, bad_resource.
//
// # Origin policy
//
// Nodes are programs, not browsers, but a browser page of any site its user
// visits could otherwise open /node from inside the user's network and
// claim node ids. So the handshake admits a request with no Origin header
// (Pyaiot's Android and embedded clients, most libraries), one whose Origin
// names the host it is sent to (gorilla's default rule; the Python
// websocket-client library makes its Origin up from the URL), and origins
// of the allow-list (Config.AllowOrigins, --ws-allow-origin
// scheme://host[:port], or * for any); any other gets 403 before the
// upgrade, so it cannot disturb a connected node. Unlike the dashboard's
// /ws, pages served from localhost are not admitted. The check is no
// authentication: a program sends the Origin it likes. Restrict who can
// reach /node with the listen address, a firewall or a reverse proxy, and
// protect ids with tokens.
//
// # Memory per node
//
// An idle node costs no goroutine on Linux over plain TCP (one, its
// reader with a 2 KiB stack, elsewhere and behind TLS): gorilla's
// connection and goaiot's session, its presence entry, a ping timer and a
// deadline timer; no read or write buffer, no rate limiter (both are made
// when the node sends its first frame). The session runs outside
// net/http's handler, which frees the 8 KiB of buffers a hijacked
// connection otherwise keeps. A node silent for wspark.DefaultLinger
// (250 ms; a busy node keeps its reader goroutine) has its socket parked
// in the gateway's epoll set (wspark.Conn.Park; the poller runs with Run)
// and a goroutine is started when bytes come; where it cannot park, the
// reader waits in wspark.Conn.Wait, a shallow call at the top of its own
// function, and starts again on a fresh goroutine, so the stack that
// handling took is not kept. Either way no read buffer is held while
// waiting (lent from a pool only while frames are read); pings and pongs
// are answered from the buffer by wspark.Conn.Control, other frames by
// gorilla. A silent node is still cut at NodeTimeout: wspark resumes a
// parked reader at its read deadline (package wspark). Frames to the
// node wait in a queue of at most SendQueue and are written by a
// goroutine that runs only while the queue is not empty, with a write
// buffer taken from a pool; pings go out from a timer. Figures in
// BENCHMARKS.md ("Idle websocket nodes").
package ws
