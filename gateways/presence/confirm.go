package presence

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultConfirmGrace is how long a command still waits for the commanded
// value after its node reported another one (see the package doc).
const DefaultConfirmGrace = time.Second

// ErrRefused is wrapped by the error of a command the node said no to.
var ErrRefused = errors.New("refused")

// ErrNotServed is wrapped by the error of a command for a node the gateway
// does not own.
var ErrNotServed = errors.New("not served")

// Confirmations matches the values nodes report with the commands waiting
// for them, by the rule of the package doc. Waiting commands are bounded by
// the tracker's command pool (at most one per node, DefaultCommandWorkers
// in all), so the map keyed by node and resource is too.
type Confirmations struct {
	grace time.Duration

	mu      sync.Mutex
	waiting map[confirmKey][]*Confirmation
}

type confirmKey struct{ node, res string }

// Confirmation is one command waiting for its node's report.
type Confirmation struct {
	c    *Confirmations
	key  confirmKey
	want string

	// guarded by c.mu
	confirmed bool
	other     *string       // the last other value reported, if any
	signal    chan struct{} // a report arrived (capacity 1)
}

// NewConfirmations returns an empty set; grace 0 means DefaultConfirmGrace.
func NewConfirmations(grace time.Duration) *Confirmations {
	if grace <= 0 {
		grace = DefaultConfirmGrace
	}
	return &Confirmations{grace: grace, waiting: make(map[confirmKey][]*Confirmation)}
}

// Expect registers a command of want on node's resource res, before the
// command is sent so that no report is missed. The caller must call Done.
func (c *Confirmations) Expect(node, res string, want []byte) *Confirmation {
	w := &Confirmation{c: c, key: confirmKey{node, res}, want: string(want), signal: make(chan struct{}, 1)}
	c.mu.Lock()
	c.waiting[w.key] = append(c.waiting[w.key], w)
	c.mu.Unlock()
	return w
}

// Report hands a value node reported for res to the commands waiting for it.
func (c *Confirmations) Report(node, res, value string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.waiting[confirmKey{node, res}] {
		if value == w.want {
			w.confirmed = true
		} else if !w.confirmed {
			v := value
			w.other = &v
		}
		select {
		case w.signal <- struct{}{}:
		default: // already signalled
		}
	}
}

// Done unregisters w; calling it again does nothing.
func (w *Confirmation) Done() {
	c := w.c
	c.mu.Lock()
	defer c.mu.Unlock()
	ws := c.waiting[w.key]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(c.waiting, w.key)
	} else {
		c.waiting[w.key] = ws
	}
}

// Wait returns nil once the node reported the commanded value, an error
// wrapping ErrRefused once it said no, one wrapping ErrCommandTimeout when
// ctx's deadline passed without a report, or ctx's cause otherwise.
func (w *Confirmation) Wait(ctx context.Context) error {
	var grace <-chan time.Time
	for {
		select {
		case <-w.signal:
			confirmed, other := w.state()
			if confirmed {
				return nil
			}
			if other != nil && grace == nil {
				t := time.NewTimer(w.c.grace)
				defer t.Stop()
				grace = t.C
			}
		case <-grace:
			if confirmed, _ := w.state(); confirmed {
				return nil
			}
			return w.refused()
		case <-ctx.Done():
			confirmed, other := w.state()
			switch {
			case confirmed:
				return nil
			case other != nil:
				return w.refused()
			case errors.Is(context.Cause(ctx), context.DeadlineExceeded):
				return ErrCommandTimeout
			}
			return context.Cause(ctx)
		}
	}
}

func (w *Confirmation) state() (bool, *string) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	return w.confirmed, w.other
}

func (w *Confirmation) refused() error {
	_, other := w.state()
	return fmt.Errorf("%w: the node reported %s=%q, not %q", ErrRefused, w.key.res, *other, w.want)
}
