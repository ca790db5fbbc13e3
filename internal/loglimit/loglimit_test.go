package loglimit

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&buf, nil)), 3, "bad lines")
	for range 10 {
		l.Warn("bad")
	}
	if got := strings.Count(buf.String(), "msg=bad"); got != 3 {
		t.Errorf("%d lines in the first second, want 3", got)
	}
	l.mu.Lock()
	l.window = l.window.Add(-time.Second) // the second is over
	l.mu.Unlock()
	l.Warn("bad")
	if !strings.Contains(buf.String(), `msg="bad lines not logged" count=7`) {
		t.Errorf("no summary of the 7 suppressed lines in:\n%s", buf.String())
	}
	if got := strings.Count(buf.String(), "msg=bad\n"); got != 4 {
		t.Errorf("%d lines, want 4 (a new second)", got)
	}
}
