package bench

import (
	"testing"
	"time"
)

func TestStagger(t *testing.T) {
	const ms, us = time.Millisecond, time.Microsecond
	tests := []struct {
		name  string
		n     int
		every time.Duration
		want  []time.Duration
	}{
		{"one sender starts at once", 1, 200 * ms, []time.Duration{0}},
		{"ten senders spread over the period", 10, 200 * ms,
			[]time.Duration{0, 20 * ms, 40 * ms, 60 * ms, 80 * ms, 100 * ms, 120 * ms, 140 * ms, 160 * ms, 180 * ms}},
		{"four senders, uneven period", 4, 10 * ms, []time.Duration{0, 2500 * us, 5000 * us, 7500 * us}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, want := range tt.want {
				if got := stagger(i, tt.n, tt.every); got != want {
					t.Errorf("stagger(%d, %d, %s) = %s, want %s", i, tt.n, tt.every, got, want)
				}
			}
		})
	}
}
