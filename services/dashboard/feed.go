package dashboard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
)

// feed carries node.> from the bus into the hub: one core subscription for
// live events, and the NODES stream (last value per subject) for the state
// before the dashboard started or while it was disconnected. While the
// stream is read, live events wait in a backlog and are applied after it,
// so that an older stored value never overwrites a newer live one.
type feed struct {
	d *Dashboard

	mu      sync.Mutex
	live    bool
	backlog []event
}

// onMsg handles one live message of the shared subscription.
func (f *feed) onMsg(m *nats.Msg) {
	ev, ok := f.d.parse(m.Subject, m.Data, time.Now())
	if !ok {
		return
	}
	f.mu.Lock()
	if !f.live {
		f.backlog = append(f.backlog, ev)
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	f.d.hub.publish(ev)
}

// pause makes live events wait in the backlog.
func (f *feed) pause() {
	f.mu.Lock()
	f.live = false
	f.mu.Unlock()
}

// resume applies the backlog and goes live. Holding the lock while applying
// keeps live events behind the backlog.
func (f *feed) resume() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ev := range f.backlog {
		f.d.hub.publish(ev)
	}
	f.backlog = nil
	f.live = true
}

// parse turns a node.> message into an event; ok is false for messages the
// dashboard does not show (node.check) and malformed ones (counted, logged).
func (d *Dashboard) parse(subject string, data []byte, at time.Time) (event, bool) {
	d.m.eventsIn.Inc()
	ev, ok, err := toEvent(subject, data, at)
	if err != nil {
		d.m.invalid.Inc()
		d.log.Debug("ignored node message", "subject", subject, "err", err)
	}
	return ev, ok
}

func toEvent(subject string, data []byte, at time.Time) (event, bool, error) {
	if len(data) > bus.DefaultMaxMsgSize {
		// What the NODES stream refuses to store is not shown either.
		return event{}, false, fmt.Errorf("%s: %d bytes, more than %d", subject, len(data), bus.DefaultMaxMsgSize)
	}
	s, err := bus.ParseSubject(subject)
	if err != nil {
		return event{}, false, err
	}
	ev := event{kind: s.Kind, uid: s.Node, endpoint: s.Resource, ts: at}
	switch s.Kind {
	case bus.KindNodeValue:
		text, ts, err := valueText(data)
		if err != nil {
			return event{}, false, err
		}
		ev.value = text
		if !ts.IsZero() {
			ev.ts = ts
		}
	case bus.KindNodeState:
		st, err := bus.ParseState(data)
		if err != nil {
			return event{}, false, err
		}
		if st.Time.IsZero() {
			st.Time = at
		}
		ev.state, ev.ts = st, st.Time
	case bus.KindNodeResources:
		if _, err := bus.ParseResources(data); err != nil {
			return event{}, false, err
		}
	default:
		return event{}, false, nil
	}
	return ev, true, nil
}

// sync reads the last message of every node.> subject from the stream into
// the hub, with live events held back meanwhile. A missing stream is not an
// error: the dashboard then shows live events only.
func (f *feed) sync(ctx context.Context) error {
	f.pause()
	defer f.resume()
	ctx, cancel := context.WithTimeout(ctx, f.d.cfg.LoadTimeout)
	defer cancel()
	began := time.Now()
	n, err := f.load(ctx)
	if err != nil {
		return err
	}
	f.d.log.Info("node state loaded", "stream", f.d.cfg.Stream, "messages", n, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

func (f *feed) load(ctx context.Context) (int, error) {
	js, err := jetstream.New(f.d.nc)
	if err != nil {
		return 0, fmt.Errorf("jetstream: %w", err)
	}
	stream, err := js.Stream(ctx, f.d.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		f.d.log.Warn("no stream: showing live events only", "stream", f.d.cfg.Stream)
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", f.d.cfg.Stream, err)
	}
	if stream.CachedInfo().State.Msgs == 0 {
		return 0, nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.SubjectAllNodes},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return 0, fmt.Errorf("stream %s: consumer: %w", f.d.cfg.Stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", f.d.cfg.Stream, err)
	}
	defer it.Stop()
	for n := 0; ; {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return n, fmt.Errorf("stream %s: after %d messages: %w", f.d.cfg.Stream, n, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return n, fmt.Errorf("stream %s: %w", f.d.cfg.Stream, err)
		}
		n++
		if ev, ok := f.d.parse(msg.Subject(), msg.Data(), meta.Timestamp); ok {
			f.d.hub.publish(ev)
		}
		if meta.NumPending == 0 {
			return n, nil
		}
	}
}
