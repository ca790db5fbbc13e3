// Package drops counts and logs rejected input without letting a flood of
// bad messages flood the log too: each reason is logged the first time, then
// at most once per interval with the number of drops in between.
package drops

import (
	"log/slog"
	"sync"
	"time"
)

// Counter counts dropped messages by reason.
type Counter struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex
	reasons map[string]*reason
}

type reason struct {
	total      int64
	suppressed int64
	logged     time.Time
}

// New returns a Counter that logs each reason at most once per every
// (default 1 s).
func New(log *slog.Logger, every time.Duration) *Counter {
	if every <= 0 {
		every = time.Second
	}
	return &Counter{log: log, every: every, now: time.Now, reasons: make(map[string]*reason)}
}

// Drop records one dropped message for reason and logs it, with attrs,
// unless that reason was logged less than one interval ago.
func (c *Counter) Drop(why string, attrs ...any) {
	now := c.now()
	c.mu.Lock()
	r, ok := c.reasons[why]
	if !ok {
		r = &reason{}
		c.reasons[why] = r
	}
	r.total++
	if ok && now.Sub(r.logged) < c.every {
		r.suppressed++
		c.mu.Unlock()
		return
	}
	suppressed := r.suppressed
	r.suppressed = 0
	r.logged = now
	c.mu.Unlock()
	if suppressed > 0 {
		attrs = append(attrs, "dropped_since_last_log", suppressed)
	}
	c.log.Warn("dropped: "+why, attrs...)
}

// Count is the number of drops recorded for reason.
func (c *Counter) Count(why string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.reasons[why]; ok {
		return r.total
	}
	return 0
}

// Total is the number of drops for every reason together.
func (c *Counter) Total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, r := range c.reasons {
		n += r.total
	}
	return n
}

// Snapshot returns the drop count of every reason seen.
func (c *Counter) Snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.reasons))
	for k, r := range c.reasons {
		out[k] = r.total
	}
	return out
}
