package ws_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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

// peer is a raw node connection whose frames a goroutine reads (and so
// answers pings) until the gateway closes it.
type peer struct {
	c      *websocket.Conn
	closed chan struct{} // closed once the connection ended
	code   int           // close code, valid after closed
	reason string
}

// dialPeer connects a reading node; header may be nil.
func dialPeer(t *testing.T, url string, header http.Header) *peer {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, header)
	if err != nil {
		t.Fatalf("dial %s: %v (%s)", url, err, status(resp))
	}
	t.Cleanup(func() { _ = c.Close() })
	p := &peer{c: c, closed: make(chan struct{})}
	go p.read()
	return p
}

func (p *peer) read() {
	defer close(p.closed)
	for {
		if _, _, err := p.c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				p.code, p.reason = ce.Code, ce.Text
			}
			return
		}
	}
}

// open reports whether the gateway has not closed the connection.
func (p *peer) open() bool {
	select {
	case <-p.closed:
		return false
	default:
		return true
	}
}

// waitClosed waits for the gateway to close p and returns code and reason.
func (p *peer) waitClosed(t *testing.T) (int, string) {
	t.Helper()
	select {
	case <-p.closed:
		return p.code, p.reason
	case <-time.After(10 * time.Second):
		t.Fatal("the gateway did not close the connection")
		return 0, ""
	}
}

// send writes one update frame of data (resource: JSON string).
func send(t *testing.T, c *websocket.Conn, data map[string]string) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"type": "update", "data": data})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatalf("send update: %v", err)
	}
}

// refusedDial dials url expecting the handshake to be refused, and returns
// the HTTP status and body.
func refusedDial(t *testing.T, url string, header http.Header) (int, string) {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, header)
	if err == nil {
		_ = c.Close()
		t.Fatalf("dial %s: admitted, want refused", url)
	}
	if resp == nil {
		t.Fatalf("dial %s: %v, want an HTTP refusal", url, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func status(resp *http.Response) string {
	if resp == nil {
		return "no response"
	}
	return resp.Status
}

// drain waits until the gateway handled (published or skipped) handled
// values in all, then returns the messages on ch (a subscription to node.>)
// up to the next node.check, which the gateway publishes on the connection
// its values go out on: every value it published is in the list, and
// nothing else can have been published in between.
func drain(t *testing.T, e *env, ch <-chan *nats.Msg, handled int64) []*nats.Msg {
	t.Helper()
	bustest.Eventually(t, 10*time.Second, fmt.Sprintf("%d values handled", handled), func() error {
		st := e.gw.Stats()
		return bustest.Want(st.Values+st.Skipped >= handled)
	})
	if err := e.nc.Publish(bus.SubjectGatewayCheck, nil); err != nil {
		t.Fatal(err)
	}
	var out []*nats.Msg
	for {
		select {
		case m := <-ch:
			if m.Subject == bus.SubjectNodeCheck {
				return out
			}
			out = append(out, m)
		case <-time.After(10 * time.Second):
			t.Fatal("no node.check after gateway.check")
		}
	}
}

// handled is how many values the gateway published or skipped so far.
func handled(e *env) int64 {
	st := e.gw.Stats()
	return st.Values + st.Skipped
}

// values lists "res=value" of the node values among msgs, in order.
func values(t *testing.T, msgs []*nats.Msg) []string {
	t.Helper()
	var out []string
	for _, m := range msgs {
		sub, err := bus.ParseSubject(m.Subject)
		if err != nil || sub.Kind != bus.KindNodeValue {
			continue
		}
		v, err := bus.ParseValue(m.Data)
		if err != nil {
			t.Fatalf("%s: %v", m.Subject, err)
		}
		out = append(out, sub.Node+"."+sub.Resource+"="+v.Text())
	}
	return out
}
