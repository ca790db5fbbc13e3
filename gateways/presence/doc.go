// Package presence is the node bookkeeping every gateway shares: which nodes
// it owns, their $state (online, reset, offline after a silence), their
// values on the bus, and the commands sent to them.
//
// A gateway calls [Tracker.Seen] whenever a node shows a sign of life,
// [Tracker.Reset] when it reboots and [Tracker.Forget] when it leaves; the
// tracker publishes node.<id>.$state, times nodes out, and serves
// gateway.<id>.*.set for every node it owns, in a queue group so that
// replicas of one gateway answer each command once. The command itself is
// carried out by the gateway's [CommandFunc], one node's commands in the order
// they came, on a bounded pool (see [DefaultCommandWorkers]), bounded by the
// command timeout (Config.CommandTimeout, 5 s by default).
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
//	no_gateway  this gateway does not own the node ([ErrNotServed])
//	bad_request the subject is not gateway.<id>.<res>.set
//
// A request no gateway subscribes to gets NATS's no-responders status; the
// dashboard turns it into no_gateway, and its own refusals into forbidden.
package presence
