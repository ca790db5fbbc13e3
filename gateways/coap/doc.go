// Package coap is goaiot's CoAP gateway: RIOT nodes running Pyaiot's
// firmwares work with it unchanged, and it fixes Pyaiot's CoAP bugs.
//
// # Wire protocol (what a node sends)
//
//	POST /alive   "alive:<uid>" every 30 s, "reset:<uid>" at boot
//	POST /server  "<res>:<value>" (split at the first ':'), e.g. "temperature:21.5°C"
//
// Current RIOT sends both as NON requests with Content-Format 0 from an
// ephemeral source port and ignores the answers; its own CoAP server
// listens on 5683. So:
//   - a node's identity is its uid (Pyaiot keys nodes by IP address);
//   - the gateway reaches a node at the source IP of its last /alive, on
//     port Config.NodePort (5683; SourcePort: the /alive's source port, for
//     NAT and for many simulated nodes on one address); IPv6 zones (fe80::…%eth0)
//     are kept;
//   - /server values are matched to their node by source IP (IP and port in
//     SourcePort mode); a value from a source with no node is refused.
//
// Every request is answered as RFC 7252 §5.2 asks (package coapreply): a
// NON one with a NON response (RIOT ignores it; libcoap's `coap-client -N`
// waits for it), a confirmable one piggybacked on the ACK, unless its
// No-Response option (RFC 7967: 2 declines 2.xx, 8 4.xx, 16 5.xx) declines
// that class (then nothing to a NON, an empty ACK to a confirmable one).
// NON answers bypass go-coap's response cache, which would keep each one
// EXCHANGE_LIFETIME (247 s) per peer and scan it on every datagram. A
// response or empty message that nobody waits for is never answered (two
// peers answering each other's answers would loop). A handled request gets
// 2.04; a refused one an error code with a diagnostic payload and a log
// line: 4.00 for a malformed, empty, non-UTF-8 payload or an unsafe uid or
// resource name, 4.04 for an unknown path or a value from an unknown node,
// 4.05 for a method other than POST, 4.13 for a body over MaxPayload, 4.29
// for a source over Config.SourceRate, 5.03 for a node that cannot be
// taken on (see DTLS for 4.03).
//
// # Node lifecycle (subjects, see package bus)
//
//   - A new uid: node.check {"id":uid} (with the owner header), then
//     node.<uid>.$state online (protocol "CoAP", gateway, site, address
//     "ip:port" of the node's server), then discovery.
//   - Discovery: GET /.well-known/core, parsed as RFC 6690 link-format
//     (attributes, quoted strings holding ',' or ';', several links) by
//     [ParseLinkFormat]; node.<uid>.resources lists the safe names; each
//     resource is read with one GET (node.<uid>.<res>), or observed (RFC 7641)
//     when its link carries ;obs, every notification becoming a value.
//     Links to other hosts, nested paths and names that are not one safe
//     subject token are skipped with a log line, never remapped. Requests
//     go one after another (constrained nodes prefer it), a discovery lasts
//     at most six request timeouts, and at most Config.MaxDiscoveries run
//     at once (the others wait their turn, in order). A node that does not
//     answer stays online and is tried again at its next beacon.
//   - A /server value also refreshes its node.
//   - alive from a known node: node.check again and a refresh; no
//     rediscovery (Pyaiot rediscovers every 30 s). Observations that ended
//     are registered again.
//   - reset: $state reset, then a new discovery.
//   - A move (same uid, new address): $state online at the new address and
//     a new discovery.
//   - Silent for longer than the node timeout: $state offline, forgotten;
//     its observations are cancelled and no late value is published.
//
// # Restarts (NODE_TABLES)
//
// The source ↔ uid table survives a restart of the gateway, of `aiot` or
// of NATS on the same data directory: it is kept in the NODE_TABLES
// key-value bucket (package gateways/persist), one key per node,
// coap.<gateway>.<uid>, holding {"v":1,"uid","from":"ip:port of its
// /alive","to":"the gateway address it was sent to (wildcard listeners
// only)","dtls":true|absent,"since"}. It is written when a node appears,
// moves, resets or is forgotten (Config.PersistDelay later, outside the
// gateway's lock; never per value or per beacon) and read once when Run
// starts, before the listeners open. An entry that does not decode, names
// another uid, an unsafe uid or an unusable address is skipped with a log
// line.
//
// A restored node is known, not online: its first value is accepted at
// once (no "4.04 unknown node" until the next beacon) and makes it online
// through package presence, which still refuses an id another gateway
// owns; its first beacon rediscovers it and observes again. A restored
// node that says nothing for the node timeout is forgotten and its entry
// deleted. A uid restored as known over DTLS keeps refusing plain CoAP
// (4.03); commands to it wait for its next DTLS beacon (the session did
// not survive). Config.PersistDelay < 0 turns this off.
//
// # Commands
//
// gateway.<uid>.<res>.set (a NATS request) becomes a confirmable PUT of the
// raw payload to /<res> on the node; 2.xx replies {"ok":true} and publishes
// the payload as the new value, anything else {"ok":false,"error":"4.00 Bad
// Request"}, a silent node {"ok":false,"error":"timeout: …"}. The gateway
// receives every command of the bus (one subscription, package presence)
// and answers those of the nodes it owns; the owner of any other, or the
// command queue for a node nobody owns, answers the rest.
//
// gateway.<uid>.discover ("resources" or "values") reads an owned node again:
// its resource list and every value; live observations are kept. A node a
// gateway does not own is left to its owner (no reply).
//
// # One socket for everything
//
// Requests to nodes (discovery GETs, observations, PUTs) leave from the
// gateway's own server socket, through go-coap's Server.NewConn, rather
// than from a socket dialled per node: one file descriptor and one read loop
// serve any number of nodes, the nodes see the gateway's well-known port as
// the source (what a firewall or NAT rule for CoAP expects), and answers and
// notifications arrive on the socket already being read.
//
// # Memory per peer
//
// go-coap keeps state per peer address (a connection, its token and
// deduplication tables, a goroutine), evicted after a silence (never while
// a confirmable the gateway sent is in flight), so spoofed sources cannot
// grow memory without bound (Stats.Peers counts what is held):
//   - after Config.PeerIdle (10 s) for a peer that sent a confirmable
//     request (its retransmissions within that time get the cached answer
//     and are not handled twice), a node's peer while the gateway has
//     requests to it in flight (discovery, a command) or observes it, and
//     every DTLS session;
//   - after Config.QuietPeerIdle (0.5 s) for any other plain CoAP peer: one
//     that only sent NON requests (go-coap keeps nothing for those once
//     answered; a duplicated NON is handled again, see package coapreply),
//     or a node's once its discovery or command is over. A RIOT node
//     beacons from a fresh port every 30 s anyway; commands and discoveries
//     make a new peer toward the node when they need one.
//
// A peer's first message is handled on one of at most Config.Handlers
// goroutines: go-coap's goroutine per peer only hands it over and waits, so
// that a peer seen once (a beacon) keeps the smallest stack. Its later
// messages, while go-coap keeps the peer, are handled on the peer's own
// goroutine (no hand-over per message for a fast sender). A negative
// Handlers handles every message on the peer's goroutine.
//
// # DTLS
//
// With Config.DTLSListen the same resources are served over DTLS 1.2 with
// pre-shared keys (pion/dtls through go-coap), keys read from a file by
// [LoadPSKFile]. A DTLS node is reached over its own session, so its
// requests and the gateway's share one secured association; its address is
// the session's peer address. A uid known over DTLS cannot be taken over by
// a plain CoAP /alive (4.03 Forbidden).
//
// Plain CoAP has no authentication (as in Pyaiot): anyone who can send a
// datagram can claim a uid, and a forged source address makes the gateway
// send its small discovery GETs there. Use DTLS, or keep the CoAP port on
// the nodes' network.
//
// # Simulated node
//
// Package coapsim is a RIOT-like node for tests, `aiot sim` and
// `aiot run --demo`.
package coap
