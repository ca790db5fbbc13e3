package drops

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestDropLogsOncePerInterval(t *testing.T) {
	var buf bytes.Buffer
	c := New(slog.New(slog.NewTextHandler(&buf, nil)), time.Second)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }

	tests := []struct {
		name      string
		advance   time.Duration
		why       string
		wantLines int
	}{
		{"first drop is logged", 0, "bad json", 1},
		{"second within the interval is counted only", 100 * time.Millisecond, "bad json", 1},
		{"another reason is logged", 0, "unsafe id", 2},
		{"after the interval it is logged again", 2 * time.Second, "bad json", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = now.Add(tt.advance)
			c.Drop(tt.why, "node", "n1")
			if got := strings.Count(buf.String(), "\n"); got != tt.wantLines {
				t.Fatalf("log lines = %d, want %d:\n%s", got, tt.wantLines, buf.String())
			}
		})
	}
	if got := c.Count("bad json"); got != 3 {
		t.Errorf("Count(bad json) = %d, want 3", got)
	}
	if got := c.Total(); got != 4 {
		t.Errorf("Total = %d, want 4", got)
	}
	if !strings.Contains(buf.String(), "dropped_since_last_log=1") {
		t.Errorf("the suppressed drop is not reported:\n%s", buf.String())
	}
	if got := c.Snapshot()["unsafe id"]; got != 1 {
		t.Errorf("Snapshot[unsafe id] = %d, want 1", got)
	}
}
