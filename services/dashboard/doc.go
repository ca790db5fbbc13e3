// Package dashboard is the websocket fan-out service between the bus and the
// browsers, and the server of the embedded web app.
//
// # Browser protocol (path /ws)
//
// JSON objects, one per text frame, compatible with Pyaiot's dashboard. The
// fields marked "ext" are goaiot extensions; Pyaiot's page ignores them.
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
//	{"type":"history","data":{"uid":U,"endpoint":E,"limit":N}}        (ext)
//	    Asks for the stored values of one resource (oldest first).
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
//	{"type":"history","uid":U,"endpoint":E,"points":[{"ts":MS,"data":"v"},…]} (ext)
//	{"type":"result","id":"c1","uid":U,"endpoint":E,"ok":true}          (ext)
//	{"type":"result","id":"c1","uid":U,"endpoint":E,"ok":false,"error":"timeout"}
//	    The outcome of a command, sent only to the browser that sent it.
//	{"type":"site","site":S,"link":"up"|"down","ts":MS}                  (ext)
//	    A site's leaf link state (multi-site hubs).
//	{"type":"hello","server":"goaiot","version":V,"role":"viewer"|"operator"} (ext)
//	    First message after the handshake.
//
// MS is milliseconds since the Unix epoch. Bad frames (not JSON, unknown
// type, missing fields, oversized) close the socket with 1003 and a reason.
package dashboard
