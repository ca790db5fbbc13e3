package bustest

import (
	"testing"
	"time"
)

func TestWant(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
		why  []any
		want string // "" for nil
	}{
		{"holds", true, []any{"ignored"}, ""},
		{"no reason", false, nil, "not yet"},
		{"reason", false, []any{"3 of 5"}, "3 of 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Want(tt.ok, tt.why...)
			if got := ""; err != nil {
				got = err.Error()
				if got != tt.want {
					t.Fatalf("Want = %q, want %q", got, tt.want)
				}
			} else if tt.want != "" {
				t.Fatalf("Want = nil, want %q", tt.want)
			}
		})
	}
}

func TestEventuallyWaitsForCondition(t *testing.T) {
	n := 0
	Eventually(t, 10*time.Second, "the third poll", func() error {
		n++
		return Want(n >= 3, n)
	})
	if n != 3 {
		t.Fatalf("polled %d times, want 3", n)
	}
}
