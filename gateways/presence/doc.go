// Package presence is the node bookkeeping every gateway shares: which nodes
// it owns, their $state (online, reset, offline after a silence), their
// values on the bus, and the commands sent to them.
//
// A gateway calls [Tracker.Seen] whenever a node shows a sign of life,
// [Tracker.Reset] when it reboots and [Tracker.Forget] when it leaves; the
// tracker publishes node.<id>.$state, times nodes out, and serves the
// commands of every node it owns. It has one subscription to every command
// of the bus, gateway.*.*.set, made once before its first claim, never one
// per node: a plain subscription, no queue group, because replicas of a
// gateway own different nodes and only the owner may answer. A command to
// a node the tracker does not own is ignored without a word (see
// "Replies"). The command itself is carried out by the gateway's
// [CommandFunc], one node's commands in the order they came, on a bounded
// pool (see [DefaultCommandWorkers]), bounded by the command timeout
// (Config.CommandTimeout, 5 s by default).
//
// A tracker follows the other gateways' claims on node.*.$state and
// node.check; a gateway with several trackers on one connection (MQTT and
// MQTT-SN) subscribes to node.check once and hands each message to every
// tracker (Config.SharedChecks), so that each beacon arrives once. The
// trackers of one process keep the claims in one table ([Claims], given
// as Config.Claims), one claim per node rather than one per gateway; each
// tracker sees in it the claims of the other gateways only, each judged
// stale by its own timeout, and the table forgets a claim after the
// longest of them. An id holds one claim per gateway that says it is
// online (the earliest is the owner), because each tracker reads the bus
// on its own connection, at its own pace: one that is behind replays
// older $states, which add or remove their own gateway's claim only.
//
// A node silent for longer than Config.Timeout goes offline at the next
// sweep (every tenth of the timeout, at most every second). A sweep looks
// only at the nodes whose deadline may have come, filed by deadline when
// they were last looked at, not at every node: a sign of life costs the
// timeout nothing, and a live node is looked at about once per timeout.
//
// A node takes commands as soon as Seen returns: the subscription is on the
// server before the tracker's first $state, and the tracker owns the node
// before its online $state leaves, so whoever sees a node online can
// command it. Seen makes no round trip; [Tracker.Sync] remains for a
// gateway that wants the bus to have its $state before it answers a node.
// An online node's $state is published again every [StateRefresh], so that
// the stream always holds it. Two trackers that both own a node (one
// gateway name in two processes: claims under one name are not settled
// between them) would both answer its commands.
//
// # When a command is confirmed: one rule for every gateway
//
// A command is confirmed when the node reports the commanded value for that
// resource within the command timeout: a CoAP node by its 2.xx answer to the
// PUT, a websocket or MQTT(-SN) node by an update of the resource whose
// value is the payload. A node that reports another value has not said no
// yet: that value may have been on its way before the node read the command.
// It has said no when no report of the commanded value follows within
// [DefaultConfirmGrace] (1 s) of the first other value, or when the command
// timeout ends after it reported another value. A CoAP node says no with a
// non-2.xx answer at once. A node that reports nothing times out. Gateways
// that wait for a reported value do so with [Confirmations]; a gateway whose
// node can see the request before the tracker runs (the MQTT listener, where
// the request itself reaches the node) may also take the node's latest
// value, reported within the command timeout, as its confirmation. There a
// node's "no" (another value) can also arrive before the gateway starts
// waiting; it is not taken as a refusal, so such a command ends in timeout.
//
// # Replies
//
// Every command request gets one [bus.Reply] whose Code says what happened
// (Error says it to people):
//
//	ok          the node confirmed the command
//	timeout     the node did not confirm it within the command timeout ([ErrCommandTimeout])
//	refused     the node said no ([ErrRefused]), or the gateway could not deliver it
//	busy        too many commands are waiting ([ErrCommandsBusy]); nothing was sent
//	no_gateway  this gateway owns the node but takes no commands, or let
//	            it go meanwhile ([ErrNotServed])
//	bad_request the subject is not gateway.<id>.<res>.set (answered by the
//	            owner of the node token, if any)
//
// Every gateway receives every command and only the node's owner answers.
// Commands to a node no gateway owns are answered by the command queue
// (gateways/queue, in its queue group: once per bus), which follows every
// $state: offline or queued for a node known offline, no_gateway for an id
// never seen, silence while a gateway owns the node. It answers those
// only after a grace (queue.Config.AnswerGrace, 250 ms), looking at the
// node's $state again: a server hands a $state to its subscribers one
// after the other, so a requester who saw a node online may have its
// request reach the queue before that $state; the grace keeps the queue
// silent then, and the owner answers alone. Without a
// queue (--queue=false) nobody answers such commands: the request times out
// (no NATS "no responders" any more, since every gateway subscribes to
// every command); the dashboard turns a timeout on a node its index does
// not have online into no_gateway, and its own refusals into forbidden.
// Multi-site and clusters: see gateways/queue, "Replies".
package presence
