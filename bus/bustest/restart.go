package bustest

import (
	"context"
	"sync"
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
	_, stop = start(t, fn)
	return stop
}

// start runs fn until cancel, or the test's end; wait cancels and waits
// (once) for fn to return, failing the test on an error or after 10 s.
func start(t testing.TB, fn func(context.Context) error) (cancel context.CancelFunc, wait func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	wait = func() {
		t.Helper()
		cancel()
		once.Do(func() {
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("run: did not return within 10 s of its context ending")
			}
		})
	}
	t.Cleanup(wait)
	return cancel, wait
}
