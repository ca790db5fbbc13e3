package bustest

import (
	"context"
	"testing"
	"time"
)

// RunStop runs fn in a goroutine, as Run does, and returns a func that
// stops it and waits until it returned, failing the test if it returned
// an error or not within 10 s: for restarts, where the next instance needs
// what the previous one held (its port, its last writes). Calling stop
// again, or not at all, is fine: the test's end stops fn.
func RunStop(t testing.TB, fn func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	stopped := false
	stop = func() {
		t.Helper()
		cancel()
		if stopped {
			return
		}
		stopped = true
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("run: did not return within 10 s of its context ending")
		}
	}
	t.Cleanup(stop)
	return stop
}
