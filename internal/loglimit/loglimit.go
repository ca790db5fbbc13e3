// Package loglimit bounds log lines about bad input at the edges: a flood of
// spoofed datagrams or bad handshakes must not flood the log. Up to a burst
// of lines a second are written; the rest are counted and summed up in one
// line when the next second begins.
package loglimit

import (
	"log/slog"
	"sync"
	"time"
)

// Limit writes at most burst warnings a second to its logger.
type Limit struct {
	log   *slog.Logger
	burst int
	what  string // names the suppressed lines in the summary

	mu         sync.Mutex
	window     time.Time
	n          int
	suppressed int
}

// New returns a Limit of burst lines a second; what names the lines in the
// summary of those not written ("bad coap requests").
func New(log *slog.Logger, burst int, what string) *Limit {
	return &Limit{log: log, burst: burst, what: what}
}

// Warn logs msg unless more than burst lines were written this second.
func (l *Limit) Warn(msg string, args ...any) {
	now := time.Now()
	l.mu.Lock()
	if now.Sub(l.window) >= time.Second {
		if l.suppressed > 0 {
			l.log.Warn(l.what+" not logged", "count", l.suppressed, "since", l.window.Format(time.TimeOnly))
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
