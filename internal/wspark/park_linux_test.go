package wspark

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// parkServer serves s (with park) on loopback, collecting its connections.
func parkServer(t *testing.T, s *server, conns int) string {
	t.Helper()
	s.park = true
	s.bufs = NewBuffers(512)
	s.pongs = make(chan string, 4)
	s.done = make(chan error, conns)
	s.conns = make(chan *Conn, conns)
	if s.p == nil {
		s.p = runPoller(t)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// dial connects a client and returns it with the server's connection.
func dial(t *testing.T, s *server, url string) (*websocket.Conn, *Conn) {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return ws, <-s.conns
}

// parked reports whether c waits in its poller.
func parked(c *Conn) bool {
	c.park.mu.Lock()
	defer c.park.mu.Unlock()
	return c.park.parked
}

// waitParked waits until c parked again after its reader's work.
func waitParked(t *testing.T, c *Conn) {
	t.Helper()
	for range 10000 {
		if parked(c) {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("connection did not park")
}

// dialParked dials n connections, each parked before the next.
func dialParked(t *testing.T, s *server, url string, n int) ([]*websocket.Conn, []*Conn) {
	t.Helper()
	clients := make([]*websocket.Conn, n)
	conns := make([]*Conn, n)
	for i := range n {
		clients[i], conns[i] = dial(t, s, url)
		waitParked(t, conns[i])
	}
	return clients, conns
}

// parkedOne serves one connection that echoed a message and parked.
func parkedOne(t *testing.T) (*server, *websocket.Conn, *Conn) {
	t.Helper()
	s := &server{}
	url := parkServer(t, s, 1)
	ws, pc := dial(t, s, url)
	echo(t, ws, "before")
	waitParked(t, pc)
	return s, ws, pc
}

// isTimeout reports whether err is a read that timed out.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// echo sends msg and checks the server's echo.
func echo(t *testing.T, ws *websocket.Conn, msg string) {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, got, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != msg {
		t.Fatalf("echo %q, want %q", got, msg)
	}
}

func TestParkWakesForFrames(t *testing.T) {
	s := &server{}
	url := parkServer(t, s, 1)
	ws, pc := dial(t, s, url)
	for i := range 5 {
		waitParked(t, pc)
		echo(t, ws, fmt.Sprintf("message %d", i))
	}
	waitParked(t, pc)
	if n := s.parks(); n < 6 {
		t.Fatalf("parked %d times, want one per wait (6)", n)
	}
	pc.park.mu.Lock()
	lent := pc.lent
	pc.park.mu.Unlock()
	if lent != nil {
		t.Fatal("a parked connection holds a read buffer")
	}
}

func TestParkEnds(t *testing.T) {
	tests := []struct {
		name  string
		act   func(t *testing.T, ws *websocket.Conn, pc *Conn)
		check func(err error) bool
	}{
		{
			name:  "closed by another goroutine",
			act:   func(_ *testing.T, _ *websocket.Conn, pc *Conn) { go func() { _ = pc.Close() }() },
			check: func(err error) bool { return errors.Is(err, net.ErrClosed) },
		},
		{
			name:  "peer gone",
			act:   func(_ *testing.T, ws *websocket.Conn, _ *Conn) { _ = ws.NetConn().Close() },
			check: func(err error) bool { return websocket.IsCloseError(err, websocket.CloseAbnormalClosure) },
		},
		{
			name: "peer half-closed",
			act: func(t *testing.T, ws *websocket.Conn, _ *Conn) {
				if err := ws.NetConn().(*net.TCPConn).CloseWrite(); err != nil {
					t.Fatal(err)
				}
			},
			check: func(err error) bool { return websocket.IsCloseError(err, websocket.CloseAbnormalClosure) },
		},
		{
			name: "read deadline set while parked",
			act: func(_ *testing.T, _ *websocket.Conn, pc *Conn) {
				_ = pc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			},
			check: isTimeout,
		},
		{
			name: "deadline moved later while parked",
			act: func(_ *testing.T, _ *websocket.Conn, pc *Conn) {
				_ = pc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
				_ = pc.SetDeadline(time.Now().Add(80 * time.Millisecond))
			},
			check: isTimeout,
		},
		{
			name: "close frame",
			act: func(t *testing.T, ws *websocket.Conn, _ *Conn) {
				msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
				if err := ws.WriteMessage(websocket.CloseMessage, msg); err != nil {
					t.Fatal(err)
				}
			},
			check: func(err error) bool { return websocket.IsCloseError(err, websocket.CloseNormalClosure) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ws, pc := parkedOne(t)
			tt.act(t, ws, pc)
			if err := <-s.done; !tt.check(err) {
				t.Fatalf("reader ended with %v (%T)", err, err)
			}
		})
	}
}

// TestParkDeadlineNotYet checks that a deadline moved later does not end
// the wait at the earlier one: the reader still answers.
func TestParkDeadlineNotYet(t *testing.T) {
	s := &server{}
	url := parkServer(t, s, 1)
	ws, pc := dial(t, s, url)
	waitParked(t, pc)
	_ = pc.SetReadDeadline(time.Now().Add(time.Millisecond))
	_ = pc.SetReadDeadline(time.Now().Add(time.Hour))
	time.Sleep(20 * time.Millisecond)
	echo(t, ws, "still here")
	select {
	case err := <-s.done:
		t.Fatalf("reader ended: %v", err)
	default:
	}
}

// TestParkNoGoroutine checks that parked connections keep no goroutine.
func TestParkNoGoroutine(t *testing.T) {
	const n = 300
	s := &server{}
	url := parkServer(t, s, n)
	before := runtime.NumGoroutine()
	clients := make([]*websocket.Conn, n)
	conns := make([]*Conn, n)
	for i := range n {
		clients[i], conns[i] = dial(t, s, url)
	}
	for _, pc := range conns {
		waitParked(t, pc)
	}
	if g := runtime.NumGoroutine(); g > before+n/10 {
		t.Fatalf("%d goroutines with %d parked connections, %d before", g, n, before)
	}
	for i, ws := range clients {
		echo(t, ws, fmt.Sprint("to ", i))
	}
}

// TestParkDescriptorReuse closes parked connections and opens new ones,
// which the kernel gives the same descriptors: each new connection gets
// its own frames only, and an event meant for a closed connection (one
// read from the set before the close) resumes no other.
func TestParkDescriptorReuse(t *testing.T) {
	const n = 40
	s := &server{}
	url := parkServer(t, s, 3*n)
	type old struct {
		fd  int32
		gen uint32
	}
	var closed []old
	var first []*websocket.Conn
	var firstConns []*Conn
	for range n {
		ws, pc := dial(t, s, url)
		waitParked(t, pc)
		pc.park.mu.Lock()
		closed = append(closed, old{pc.park.fd, pc.park.gen})
		pc.park.mu.Unlock()
		first, firstConns = append(first, ws), append(firstConns, pc)
	}
	for i, pc := range firstConns {
		if i%2 == 0 {
			_ = pc.Close() // by the server, while parked
		} else {
			_ = first[i].NetConn().Close() // by the peer
		}
		if err := <-s.done; err == nil {
			t.Fatal("closed connection's reader did not fail")
		}
		_ = pc.Close()
		_ = first[i].Close()
	}
	reused := 0
	clients, conns := dialParked(t, s, url, n)
	for _, o := range closed {
		s.p.fire(o.fd, o.gen) // a late event of the closed connection
	}
	for i, pc := range conns {
		for _, o := range closed {
			if o.fd == pc.park.fd {
				reused++
				break
			}
		}
		if !parked(pc) {
			t.Fatalf("connection %d (fd %d) woken by an event of a closed one", i, pc.park.fd)
		}
	}
	if reused == 0 {
		t.Fatal("no descriptor was reused: the test proves nothing")
	}
	for i, ws := range clients {
		echo(t, ws, fmt.Sprint("new ", i))
	}
	select {
	case err := <-s.done:
		t.Fatalf("a reader ended: %v", err)
	default:
	}
}

// TestParkShutdown stops the poller with connections parked: they wait
// with a goroutine from then on, and still answer.
func TestParkShutdown(t *testing.T) {
	s := &server{}
	p := NewPoller()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- p.Run(ctx) }()
	<-p.Ready()
	defer cancel()
	s.p = p
	url := parkServer(t, s, 8)
	var clients []*websocket.Conn
	for range 4 {
		ws, pc := dial(t, s, url)
		waitParked(t, pc)
		clients = append(clients, ws)
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("poller: %v", err)
	}
	parks := s.parks()
	late, _ := dial(t, s, url)
	for i, ws := range append(clients, late) {
		echo(t, ws, fmt.Sprint("after ", i))
	}
	if s.parks() != parks {
		t.Fatal("a connection parked in a stopped poller")
	}
}

// TestParkTLS checks that a TLS connection does not park (its socket may
// be empty while tls.Conn holds decrypted bytes) and still answers.
func TestParkTLS(t *testing.T) {
	s := &server{park: true}
	s.bufs = NewBuffers(512)
	s.pongs = make(chan string, 4)
	s.done = make(chan error, 1)
	s.p = runPoller(t)
	srv := httptest.NewTLSServer(s)
	defer srv.Close()
	d := websocket.Dialer{TLSClientConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig}
	ws, _, err := d.Dial("wss"+strings.TrimPrefix(srv.URL, "https"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for i := range 3 {
		echo(t, ws, fmt.Sprint("tls ", i))
	}
	if n := s.parks(); n != 0 {
		t.Fatalf("a TLS connection parked %d times", n)
	}
}

// lingering reports whether c's reader waits in Linger.
func lingering(c *Conn) bool {
	c.park.mu.Lock()
	defer c.park.mu.Unlock()
	return !c.park.lingering.IsZero()
}

// waitLingering waits until c's reader waits in Linger.
func waitLingering(t *testing.T, c *Conn) {
	t.Helper()
	for range 10000 {
		if lingering(c) {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("reader did not linger")
}

// makeBusy sends two messages, each to a parked reader, which then
// lingers (its two parks were shorter than its linger).
func makeBusy(t *testing.T, ws *websocket.Conn, pc *Conn) {
	t.Helper()
	for i := range 2 {
		waitParked(t, pc)
		echo(t, ws, fmt.Sprint("wake ", i))
	}
	waitLingering(t, pc)
}

func TestLinger(t *testing.T) {
	tests := []struct {
		name   string
		linger time.Duration
		act    func(t *testing.T, s *server, ws *websocket.Conn, pc *Conn)
		check  func(err error) bool // how the reader ends; nil: it does not
	}{
		{
			name:   "frames while lingering: no park",
			linger: time.Hour,
			act: func(t *testing.T, s *server, ws *websocket.Conn, pc *Conn) {
				makeBusy(t, ws, pc)
				parks := s.parks()
				for i := range 3 {
					waitLingering(t, pc)
					echo(t, ws, fmt.Sprint("busy ", i))
				}
				if s.parks() != parks {
					t.Fatal("a busy reader parked")
				}
			},
		},
		{
			name:   "not busy: parks at once, then wakes",
			linger: time.Hour,
			act: func(t *testing.T, s *server, ws *websocket.Conn, pc *Conn) {
				waitParked(t, pc)
				echo(t, ws, "after the park")
				waitParked(t, pc)
			},
		},
		{
			name:   "read deadline before the linger's end",
			linger: time.Hour,
			act: func(t *testing.T, s *server, ws *websocket.Conn, pc *Conn) {
				makeBusy(t, ws, pc)
				_ = pc.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
			},
			check: isTimeout,
		},
		{
			name:   "read deadline at once",
			linger: time.Hour,
			act: func(t *testing.T, s *server, ws *websocket.Conn, pc *Conn) {
				makeBusy(t, ws, pc)
				_ = pc.SetReadDeadline(time.Now().Add(-time.Second))
			},
			check: isTimeout,
		},
		{
			name:   "read deadline after the linger's end",
			linger: time.Second,
			act: func(t *testing.T, s *server, ws *websocket.Conn, pc *Conn) {
				makeBusy(t, ws, pc)
				_ = pc.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
				waitParked(t, pc) // the linger ended first
			},
			check: isTimeout,
		},
		{
			name:   "closed while lingering",
			linger: time.Hour,
			act: func(t *testing.T, s *server, ws *websocket.Conn, pc *Conn) {
				makeBusy(t, ws, pc)
				_ = pc.Close()
			},
			check: func(err error) bool { return errors.Is(err, net.ErrClosed) },
		},
		{
			name:   "peer gone while lingering",
			linger: time.Hour,
			act: func(t *testing.T, s *server, ws *websocket.Conn, pc *Conn) {
				makeBusy(t, ws, pc)
				_ = ws.NetConn().Close()
			},
			check: func(err error) bool { return websocket.IsCloseError(err, websocket.CloseAbnormalClosure) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &server{linger: tt.linger}
			url := parkServer(t, s, 1)
			ws, pc := dial(t, s, url)
			tt.act(t, s, ws, pc)
			if tt.check == nil {
				select {
				case err := <-s.done:
					t.Fatalf("reader ended: %v", err)
				default:
				}
				return
			}
			if err := <-s.done; !tt.check(err) {
				t.Fatalf("reader ended with %v (%T)", err, err)
			}
		})
	}
}

// TestParkForgetsClosed: the poller keeps a connection by its descriptor
// only while it is open; many parked connections, closed by the server or
// by the peer (the server closing after its reader failed), leave it
// empty.
func TestParkForgetsClosed(t *testing.T) {
	const n = 200
	s := &server{}
	url := parkServer(t, s, n)
	clients, conns := dialParked(t, s, url, n)
	for i, pc := range conns {
		if i%2 == 0 {
			_ = pc.Close()
		} else {
			_ = clients[i].NetConn().Close()
		}
		if err := <-s.done; err == nil {
			t.Fatal("closed connection's reader did not fail")
		}
		_ = pc.Close()
	}
	s.p.mu.RLock()
	left := len(s.p.conns)
	s.p.mu.RUnlock()
	if left != 0 {
		t.Fatalf("the poller still holds %d of %d closed connections", left, n)
	}
}

// TestEvery checks the connection's one timer: it runs Every's ticks
// without resuming a parked reader, still ends a parked read at its
// deadline, whichever comes first, and stops at Close.
func TestEvery(t *testing.T) {
	tests := []struct {
		name     string
		every    time.Duration
		deadline time.Duration // 0: none
		minTicks int64         // ticks seen before the reader ends (or before Close)
	}{
		{name: "ticks while parked", every: 10 * time.Millisecond, minTicks: 5},
		{name: "deadline before the first tick", every: time.Hour, deadline: 50 * time.Millisecond},
		{name: "ticks then the deadline", every: 10 * time.Millisecond, deadline: 150 * time.Millisecond, minTicks: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ws, pc := parkedOne(t)
			parks := s.parks()
			var ticks atomic.Int64
			pc.Every(tt.every, func() { ticks.Add(1) })
			if tt.deadline > 0 {
				start := time.Now()
				_ = pc.SetReadDeadline(start.Add(tt.deadline))
				var err error
				select {
				case err = <-s.done:
				case <-time.After(10 * time.Second):
					t.Fatal("the parked reader was not resumed at its deadline")
				}
				if !isTimeout(err) {
					t.Fatalf("reader ended with %v, want a timeout", err)
				}
				if took := time.Since(start); took < tt.deadline {
					t.Fatalf("reader ended after %s, before its deadline %s", took, tt.deadline)
				}
			} else {
				for ticks.Load() < tt.minTicks {
					time.Sleep(time.Millisecond)
				}
				if !parked(pc) || s.parks() != parks {
					t.Fatal("a tick resumed the parked reader")
				}
				echo(t, ws, "still served")
			}
			if n := ticks.Load(); n < tt.minTicks {
				t.Fatalf("%d ticks, want at least %d", n, tt.minTicks)
			}
			_ = pc.Close()
			period := min(tt.every, 10*time.Millisecond)
			time.Sleep(period) // a tick that had fired finishes
			n := ticks.Load()
			time.Sleep(5 * period)
			if got := ticks.Load(); got != n {
				t.Fatalf("%d ticks after Close", got-n)
			}
		})
	}
}

// TestEverySkipsWhileTicking checks that a tick slower than its period
// (a ping blocked on a stalled peer) never runs twice at once: the ticks
// due meanwhile are skipped, and ticking resumes once it returns.
func TestEverySkipsWhileTicking(t *testing.T) {
	_, _, pc := parkedOne(t)
	var running, most, ticks atomic.Int64
	pc.Every(2*time.Millisecond, func() {
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		running.Add(-1)
		ticks.Add(1)
	})
	deadline := time.Now().Add(10 * time.Second)
	for ticks.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	_ = pc.Close()
	if n := ticks.Load(); n < 3 {
		t.Fatalf("%d ticks in 10 s, want ticking to go on after a slow tick", n)
	}
	if m := most.Load(); m != 1 {
		t.Fatalf("%d ticks ran at once, want 1", m)
	}
}
