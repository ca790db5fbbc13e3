package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/goaiot/goaiot/bus"
)

// onRequest answers a command request of the bus unless a gateway owns its
// node (by the node's last $state, the owner answers): no_gateway for an
// id never seen (or forgotten), and for a node known offline queued when
// it asks to be (bus.HeaderQueueFor), otherwise refused with code offline.
func (q *Queue) onRequest(ctx context.Context, m *nats.Msg, graced bool) {
	node, _ := bus.CommandNode(m.Subject)
	st, known := q.states[node]
	if (known && st.owned) || !bus.IsCommandRequest(m) {
		return // its gateway answers
	}
	if !graced && q.hold(ctx, m) {
		return // asked again after the grace, by then its $state may have come
	}
	s, err := bus.ParseSubject(m.Subject)
	if err != nil || s.Kind != bus.KindGatewaySet {
		q.respond(m, bus.Reply{Code: bus.CodeBadRequest, Error: fmt.Sprintf("bad command subject: %v", err)})
		return
	}
	if !known {
		if q.unfollowed.Load() > 0 {
			return // some id went unfollowed: it may be owned, say nothing
		}
		q.respond(m, bus.Reply{Code: bus.CodeNoGateway, Error: fmt.Sprintf(
			"node %s: no gateway serves it (no $state seen)", s.Node)})
		return
	}
	if m.Header.Get(bus.HeaderQueueFor) == "" {
		q.respond(m, bus.Reply{Code: bus.CodeOffline, Error: fmt.Sprintf(
			"node %s is offline: no gateway serves it (send %s to queue the command)", s.Node, bus.HeaderQueueFor)})
		return
	}
	e, code, err := q.check(s.Node, s.Resource, m)
	if err != nil {
		q.refused.Add(1)
		q.log.Info("queue: command refused", "node", s.Node, "resource", s.Resource, "code", code, "err", err)
		q.respond(m, bus.Reply{Code: code, Error: err.Error()})
		return
	}
	if err := q.store(ctx, e); err != nil {
		q.refused.Add(1)
		q.log.Error("queue: store", "node", s.Node, "resource", s.Resource, "err", err)
		q.respond(m, bus.Reply{Error: "queue: not stored: " + err.Error()})
		return
	}
	q.queued.Add(1)
	q.log.Info("queue: command queued", "node", e.Node, "resource", e.Resource, "command", e.Command, "until", e.Until)
	q.respond(m, bus.Reply{OK: true, Code: bus.CodeQueued, Command: e.Command, Until: e.Until})
}

// check builds the entry a request asks for, or says why it is refused.
func (q *Queue) check(node, res string, m *nats.Msg) (*entry, string, error) {
	d, err := time.ParseDuration(m.Header.Get(bus.HeaderQueueFor))
	switch {
	case err != nil:
		return nil, bus.CodeBadRequest, fmt.Errorf("%s: want a duration such as 10m: %w", bus.HeaderQueueFor, err)
	case d <= 0 || d > q.cfg.MaxFor:
		return nil, bus.CodeBadRequest, fmt.Errorf("%s %s: want more than 0 and at most %s", bus.HeaderQueueFor, d, q.cfg.MaxFor)
	case len(m.Data) > q.cfg.MaxPayload:
		return nil, bus.CodeBadRequest, fmt.Errorf("payload: %d bytes, at most %d may wait", len(m.Data), q.cfg.MaxPayload)
	}
	if q.lookup(node, res) == nil {
		switch n := len(q.waiting[node]); {
		case n == 0 && len(q.waiting) >= q.cfg.MaxNodes:
			return nil, bus.CodeQueueFull, fmt.Errorf("queue full: %d nodes have commands waiting", q.cfg.MaxNodes)
		case n >= q.cfg.MaxPerNode:
			return nil, bus.CodeQueueFull, fmt.Errorf("queue full: node %s has commands waiting for %d resources", node, n)
		}
	}
	now := q.cfg.Now().UTC()
	return &entry{Command: nuid.Next(), Node: node, Resource: res, Payload: append([]byte(nil), m.Data...),
		QueuedAt: now, Until: now.Add(d)}, "", nil
}

// store writes e, taking the place of the command waiting for the same
// resource, whose result then says so (unless it is being replayed: the
// replay tells).
func (q *Queue) store(ctx context.Context, e *entry) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rev, err := q.kv.Put(ctx, e.key(), e.encode())
	if err != nil {
		return err
	}
	e.rev = rev
	old := q.lookup(e.Node, e.Resource)
	q.index(e)
	if old != nil && !q.inflight[e.key()] {
		q.publish(old, bus.CodeReplaced, "replaced by command "+e.Command)
	}
	if st := q.states[e.Node]; st.owned {
		q.replayNode(ctx, e.Node) // came online meanwhile
	}
	return nil
}

// maxHeld bounds the requests waiting out their AnswerGrace; beyond, a
// request is answered at once.
const maxHeld = 4096

// hold puts m aside for Config.AnswerGrace: the loop takes it again from
// q.later. It reports false (answer now) when there is no grace or too
// many requests wait.
func (q *Queue) hold(ctx context.Context, m *nats.Msg) bool {
	if q.cfg.AnswerGrace < 0 || q.held >= maxHeld {
		return false
	}
	q.held++
	time.AfterFunc(q.cfg.AnswerGrace, func() {
		select {
		case q.later <- m: // never blocks: at most maxHeld are held
		case <-ctx.Done():
		}
	})
	return true
}

func (q *Queue) respond(m *nats.Msg, r bus.Reply) {
	b, _ := json.Marshal(r) // a Reply always marshals
	if err := m.Respond(b); err != nil {
		q.log.Warn("queue: reply", "subject", m.Subject, "err", err)
	}
}

// publish publishes the final result of e and counts it.
func (q *Queue) publish(e *entry, code, why string) {
	r := bus.CommandResult{Command: e.Command, Node: e.Node, Resource: e.Resource, OK: code == bus.CodeDelivered,
		Code: code, Error: why, QueuedAt: e.QueuedAt, Until: e.Until, Time: q.cfg.Now().UTC()}
	switch code {
	case bus.CodeDelivered:
		q.delivered.Add(1)
	case bus.CodeFailed:
		q.failed.Add(1)
	case bus.CodeExpired:
		q.expired.Add(1)
	case bus.CodeReplaced:
		q.replaced.Add(1)
	}
	b, _ := json.Marshal(r) // a CommandResult always marshals
	if err := q.nc.Publish(bus.CommandResultSubject(e.Node, e.Resource), b); err != nil {
		q.log.Error("queue: publish result", "node", e.Node, "command", e.Command, "err", err)
	}
	q.log.Info("queue: command done", "node", e.Node, "resource", e.Resource, "command", e.Command, "code", code, "why", why)
}
