package dashboard

import (
	"testing"
	"time"
)

func TestWriteWait(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name   string
		delay  time.Duration
		since  time.Duration
		answer bool
		want   time.Duration
	}{
		{"busy browser waits for the rest of the delay", ms, ms / 4, false, 3 * ms / 4},
		{"quiet browser is written to at once", ms, 2 * ms, false, 0},
		{"exactly the delay since the last write", ms, ms, false, 0},
		{"an answer never waits", ms, ms / 4, true, 0},
		{"no delay", 0, 0, false, 0},
		{"negative delay is none", -ms, 0, false, 0},
		{"never written to", ms, time.Duration(1<<63 - 1), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := writeWait(tt.delay, tt.since, tt.answer); got != tt.want {
				t.Errorf("writeWait(%s, %s, %v) = %s, want %s", tt.delay, tt.since, tt.answer, got, tt.want)
			}
		})
	}
}
