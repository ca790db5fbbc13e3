package bus

import (
	"strings"

	"github.com/nats-io/nats.go"
)

// IsCommandRequest tells whether m can be a command: a request from a
// client (it has a reply subject) and not a message JetStream delivered.
// NATS permissions cannot see a consumer's deliver_subject, so a reader of
// the NODES stream may point a push consumer at gateway.<id>.<res>.set;
// such deliveries carry a $JS.ACK or $JS.FC reply, or none, or a status
// header (heartbeats), and must never act on a node. Micro-service answers
// sent to a command subject (a forged reply subject) carry no reply either.
func IsCommandRequest(m *nats.Msg) bool {
	if m.Reply == "" || strings.HasPrefix(m.Reply, "$JS.") {
		return false
	}
	if m.Header != nil && (m.Header.Get("Status") != "" || m.Header.Get(nats.JSStream) != "") {
		return false
	}
	return true
}
