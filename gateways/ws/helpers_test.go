package ws_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/ws"
	"github.com/goaiot/goaiot/gateways/ws/wssim"
)

// env is a running gateway on a real HTTP listener and a real NATS server.
type env struct {
	srv *bus.Server
	nc  *nats.Conn // a client of the test's own
	gw  *ws.Gateway
	url string // ws://127.0.0.1:port/node
	// stop ends the gateway's Run and waits for it (also done at cleanup).
	stop func()
}

// startGateway runs a gateway until the test ends; change adjusts its config.
func startGateway(t *testing.T, change func(*ws.Config)) *env {
	t.Helper()
	srv := bustest.StartServer(t)
	cfg := ws.Config{
		Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t),
		Gateway: "ws@test", Site: "test", NodeTimeout: 5 * time.Second, CommandTimeout: 2 * time.Second,
	}
	if change != nil {
		change(&cfg)
	}
	gw, err := ws.New(cfg)
	if err != nil {
		t.Fatalf("new gateway: %v", err)
	}
	hs := httptest.NewServer(gw)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway run: %v", err)
		}
	})
	t.Cleanup(func() { stop(); hs.Close() })
	return &env{srv: srv, nc: bustest.Connect(t, srv), gw: gw, url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/node", stop: stop}
}

// startSim runs a simulated node until the test ends.
func startSim(t *testing.T, e *env, id string) *wssim.Node {
	t.Helper()
	n, err := wssim.New(wssim.Config{URL: e.url, ID: id, Logger: bustest.Logger(t), SensorInterval: time.Hour, Redial: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("new sim: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return n
}

// dial opens a raw websocket connection to the gateway.
func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// nextValue waits for node.<id>.<res> and returns its value as text.
func nextValue(t *testing.T, ch <-chan *nats.Msg, id, res string) string {
	t.Helper()
	m := bustest.Next(t, ch, bus.NodeValue(id, res), 5*time.Second)
	v, err := bus.ParseValue(m.Data)
	if err != nil {
		t.Fatalf("%s: %v", m.Subject, err)
	}
	return v.Text()
}

// nextState waits for node.<id>.$state and returns it.
func nextState(t *testing.T, ch <-chan *nats.Msg, id string, timeout time.Duration) bus.State {
	t.Helper()
	m := bustest.Next(t, ch, bus.NodeState(id), timeout)
	s, err := bus.ParseState(m.Data)
	if err != nil {
		t.Fatalf("%s: %v", m.Subject, err)
	}
	return s
}

// waitClose reads from c until the gateway closes it, and returns the close
// code and reason.
func waitClose(t *testing.T, c *websocket.Conn) (int, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("read: want a close frame, got %v", err)
		}
		return ce.Code, ce.Text
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	bustest.Eventually(t, 10*time.Second, what, cond)
}
