package presence

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus"
)

func TestConfirmationRule(t *testing.T) {
	errGone := errors.New("node disconnected")
	tests := []struct {
		name    string
		reports []string      // reported one after the other, before the wait
		cancel  error         // ctx cancelled with this cause instead of timing out
		timeout time.Duration // command timeout
		want    error         // nil, ErrRefused, ErrCommandTimeout or errGone
	}{
		{"commanded value confirms", []string{"1"}, nil, time.Minute, nil},
		{"another value then the commanded one confirms", []string{"0", "1"}, nil, time.Minute, nil},
		{"the commanded value then another still confirms", []string{"1", "0"}, nil, time.Minute, nil},
		{"another value alone refuses after the grace", []string{"0"}, nil, time.Minute, ErrRefused},
		{"another value refuses at the timeout within the grace", []string{"0"}, nil, 50 * time.Millisecond, ErrRefused},
		{"no report times out", nil, nil, 50 * time.Millisecond, ErrCommandTimeout},
		{"another resource or node does not count", nil, nil, 50 * time.Millisecond, ErrCommandTimeout},
		{"a cancel gives its cause", nil, errGone, time.Minute, errGone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConfirmations(100 * time.Millisecond)
			w := c.Expect("n1", "led", []byte("1"))
			defer w.Done()
			c.Report("n2", "led", "1")
			c.Report("n1", "other", "1")
			for _, v := range tt.reports {
				c.Report("n1", "led", v)
			}
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			if tt.cancel != nil {
				ctx2, cancel2 := context.WithCancelCause(ctx)
				cancel2(tt.cancel)
				ctx = ctx2
			}
			err := w.Wait(ctx)
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Wait = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestConfirmationsForgetDone(t *testing.T) {
	c := NewConfirmations(0)
	a := c.Expect("n1", "led", []byte("1"))
	b := c.Expect("n1", "led", []byte("0"))
	a.Done()
	a.Done()
	b.Done()
	if n := len(c.waiting); n != 0 {
		t.Fatalf("%d keys left after every Done, want 0", n)
	}
}

func TestReplyCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"ok", nil, bus.CodeOK},
		{"timeout", ErrCommandTimeout, bus.CodeTimeout},
		{"deadline", fmt.Errorf("put: %w", context.DeadlineExceeded), bus.CodeTimeout},
		{"busy", fmt.Errorf("node n1: %w", ErrCommandsBusy), bus.CodeBusy},
		{"not served", fmt.Errorf("node n1: %w", ErrNotServed), bus.CodeNoGateway},
		{"bad subject", fmt.Errorf("x: %w", errBadSubject), bus.CodeBadRequest},
		{"refused", fmt.Errorf("%w: 4.00 Bad Request", ErrRefused), bus.CodeRefused},
		{"any other failure", errors.New("node send queue full"), bus.CodeRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := replyCode(tt.err); got != tt.want {
				t.Fatalf("replyCode(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}
