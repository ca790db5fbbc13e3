package wspark

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// server upgrades through Buffers and echoes messages, waiting with Wait
// and Control between messages as a reader should, on a fresh goroutine
// each time, or, with park, parked in a running Poller. What ended its
// loop comes on done.
type server struct {
	bufs   *Buffers
	setup  func(ws *websocket.Conn)
	pongs  chan string
	done   chan error
	park   bool
	linger time.Duration // with park: Linger first
	p      *Poller       // with park: the running poller
	// tries and refused count Park's calls and its refusals, each before
	// anything else happens: a Park that parked may resume the reader, and
	// the test go on, before Park's own caller runs again.
	tries, refused atomic.Int64
	conns          chan *Conn // the upgraded connections, if not nil
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	pw := s.bufs.Wrap(w)
	ws, err := (&websocket.Upgrader{}).Upgrade(pw, r, nil)
	if err != nil {
		s.done <- err
		return
	}
	ws.SetPongHandler(func(p string) error { s.pongs <- p; return nil })
	if s.setup != nil {
		s.setup(ws)
	}
	s.wait(ws, pw.Conn())
	if s.conns != nil {
		s.conns <- pw.Conn()
	}
}

// wait parks pc or reads on a fresh goroutine.
func (s *server) wait(ws *websocket.Conn, pc *Conn) {
	if s.linger > 0 {
		go s.lingerThenPark(ws, pc)
		return
	}
	if s.p != nil && s.tryPark(ws, pc) {
		return
	}
	go s.read(ws, pc)
}

// tryPark parks pc, counted (see tries).
func (s *server) tryPark(ws *websocket.Conn, pc *Conn) bool {
	s.tries.Add(1)
	if pc.Park(s.p, func() { s.resume(ws, pc) }) {
		return true
	}
	s.refused.Add(1)
	return false
}

// parks is the times Park parked.
func (s *server) parks() int64 { return s.tries.Load() - s.refused.Load() }

// lingerThenPark waits with Linger, then parks, then waits with Wait.
func (s *server) lingerThenPark(ws *websocket.Conn, pc *Conn) {
	if !pc.Linger(s.p, s.linger) {
		if s.tryPark(ws, pc) {
			return
		}
		pc.Wait()
	}
	s.resume(ws, pc)
}

func (s *server) read(ws *websocket.Conn, pc *Conn) {
	pc.Wait()
	s.resume(ws, pc)
}

func (s *server) resume(ws *websocket.Conn, pc *Conn) {
	for {
		more, err := pc.Control(ws)
		if err != nil {
			s.done <- err
			return
		}
		if !more {
			s.wait(ws, pc)
			return
		}
		typ, msg, err := ws.ReadMessage()
		if err != nil {
			s.done <- err
			return
		}
		if err := ws.WriteMessage(typ, msg); err != nil {
			s.done <- err
			return
		}
	}
}

// runPoller runs a poller until the test ends.
func runPoller(t *testing.T) *Poller {
	t.Helper()
	p := NewPoller()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- p.Run(ctx) }()
	<-p.Ready()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("poller: %v", err)
		}
	})
	return p
}

