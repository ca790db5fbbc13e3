// Package sites is goaiot's multi-site layer: a hub (`aiot hub`) and any
// number of sites (`aiot site`), each site an embedded nats-server joined to
// the hub's as a NATS leaf node, running its own gateways.
//
// # Storage: each value stored once, nothing lost while a link is down
//
// Every site's server has its own JetStream, in the domain named after the
// site, with its own NODES stream capturing node.> as under `aiot run`. A
// site therefore stores its nodes' values while its link to the hub is down,
// and its gateways, commands and local dashboard keep working.
//
// The hub's NODES stream has no subjects of its own: it only sources, one
// source per site, from $JS.<site>.API's NODES stream (filter node.>), and
// republishes every message it stores on its own subject (RePublish
// node.> → node.>), which is where the hub's dashboard, the sites Monitor and
// `nats sub 'node.>'` take live events from. JetStream sourcing keeps its
// place in each site's stream (the last sequence it stored) and, after a
// link comes back, resumes from there — whether the outage lasted seconds or
// days, as long as the site's stream still holds the values (its limits:
// --history, --history-age).
//
// The pitfall this avoids: core NATS messages on node.> would also flow
// live over the leaf connection, and a hub stream that captured them and
// also sourced the sites' streams would store every value twice; a site's
// stream, subscribed to node.>, would even store the other sites' values,
// which the hub would then source again. So node.> never crosses a leaf
// connection, in either direction (LeafDeny, as the site's remote's deny
// imports and exports): the only path of a value from a site to the hub is
// the site's stream. No message ids or duplicate window are involved, so no
// outage is too long for it.
//
// nats-server retries a source that lost its site with a growing back-off
// (up to two minutes). So that the hub catches up as soon as a link is
// back, the [Monitor] restarts the source of a site whose heartbeats arrive
// but whose source has been silent for 5 s ([RestartSource]): a source added
// to a stream resumes after the last message the stream holds from it.
//
// The cost: the hub sees a value once it is stored at the site and sourced
// (milliseconds on a healthy link), and a hub has no node.> of its own —
// gateways at the hub's location run as a site of their own.
//
// # Subjects
//
//	aiot.site.<site>.heartbeat  site → hub  {"site","ts","interval_ms","nodes":[ids online]}, a request; the hub answers
//	aiot.site.<site>.link       hub         {"type":"site","site","link":"up"|"down","ts"}
//	aiot.sites.collision        hub         {"type":"collision","uid","sites":[…],"ts"}
//	aiot.sites                  hub         request → {"sites":[…],"collisions":{uid:[sites]}}
//
// A site's [Beacon] sends its heartbeat every interval (2 s) with the ids
// of its nodes online (from their $state, whose site field is the site's
// name), as a request: the hub's answer tells the site (and its log) that
// its link is up. The hub's [Monitor] marks a site's link up at its first
// heartbeat and down after three missed intervals, makes the hub's stream
// source every site it hears of ([AddSource]), and reports a node id online
// at more than one site — from the heartbeats' lists and the $state
// messages — as an error log line, the aiot_site_id_collisions gauge and a
// collision message; values of colliding ids share their subjects on the
// hub and are not told apart, hence the report. The link and collision
// payloads have the shape of the dashboard's browser messages, so the
// dashboard can pass them on as they are.
//
// Commands cross leaf connections natively: a request on
// gateway.<id>.<res>.set made at the hub reaches every site's gateways,
// the one that owns the node answers, and the reply comes back on the
// requester's inbox. A node no gateway owns is answered by the hub's own
// command queue, never by a site's (gateways/queue, "Replies").
//
// # Permissions
//
// A hub may accept sites only with a login of their own (bus.LeafUser), one
// per site, each allowed to send into the hub only [LeafPublish]: its own
// aiot.site.<site> tree, replies and the hub's source consumer's traffic. A
// site can then neither command the other sites' nodes through the hub nor
// speak for another site. The hub also isolates its leaf connections from
// each other (bus.ServerConfig.LeafIsolate): nothing flows from site to
// site. ParseLeafUsers reads the hub's leaf users file, one
// "<site> <password or bcrypt hash>" a line (package internal/linefile).
//
// # HTTP
//
// Monitor.Handler serves the answer of aiot.sites as JSON (the hub's
// /sites, behind the dashboard's login); Monitor.MetricsHandler serves the
// monitor's own Prometheus registry (the hub's /metrics/sites).
package sites
