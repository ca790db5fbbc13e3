// Package queue answers the commands of nodes no gateway owns, keeps those
// sent for nodes that are offline (or asleep past their timeout) and
// carries them out when the node comes back, whatever its protocol. It
// runs beside the gateways (`aiot run`, `aiot site` and each gateway role,
// --queue) and in the hub (`aiot hub`), and meets them only on subjects.
//
// # Why a package of its own
//
// A gateway's presence tracker (gateways/presence) answers
// gateway.<id>.*.set only while it owns the node; an offline node has no
// owner, often no gateway that ever heard of it in this process. The queue
// is the one responder for exactly those nodes: it follows every
// node.<id>.$state, answers requests for nodes no gateway owns, stores
// queued ones, and replays them as ordinary requests once a gateway owns
// the node again.
//
// # Contract
//
//	request  gateway.<id>.<res>.set, payload P, header Aiot-Queue-For: <Go duration>
//	         ("90s", "10m", "24h"; more than 0, at most --queue-max-for, 24 h)
//
// The header is opt-in. While the node is owned (its last $state is online
// or reset) the queue stays silent and the owning gateway carries the
// command out at once, as for any request: the header changes nothing. For
// a node whose last $state is offline the queue answers (queue group
// aiot-queue: once per bus):
//
//	{"ok":true,"code":"queued","command":"<id>","until":"<RFC 3339>"}
//	{"ok":false,"code":"offline","error":"node … is offline: …"}      without the header
//	{"ok":false,"code":"bad_request","error":"Aiot-Queue-For …"}   bad duration, payload over 4 KiB
//	{"ok":false,"code":"queue_full","error":"queue full: …"}      over a cap (see Bounds)
//
// A node never seen (no $state since its last one left the NODES stream,
// or forgotten, see Bounds) is not queued: with or without the header the
// queue answers
//
//	{"ok":false,"code":"no_gateway","error":"node …: no gateway serves it (no $state seen)"}
//
// and bad_request for a command subject it cannot parse (an unsafe node
// id, a reserved resource). The newest command per node and resource
// replaces the older one.
//
// # Replies
//
// Every gateway has one subscription to every command (gateway.*.*.set)
// and answers only for the nodes it owns; the queue has one too, in its
// queue group, and answers for every node no gateway owns, so that every
// request gets exactly one answer. The queue reads $state and requests
// from one channel, in the order the server delivered them on its one
// connection. That order is not enough: a server hands a message to its
// subscribers one after the other, not at once, so a requester who saw a
// node's online $state may have its request reach the queue before that
// same $state does (seen in TestOneAnswerPerCommand, 3 runs in 10 under
// -race). So the queue answers a command for a node it does not know as
// owned only after Config.AnswerGrace (250 ms), looking again: if the
// online $state came meanwhile, the owner answers alone. no_gateway,
// offline and queued therefore come 250 ms late; ok never waits.
//
// Where the order holds, with that grace, and where it does not:
//
//   - One server (`aiot run`, a site): when the server hands the $state
//     to the queue within the grace of handing it to the requester.
//   - A NATS cluster (docs/scaling.md): every member's queue follows every
//     $state, but the server picks any member of the queue group, and NATS
//     orders messages per route, not across routes. A request made within
//     the delivery skew between members (sub-millisecond on a LAN) of a
//     node's online $state may reach a queue that has not seen it yet: that
//     queue answers offline or no_gateway while the owner answers too. Only
//     this window; the requester takes the first answer.
//   - Multi-site (sites/, docs/multisite.md): node.> never crosses a leaf
//     link, so a site's queue knows only its site's nodes. The hub runs a
//     queue of its own, which follows every site's $state as the hub's
//     stream republishes them; nats-server gives a request to a member of
//     the queue group on its own server before one behind a leaf link, so
//     the hub's queue answers the hub's requests and a site's queue only
//     its site's (a site may not send gateway.> to the hub). The hub's
//     queue answers from the hub's view, which lags a site by the sourcing
//     delay: consistent with what the hub's dashboard shows. An `aiot hub`
//     with --queue=false lets a site's queue take the hub's requests: it
//     would answer no_gateway for other sites' nodes. Do not.
//   - --queue=false everywhere: nobody answers commands to nodes no
//     gateway owns; requests time out (the dashboard then says no_gateway
//     for a node not online in its index).
//   - Past MaxKnown: once an id went unfollowed, it may be owned without
//     the queue knowing, so from then on (until a restart) the queue no
//     longer answers ids it does not know: those requests time out.
//   - A queue learns at start who owns what from the last $state of each
//     node in the NODES stream; gateways publish an online node's $state
//     again every day (presence.StateRefresh) so that it never ages out.
//     With --history-age under a day, a node online for longer than that
//     is unknown to a queue started then: its commands would get the
//     queue's no_gateway beside the owner's answer.
//   - The queue's own connection losing the server: the $state sent
//     meanwhile never reach it live, so once back it reads the last $state
//     of every node from the stream again before it answers anything. A
//     $state not yet stored by then (the stream stores asynchronously) is
//     still missed until the node's next one.
//   - A gateway forgets a node just before it publishes the offline $state:
//     a request in between gets no answer (timeout).
//
// When a $state says the node is online again, each waiting command is
// sent as gateway.<id>.<res>.set with payload P (header Aiot-Queued: <id>,
// no Aiot-Queue-For) and the owning gateway's answer becomes its result,
// published once on
//
//	aiot.commands.<id>.<res>.result  {"command","uid","endpoint","ok","code","error","queued_at","until","ts"}
//
// (bus.CommandResult) with code
//
//	delivered  the gateway answered ok (the node accepted it)
//	failed     the gateway refused it (its error, e.g. "4.00 Bad Request",
//	           "timeout: the node did not answer") or did not answer within 10 s
//	expired    the deadline passed first ("expired: node … did not come back by …")
//	replaced   a newer command for the same resource took its place
//
// A result never carries the payload: viewers and dashboards read aiot.>.
// A replay answered offline or no_gateway (the node left again at once: a
// queue answered it), or with no responders, puts the command back to
// wait.
//
// # Storage
//
// Commands wait in the file-backed JetStream key-value bucket AIOT_QUEUE
// (key: base64url(id).base64url(res), one value each), so they survive
// restarts of the queue and of the bus with the same data directory; their
// deadline is absolute. A replay first marks its command "sending" with a
// revision check (only one queue replays it), and removes it once answered;
// a command still marked at start is replayed again (at least once: a set
// command is idempotent). Node presence is read at start from the NODES
// stream (the last $state per node), then followed live, and read from the
// stream again whenever the queue's connection comes back after a loss.
//
// # Sleeping MQTT-SN nodes
//
// An MQTT-SN node asleep is still online (its $state) until the node
// timeout: its commands go the usual way and the MQTT-SN gateway buffers
// them to its wake-up (gateways/mqttsn); the queue stays out. Asleep longer
// than the node timeout it is offline, and queued commands wait here until
// its next message makes it online.
//
// # Bounds
//
// At most --queue-max-nodes (1 000) nodes have commands waiting, each for at
// most 16 resources, one command per resource; a command past a cap is
// refused with code queue_full. Payloads over 4 KiB are refused. At most
// 100 000 node ids are followed (beyond, new ids are not queueable); a node
// offline for longer than --queue-forget-after (24 h) with no command
// waiting is no longer followed, so id churn does not fill that cap for
// good (its commands are then answered no_gateway, as for an id never
// seen). The bucket's size is bounded accordingly. The queue holds two
// subscriptions whatever the number of nodes (every $state, every
// command), never one per node.
//
// # Who may queue
//
// Whoever may send the command: publishing gateway.*.*.set is allowed to
// the admin, dashboard and gateway roles (bus.RolePermissions), never to
// nodes. The queue runs with the gateway role, which may read the NODES
// stream and keep the AIOT_QUEUE bucket.
//
// # Races
//
// A node coming online in the very instant a queued request is made may
// get the command twice (once from its new gateway, once replayed).
//
// # Operations
//
// Micro service aiot-queue: `nats micro stats aiot-queue`, and
// aiot.aiot-queue.stats answers [Stats]. `nats kv ls AIOT_QUEUE` lists the
// waiting commands.
package queue
