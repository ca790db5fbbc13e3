package coap

import (
	"log/slog"
	"sync"
	"time"
)

// logLimit bounds log lines about bad input: a flood of spoofed or stale
// datagrams (every node pushing values right after a gateway restart, before
// its next beacon) must not flood the log. Up to burst lines a second are
// written; the rest are counted and summed up in one line.
type logLimit struct {
	log   *slog.Logger
	burst int

	mu         sync.Mutex
	window     time.Time
	n          int
	suppressed int
}

func newLogLimit(log *slog.Logger, burst int) *logLimit {
	return &logLimit{log: log, burst: burst}
}

// Warn logs msg unless more than burst lines were written this second.
func (l *logLimit) Warn(msg string, args ...any) {
	now := time.Now()
	l.mu.Lock()
	if now.Sub(l.window) >= time.Second {
		if l.suppressed > 0 {
			l.log.Warn("bad coap requests not logged", "count", l.suppressed, "since", l.window.Format(time.TimeOnly))
		}
		l.window, l.n, l.suppressed = now, 0, 0
	}
	l.n++
	write := l.n <= l.burst
	if !write {
		l.suppressed++
	}
	l.mu.Unlock()
	if write {
		l.log.Warn(msg, args...)
	}
}
