package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/internal/shrink"
)

// nodeState is the last $state of a node: whether a gateway owns it
// (online or reset) and when that was said.
type nodeState struct {
	owned bool
	at    time.Time
}

// followStates subscribes to every $state, then reads the last one of
// each node from the stream; live messages wait in q.in meanwhile and are
// applied after, an older one never overriding a newer (by its time).
func (q *Queue) followStates(ctx context.Context, js jetstream.JetStream) (stop func(), err error) {
	sub, err := q.nc.ChanSubscribe(bus.NodeState("*"), q.in)
	if err != nil {
		return nil, fmt.Errorf("queue: subscribe: %w", err)
	}
	_ = sub.SetPendingLimits(-1, 64<<20)
	stop = func() { _ = sub.Unsubscribe() }
	if err := q.nc.FlushTimeout(10 * time.Second); err != nil {
		stop()
		return nil, fmt.Errorf("queue: flush: %w", err)
	}
	n, err := q.loadStates(ctx, js)
	if err != nil {
		q.log.Warn("queue: last node states not read: following live ones only", "err", err)
	}
	q.log.Debug("queue: node states read", "messages", n)
	return stop, nil
}

func (q *Queue) loadStates(ctx context.Context, js jetstream.JetStream) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, q.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", q.cfg.Stream, err)
	}
	if stream.CachedInfo().State.Msgs == 0 {
		return 0, nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.NodeState("*")},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return 0, fmt.Errorf("stream %s: consumer: %w", q.cfg.Stream, err)
	}
	if cons.CachedInfo().NumPending == 0 {
		return 0, nil
	}
	it, err := cons.Messages()
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", q.cfg.Stream, err)
	}
	defer it.Stop()
	for n := 1; ; n++ {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return n, fmt.Errorf("stream %s: after %d states: %w", q.cfg.Stream, n, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return n, fmt.Errorf("stream %s: %w", q.cfg.Stream, err)
		}
		q.record(m.Subject(), m.Data(), meta.Timestamp)
		if meta.NumPending == 0 {
			return n, nil
		}
	}
}

// reload reads the last $state of every node from the stream again, once
// the queue's connection is back: the live ones sent while it was away
// never reached it. Nodes owned now get their waiting commands.
func (q *Queue) reload(ctx context.Context, js jetstream.JetStream) {
	n, err := q.loadStates(ctx, js)
	if err != nil {
		q.log.Warn("queue: reconnected, but the last node states were not read again", "err", err)
	}
	q.log.Info("queue: reconnected: last node states read again", "messages", n)
	q.replayOnline(ctx)
}

// onState applies a live $state; a node now online gets its commands.
func (q *Queue) onState(ctx context.Context, m *nats.Msg) {
	node, owned := q.record(m.Subject, m.Data, q.cfg.Now())
	if owned {
		q.replayNode(ctx, node)
	}
}

// record keeps the $state carried by (subject, data) unless an older one;
// it returns the node and whether a gateway owns it now.
func (q *Queue) record(subject string, data []byte, at time.Time) (string, bool) {
	s, err := bus.ParseSubject(subject)
	if err != nil || s.Kind != bus.KindNodeState {
		return "", false
	}
	st, err := bus.ParseState(data)
	if err != nil {
		return "", false
	}
	if !st.Time.IsZero() {
		at = st.Time
	}
	cur, known := q.states[s.Node]
	if known && at.Before(cur.at) {
		return s.Node, false
	}
	if !known && len(q.states) >= q.cfg.MaxKnown {
		if q.unfollowed.Add(1)%1000 == 1 {
			q.log.Warn("queue: too many nodes to follow: new ids are not queueable, and ids never seen get no answer", "max", q.cfg.MaxKnown)
		}
		return s.Node, false
	}
	owned := st.State != bus.StateOffline
	q.states[s.Node] = nodeState{owned: owned, at: at}
	return s.Node, owned && st.State == bus.StateOnline
}

// forget stops following the nodes offline since before ForgetAfter that
// have no command waiting (at most every tenth of ForgetAfter, and at
// least every minute).
func (q *Queue) forget(now time.Time) {
	if q.cfg.ForgetAfter < 0 || now.Sub(q.forgot) < min(q.cfg.ForgetAfter/10, time.Minute) {
		return
	}
	q.forgot = now
	cutoff := now.Add(-q.cfg.ForgetAfter)
	n := 0
	for node, st := range q.states {
		if st.owned || !st.at.Before(cutoff) || len(q.waiting[node]) > 0 {
			continue
		}
		delete(q.states, node)
		n++
	}
	q.states = shrink.Map(q.states, &q.peak)
	if n > 0 {
		q.log.Info("queue: forgot nodes offline for longer than the retention", "nodes", n, "forget_after", q.cfg.ForgetAfter)
	}
}
