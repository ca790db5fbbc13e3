// Package bustest starts real embedded nats-servers for tests: random ports,
// a temporary data directory, the NODES stream, logs routed to the test.
package bustest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
)

// Logger returns a logger that writes to t.Log until the test ends, and
// drops lines logged after that by goroutines still stopping.
func Logger(t testing.TB) *slog.Logger {
	t.Helper()
	w := &testWriter{t: t}
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu     sync.Mutex
	t      testing.TB
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(string(p[:len(p)-1]))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

// Quiet returns a logger that discards everything (for benchmarks).
func Quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Option changes the server configuration before start.
type Option func(*bus.ServerConfig)

// WithMQTT enables the MQTT listener on a random loopback port.
func WithMQTT() Option { return func(c *bus.ServerConfig) { c.MQTTListen = "127.0.0.1:0" } }

// WithDataDir uses dir instead of a fresh temporary directory (for restarts).
func WithDataDir(dir string) Option { return func(c *bus.ServerConfig) { c.DataDir = dir } }

// StartServer starts an embedded server with a client listener on a random
// loopback port and the NODES stream, and shuts it down when the test ends.
func StartServer(t testing.TB, opts ...Option) *bus.Server {
	t.Helper()
	cfg := bus.ServerConfig{
		Name:    "test",
		DataDir: t.TempDir(),
		Listen:  "127.0.0.1:0",
		Logger:  Logger(t).With("component", "nats-server"),
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := bus.NewServer(cfg)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(s.Shutdown)
	nc := Connect(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := bus.EnsureNodesStream(ctx, js, bus.DefaultStreamConfig()); err != nil {
		t.Fatalf("stream: %v", err)
	}
	return s
}

// Connect opens a client connection to s by URL, closed when the test ends.
func Connect(t testing.TB, s *bus.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.Name(t.Name()))
	if err != nil {
		t.Fatalf("connect %s: %v", s.ClientURL(), err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Subscribe collects messages on subject into a channel of the given size.
func Subscribe(t testing.TB, nc *nats.Conn, subject string) <-chan *nats.Msg {
	t.Helper()
	ch := make(chan *nats.Msg, 4096)
	sub, err := nc.ChanSubscribe(subject, ch)
	if err != nil {
		t.Fatalf("subscribe %s: %v", subject, err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return ch
}

// Next waits for the next message on ch whose subject is subject, skipping
// others, and fails the test after timeout.
func Next(t testing.TB, ch <-chan *nats.Msg, subject string, timeout time.Duration) *nats.Msg {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-ch:
			if m.Subject == subject {
				return m
			}
		case <-deadline:
			t.Fatalf("no message on %s within %s", subject, timeout)
			return nil
		}
	}
}

// Run runs fn in a goroutine until the test ends; then it cancels fn's
// context and checks fn returned nil within 10 s. The returned func cancels
// earlier (the check still happens when the test ends).
func Run(t testing.TB, fn func(context.Context) error) context.CancelFunc {
	t.Helper()
	cancel, _ := start(t, fn)
	return cancel
}

// Eventually polls cond every 10 ms until it returns nil, and fails the
// test if it does not within timeout, saying what it waited for and cond's
// last error: why it is not there yet (see Want). It is the tests' one
// way to wait for a condition.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Want is a condition for Eventually: nil when ok, else an error saying
// why (the fmt.Sprint of why, "not yet" without it).
func Want(ok bool, why ...any) error {
	switch {
	case ok:
		return nil
	case len(why) == 0:
		return errors.New("not yet")
	}
	return errors.New(fmt.Sprint(why...))
}
