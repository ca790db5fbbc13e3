// Package dashboard is the websocket fan-out service between the bus and the
// browsers, and the server of the embedded web app.
//
// # Browser protocol (path /ws)
//
// JSON objects, one per text frame (several, a line each, for goaiot's page
// when it asks), compatible with Pyaiot's dashboard. The fields marked "ext"
// are goaiot extensions; Pyaiot's page ignores them.
//
// Dialects, chosen at the handshake:
//   - /ws?ext=1 (goaiot's page): everything below, hello first.
//   - /ws?ext=1&batch=1 (goaiot's page since issue 17): the same, but a
//     text frame may hold several messages, one JSON object a line ('\n'
//     between them, none after the last; a message never holds a raw
//     newline), at most 64 KiB of them (a larger message has a frame of
//     its own), from the first frame on; hello says "batch":true.
//     Without batch=1 every message has a frame of its own.
//   - /ws (Pyaiot's page, and any client that does not ask): exactly what
//     Pyaiot's broker sends. No extension message (hello, synced, result,
//     history, site, collision, refused); the snapshot leaves offline nodes
//     out (Pyaiot's page would draw them, then drop them); and each "new"
//     (and "reset") is followed by the node's seed values as Pyaiot's
//     gateways sent them, which its page lists in the node menu:
//     update "protocol" (CoAP, MQTT, MQTT-SN, WebSocket), and "ip" for a
//     CoAP node or "id" for an MQTT node. Extra fields of new/update stay
//     (Pyaiot's page ignores them).
//
// Browser to server:
//
//	{"type":"new","data":"client"}
//	    Subscribe. The server answers with the snapshot: for every known node
//	    a "new", then one "update" per last known value, then for nodes that
//	    are offline an "out"; then {"type":"synced"} (ext). Live messages
//	    follow. Sending "new" again resends the snapshot (resync).
//	{"type":"update","data":{"uid":U,"endpoint":E,"payload":P},"id":"c1"}
//	    Command: becomes a NATS request on gateway.U.E.set with payload P.
//	    "id" (ext, optional) is echoed in the "result" message.
//	    "queue_for":S in data (ext, /ws?ext=1 only; seconds, 1 to one year)
//	    asks that the command wait up to S seconds for an offline node: the
//	    request carries Aiot-Queue-For (see package gateways/queue). Any
//	    other queue_for closes the socket (1003); plain /ws ignores it.
//	{"type":"history","data":{"uid":U,"endpoint":E,"limit":N},"id":"h1"}  (ext)
//	    Asks for the stored values of one resource (oldest first). limit
//	    defaults to 100 and is capped at 1000; "id" (optional) is echoed.
//
// A command's endpoint may start with '/' (stripped, as Pyaiot's page does);
// its payload is a string, or a number or boolean sent as its JSON text.
//
// Server to browser:
//
//	{"type":"new","uid":U,"site":S,"gateway":G,"protocol":P,"address":A,
//	 "state":"online"|"offline"|"reset","ts":MS}
//	    A node appeared (or is part of the snapshot). site..ts are ext.
//	{"type":"update","uid":U,"endpoint":E,"data":"value","ts":MS}
//	    A value. data is always a string, exactly as the node sent it (JSON
//	    values such as position or imu are sent as their JSON text).
//	{"type":"out","uid":U,"ts":MS}
//	    The node went offline. Pyaiot's page removes the card; goaiot's page
//	    greys it out.
//	{"type":"reset","uid":U,"ts":MS}
//	    The node rebooted: forget its values, they are rediscovered.
//	{"type":"synced","nodes":N}                                          (ext)
//	    End of a snapshot.
//	{"type":"history","id":"h1","uid":U,"endpoint":E,"points":[{"ts":MS,"data":"v"},…]} (ext)
//	    The answer to a history request, to that browser only. On failure
//	    points is empty and "error" says why (bad uid, stream unavailable).
//	{"type":"result","id":"c1","uid":U,"endpoint":E,"ok":true,"code":"ok"} (ext)
//	{"type":"result","id":"c1","uid":U,"endpoint":E,"ok":false,"code":"timeout","error":"timeout: …"}
//	    The outcome of a command, sent only to the browser that sent it.
//	    ok is true once the owning gateway said the node accepted it. code
//	    is what to switch on (bus.Code*): ok, queued, timeout, refused,
//	    no_gateway, forbidden, busy, bad_request (an unsafe uid or
//	    endpoint), offline, queue_full, error (the bus failed). error
//	    is for people: the gateway's refusal (e.g. "4.00 Bad Request"), "timeout: …",
//	    "no gateway serves node U" (nobody answered and the node is not
//	    online here: no queue runs; with one, its no_gateway reply), a
//	    validation error for an unsafe uid or
//	    endpoint, "forbidden: role viewer may not send commands (log in as
//	    an operator)", "forbidden: session ended (log in again)" (after a
//	    logout or expiry), "read-only dashboard: …" or "busy: …" (over the
//	    limit of requests in flight), "node U is offline: …" (no queue_for).
//	{"type":"result","id":"c1","uid":U,"endpoint":E,"ok":true,"code":"queued",
//	 "command":CID,"until":MS}                                           (ext)
//	    The command waits for its offline node until MS; its "outcome"
//	    follows. A refused queue_for: ok false, code "bad_request" or
//	    "queue_full", and why in error.
//	{"type":"outcome","command":CID,"uid":U,"endpoint":E,"ok":B,
//	 "code":"delivered"|"failed"|"expired"|"replaced","error":…,"ts":MS} (ext)
//	    The final outcome of a queued command (aiot.commands.U.E.result),
//	    sent to every goaiot page, viewers included (it carries no payload);
//	    not part of the snapshot.
//	{"type":"site","site":S,"link":"up"|"down","ts":MS}                  (ext)
//	    A site's leaf link state on a multi-site hub (from the hub's
//	    aiot.site.<site>.link, see package sites); the current one of every
//	    site is also part of the snapshot, before "synced".
//	{"type":"collision","uid":U,"sites":[S1,S2,…],"ts":MS}               (ext)
//	    Node id U is online at several sites (multi-site hubs): their values
//	    share U's subjects. Fewer than two sites: the collision is over.
//	    Current collisions are part of the snapshot.
//	{"type":"refused","uid":U,"owner":O,"claimant":C,"ts":MS}             (ext)
//	    Gateway C (protocol/gateway) tried to claim node id U, which
//	    gateway O owns: refused (bus.SubjectClaimRefused, at most 10/s per
//	    gateway). Shown once, not part of the snapshot; counted in
//	    aiot_dashboard_claims_refused_total.
//	{"type":"hello","server":"goaiot","version":V,"role":"viewer"|"operator",
//	 "user":NAME,"login":true|false,"batch":true}                        (ext)
//	    First message after the handshake, before any "new". role is what
//	    this browser may do (see Login and roles); user is the logged-in
//	    user (absent when anonymous); login is true when the dashboard has
//	    users, i.e. when a login form makes sense. batch is present (true)
//	    when the browser asked for several messages per frame (batch=1).
//
// A node offline for longer than Config.ForgetAfter (`--forget-after`,
// 24 h) leaves the index: it is in no later snapshot, and a browser that
// saw its "out" hears nothing more of it. Its history stays in the stream.
//
// MS is milliseconds since the Unix epoch. Bad frames (not JSON, unknown
// type, missing fields, oversized) close the socket with 1003 and a reason.
//
// # Delivery
//
// Only a browser that sent "new" gets live messages. For each node, "new"
// comes before its updates, in the snapshot and live; values, "out" and
// "reset" of one node keep their order. A browser that falls behind (more
// than 256 messages waiting: more than one write takes) gets, for each
// resource, the latest value rather than every value; "new", "out",
// "reset", "result" and "history" are never dropped. A browser with more than 4096 messages waiting (besides the part
// of its last snapshot it has not been sent yet), or that accepts no data
// for 10 s (15 s at most: the write deadline is renewed once less than
// 10 s is left), is disconnected; on reconnecting it gets a fresh snapshot.
//
// Everything queued for a browser (up to 256 messages) goes out in one
// write on its socket (frames encoded once for every browser); under load a browser is
// written to at most once per WriteDelay (--dashboard-write-delay, 1 ms),
// so that what arrives meanwhile joins the same write; a quiet browser's
// value is written at once, and so is the answer to a browser's own request
// ("result", "history"): it never waits for the delay. The fan-out makes
// these writes itself, one non-blocking write per browser, spread over up to
// GOMAXPROCS goroutines, with one timer for the browsers in their delay; only
// a browser whose socket is full (or that needs a message compressed, or is
// on TLS) gets a writer goroutine of its own, which writes with the write
// deadline.
//
// Close codes sent by the server: 1003 bad frame (as above, and binary
// frames), 1008 "too many messages" (more than 20 frames/s sustained,
// bursts of 60), 1013 too slow, 1001 dashboard stopping. Frames from a
// browser are limited to 64 KiB. The server pings every 20 s; a browser
// that answers nothing for 50 s is disconnected.
//
// The handshake is accepted without an Origin header (not a browser), from
// the same origin, from pages on localhost or a loopback address, and from
// the origins given with --allow-origin (scheme://host:port, or *).
// permessage-deflate is negotiated when the browser offers it; messages of
// 512 bytes or more are then compressed.
//
// # Login and roles
//
// A browser is a viewer (sees everything, may ask for history, sends no
// commands) or an operator (may also send commands). The server enforces
// it: a viewer's command gets a "result" with ok false and an error starting
// "forbidden:"; nothing reaches the bus.
//
// Users come from a users file (--users FILE): one "name:bcrypt-hash[:role]"
// per line, as `htpasswd -B -n name` prints it, role viewer or operator
// (operator when absent); `aiot passwd --users FILE NAME` adds or replaces
// a user. A browser that has not logged in is anonymous, with the role
// chosen by --anonymous: "auto" (default) makes it an operator when no users
// file is given and the browser is on this machine (loopback peer, loopback
// Host header, no proxy forwarding header), a viewer otherwise; "viewer",
// "operator", or "none" (/ws answers 401 until the browser logs in).
// --read-only makes everyone a viewer.
//
// HTTP endpoints (JSON bodies; POSTs must be application/json and, from a
// browser, from an allowed origin, as for /ws: 415 and 403 otherwise):
//
//	GET  /login   → 200 {"user":NAME|"","role":"viewer"|"operator"|"","login":BOOL}
//	POST /login   {"user":NAME,"password":PW}
//	              → 200 {"user","role","login":true} and Set-Cookie aiot_session
//	              → 401 {"error":"bad user or password"}, 429 too many attempts
//	                (5 password checks/s for the whole dashboard, Retry-After),
//	                404 when there is no users file, 400 bad body (max 4 KiB)
//	POST /logout  → 200 (the status after logout) and the cookie cleared
//	GET  /healthz → 200 {"status":"ok","nats":"CONNECTED","browsers","nodes","online",
//	                "ready":true,"addrs":{"http":"127.0.0.1:8080",…}}; 503 with
//	                "status":"starting" until the process is ready (Config.Readiness:
//	                under aiot, every part bound and serving), "degraded" while NATS
//	                is down
//
// The session cookie is HttpOnly, SameSite=Strict, Path=/, Secure when the
// dashboard serves TLS; its value is a random 256-bit id, the session is
// held by the server and ends after 12 h (--session-ttl) or at logout.
// A websocket's role is fixed at the handshake, from the cookie; commands on
// a socket whose session ended are refused, so after logging in or out the
// page must reconnect /ws to get its new role. Pages on another origin than
// the dashboard must be listed with --allow-origin; browsers do not send a
// SameSite=Strict cookie with cross-site requests anyway.
//
// # Sources
//
// The dashboard follows node.*.> (node.> but the beacons on node.check,
// which it does not show) with one NATS subscription (one goroutine,
// which keeps each node's order: it decodes each value once and encodes its
// "update" once for every browser; a second one queues the encoded frames
// for the browsers, a batch per browser at a time) and keeps an index
// of every node's $state and last values, read at start (and after a
// reconnection to NATS) from the NODES stream, the last message per subject.
// A node appears with its $state, or with its first value or resources list
// when no state was seen. Snapshots are served from the index, which keeps
// each node's state and last values in a record that is replaced, never
// changed: under the hub's lock a browser's snapshot is a pointer per node
// (1 ms at 100 000 nodes), queued as one placeholder that the browser's
// writer expands and encodes as it writes (the index keeps no encoded
// message: about 0.3 KB less per node and 0.2 KB less per value). History
// is read from the stream. Commands are NATS requests on
// gateway.<uid>.<endpoint>.set, answered by the gateway that owns the node.
package dashboard