// start serves s and returns a connected client's websocket and its raw
// connection, for frames written by hand.
func start(t *testing.T, s *server) (*websocket.Conn, net.Conn) {
	t.Helper()
	s.bufs = NewBuffers(512)
	s.pongs = make(chan string, 4)
	s.done = make(chan error, 1)
	if s.park {
		s.p = runPoller(t)
		t.Cleanup(func() {
			if s.linger == 0 && s.parks() == 0 && !t.Failed() {
				t.Error("the reader never parked")
			}
		})
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return ws, ws.NetConn()
}

// waits are the ways a reader waits: a goroutine in Wait, parked, or
// parked after a linger (which the test's pauses may or may not outlast).
var waits = []struct {
	name   string
	park   bool
	linger time.Duration
}{{"wait", false, 0}, {"park", true, 0}, {"linger", true, 10 * time.Millisecond}}

// frame is a client frame (masked) with opcode op.
func frame(op byte, fin bool, payload string) []byte {
	b := []byte{op}
	if fin {
		b[0] |= 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	default:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b = append(b, key[:]...)
	for i := range len(payload) {
		b = append(b, payload[i]^key[i%4])
	}
	return b
}

// write sends the pieces one by one, pausing between them so that the
// server's reader is likely to have read (and waited) in between.
func write(t *testing.T, nc net.Conn, pieces ...[]byte) {
	t.Helper()
	for i, p := range pieces {
		if i > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := nc.Write(p); err != nil {
			t.Fatal(err)
		}
	}
}

// split cuts b after each of the offsets.
func split(b []byte, at ...int) [][]byte {
	var out [][]byte
	last := 0
	for _, a := range at {
		out = append(out, b[last:a])
		last = a
	}
	return append(out, b[last:])
}

func TestEchoAcrossWaits(t *testing.T) {
	text := frame(websocket.TextMessage, true, "hello, node")
	ping := frame(websocket.PingMessage, true, "p1")
	first := frame(websocket.TextMessage, false, "frag-")
	last := frame(0, true, "ment")    // continuation
	long := strings.Repeat("x", 2000) // longer than the 512-byte buffer
	tests := []struct {
		name   string
		pieces [][]byte
		echo   []string
		pong   string // the pong the client must get first, if any
	}{
		{"one write", [][]byte{text}, []string{"hello, node"}, ""},
		{"first byte alone (the waited byte)", split(text, 1), []string{"hello, node"}, ""},
		{"byte by byte", split(text, 1, 2, 3, 4, 5, 6, 7, 8), []string{"hello, node"}, ""},
		{"header split from the mask", split(text, 2, 4), []string{"hello, node"}, ""},
		{"two messages in one write", [][]byte{append(append([]byte{}, text...), text...)}, []string{"hello, node", "hello, node"}, ""},
		{"larger than the buffer", [][]byte{frame(websocket.TextMessage, true, long)}, []string{long}, ""},
		{"larger than the buffer, split", split(frame(websocket.TextMessage, true, long), 1, 600, 1500), []string{long}, ""},
		{"ping then text in one write", [][]byte{append(append([]byte{}, ping...), text...)}, []string{"hello, node"}, "p1"},
		{"ping split, then text", append(split(ping, 1, 3), text), []string{"hello, node"}, "p1"},
		{"ping between fragments (gorilla's)", [][]byte{first, ping, last}, []string{"frag-ment"}, "p1"},
	}
	for _, w := range waits {
		for _, tt := range tests {
			t.Run(w.name+"/"+tt.name, func(t *testing.T) {
				ws, nc := start(t, &server{park: w.park, linger: w.linger})
				got := make(chan string, 1)
				ws.SetPingHandler(nil)
				ws.SetPongHandler(func(p string) error { got <- p; return nil })
				write(t, nc, tt.pieces...)
				_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
				for _, want := range tt.echo {
					_, msg, err := ws.ReadMessage()
					if err != nil {
						t.Fatal(err)
					}
					if string(msg) != want {
						t.Fatalf("echo %.40q, want %.40q", msg, want)
					}
				}
				if tt.pong != "" {
					if p := <-got; p != tt.pong {
						t.Fatalf("pong %q, want %q", p, tt.pong)
					}
				}
			})
		}
	}
}

func TestPongReachesHandler(t *testing.T) {
	tests := []struct {
		name   string
		pieces [][]byte
		want   []string
	}{
		{"one pong", [][]byte{frame(websocket.PongMessage, true, "alive")}, []string{"alive"}},
		{"empty pong", [][]byte{frame(websocket.PongMessage, true, "")}, []string{""}},
		{"two pongs, one write", [][]byte{append(frame(websocket.PongMessage, true, "a"), frame(websocket.PongMessage, true, "b")...)}, []string{"a", "b"}},
		{"pong split", split(frame(websocket.PongMessage, true, "split"), 1, 2, 5), []string{"split"}},
		{"largest pong", [][]byte{frame(websocket.PongMessage, true, strings.Repeat("p", 125))}, []string{strings.Repeat("p", 125)}},
	}
	for _, w := range waits {
		for _, tt := range tests {
			t.Run(w.name+"/"+tt.name, func(t *testing.T) {
				s := &server{park: w.park, linger: w.linger}
				_, nc := start(t, s)
				write(t, nc, tt.pieces...)
				for _, want := range tt.want {
					if p := <-s.pongs; p != want {
						t.Fatalf("pong %q, want %q", p, want)
					}
				}
			})
		}
	}
}

func TestEnd(t *testing.T) {
	tests := []struct {
		name  string
		setup func(ws *websocket.Conn)
		send  func(t *testing.T, ws *websocket.Conn, nc net.Conn)
		check func(err error) bool
		code  int // the close frame the client must get, if any
	}{
		{
			name: "close from the client",
			send: func(t *testing.T, _ *websocket.Conn, nc net.Conn) {
				write(t, nc, frame(websocket.CloseMessage, true, "\x03\xe8bye"))
			},
			check: func(err error) bool { return websocket.IsCloseError(err, websocket.CloseNormalClosure) },
			code:  websocket.CloseNormalClosure,
		},
		{
			name:  "read limit exceeded",
			setup: func(ws *websocket.Conn) { ws.SetReadLimit(16) },
			send: func(t *testing.T, _ *websocket.Conn, nc net.Conn) {
				write(t, nc, split(frame(websocket.TextMessage, true, strings.Repeat("y", 32)), 1)...)
			},
			check: func(err error) bool { return errors.Is(err, websocket.ErrReadLimit) },
			code:  websocket.CloseMessageTooBig,
		},
		{
			name:  "read deadline while waiting",
			setup: func(ws *websocket.Conn) { _ = ws.SetReadDeadline(time.Now().Add(50 * time.Millisecond)) },
			send:  func(*testing.T, *websocket.Conn, net.Conn) {},
			check: func(err error) bool {
				var ne net.Error
				return errors.As(err, &ne) && ne.Timeout()
			},
		},
		{
			name: "peer gone",
			send: func(t *testing.T, _ *websocket.Conn, nc net.Conn) { _ = nc.Close() },
			check: func(err error) bool {
				return websocket.IsCloseError(err, websocket.CloseAbnormalClosure)
			},
		},
		{
			name: "peer gone inside a frame",
			send: func(t *testing.T, _ *websocket.Conn, nc net.Conn) {
				write(t, nc, frame(websocket.PingMessage, true, "half")[:4])
				_ = nc.Close()
			},
			check: func(err error) bool {
				return websocket.IsCloseError(err, websocket.CloseAbnormalClosure)
			},
		},
		{
			name: "ping too long (gorilla refuses)",
			send: func(t *testing.T, _ *websocket.Conn, nc net.Conn) {
				write(t, nc, frame(websocket.PingMessage, true, strings.Repeat("z", 126)))
			},
			check: func(err error) bool { return err != nil && strings.Contains(err.Error(), "len > 125") },
			code:  websocket.CloseProtocolError,
		},
		{
			name: "unmasked ping (gorilla refuses)",
			send: func(t *testing.T, _ *websocket.Conn, nc net.Conn) {
				write(t, nc, []byte{0x89, 0x01, 'u'})
			},
			check: func(err error) bool { return err != nil && strings.Contains(err.Error(), "bad MASK") },
			code:  websocket.CloseProtocolError,
		},
		{
			name: "ping handler fails",
			setup: func(ws *websocket.Conn) {
				ws.SetPingHandler(func(string) error { return errHandler })
			},
			send: func(t *testing.T, _ *websocket.Conn, nc net.Conn) {
				write(t, nc, frame(websocket.PingMessage, true, "p"))
			},
			check: func(err error) bool { return errors.Is(err, errHandler) },
		},
	}
	for _, w := range waits {
		for _, tt := range tests {
			t.Run(w.name+"/"+tt.name, func(t *testing.T) {
				s := &server{setup: tt.setup, park: w.park, linger: w.linger}
				ws, nc := start(t, s)
				tt.send(t, ws, nc)
				if err := <-s.done; !tt.check(err) {
					t.Fatalf("server's reader ended with %v (%T)", err, err)
				}
				if tt.code == 0 {
					return
				}
				_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, _, err := ws.ReadMessage()
				if !websocket.IsCloseError(err, tt.code) {
					t.Fatalf("client got %v, want close %d", err, tt.code)
				}
			})
		}
	}
}

var errHandler = errors.New("handler failed")

func TestStickyReadError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := &Conn{Conn: nc, bufs: NewBuffers(0)}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(-time.Second))
	p := make([]byte, 4)
	_, first := c.Read(p)
	if first == nil {
		t.Fatal("read past the deadline did not fail")
	}
	// The socket could be read now; the Conn still reports its error.
	_ = c.SetReadDeadline(time.Time{})
	if _, err := peer.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if n, err := c.Read(p); err != first || n != 0 {
			t.Fatalf("read %d: %d bytes, %v, want the first error %v", i+2, n, err, first)
		}
	}
}

func TestEarlyDataRefused(t *testing.T) {
	s := &server{}
	s.bufs = NewBuffers(512)
	s.done = make(chan error, 1)
	srv := httptest.NewServer(s)
	defer srv.Close()
	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// A client that sends a frame before the handshake's answer: gorilla
	// refuses it, as without wspark.
	req := "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := nc.Write(append([]byte(req), frame(websocket.TextMessage, true, "early")...)); err != nil {
		t.Fatal(err)
	}
	if err := <-s.done; err == nil || !strings.Contains(err.Error(), "before handshake") {
		t.Fatalf("upgrade: %v, want gorilla's refusal of early data", err)
	}
}
