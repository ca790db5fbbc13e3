package bus

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// serverLogger bridges nats-server's logger to slog. Fatal messages do not
// exit the process: during start they are kept for Start to return as its
// error (and not logged, so a bad configuration ends in one line); after
// start they are logged as errors.
type serverLogger struct {
	log *slog.Logger

	mu      sync.Mutex
	fatals  []string
	started bool
}

func (l *serverLogger) logf(level slog.Level, format string, v []any) {
	l.log.Log(context.Background(), level, fmt.Sprintf(format, v...))
}

// Noticef lines (banner, listeners) are debug: aiot logs its own summary.
func (l *serverLogger) Noticef(format string, v ...any) { l.logf(slog.LevelDebug, format, v) }

// Warnf lines are warnings, but for one that is wrong for goaiot: the MQTT
// anonymous user has an empty password on purpose.
func (l *serverLogger) Warnf(format string, v ...any) {
	if strings.HasPrefix(format, "Plaintext passwords detected") {
		l.logf(slog.LevelDebug, format, v)
		return
	}
	l.logf(slog.LevelWarn, format, v)
}
func (l *serverLogger) Errorf(format string, v ...any) { l.logf(slog.LevelError, format, v) }
func (l *serverLogger) Debugf(format string, v ...any) { l.logf(slog.LevelDebug, format, v) }
func (l *serverLogger) Tracef(format string, v ...any) { l.logf(slog.LevelDebug-4, format, v) }

func (l *serverLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.mu.Lock()
	started := l.started
	if !started {
		l.fatals = append(l.fatals, msg)
	}
	l.mu.Unlock()
	if started {
		l.log.Error(msg)
	}
}

// markStarted makes later fatal messages log lines.
func (l *serverLogger) markStarted() {
	l.mu.Lock()
	l.started = true
	l.mu.Unlock()
}

// fatal returns the first fatal message, or "".
func (l *serverLogger) fatal() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.fatals) == 0 {
		return ""
	}
	return l.fatals[0]
}
