package dashboard

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

// TestFlusherWritesEveryBrowserInOrder: with enough browsers that the
// flusher writes on several goroutines (writeAll), browsers of every kind
// (Pyaiot's one message a frame, goaiot's batched page, one that
// negotiated compression and gets large values through gorilla) get every
// value once, in order, intact; and the flusher did write itself.
func TestFlusherWritesEveryBrowserInOrder(t *testing.T) {
	srv := bustest.StartServer(t)
	pub := publisher{t, bustest.Connect(t, srv)}
	pub.state("n", bus.StateOnline)
	pub.stored(1)
	// No coalescing: every value must arrive.
	td := startDashboard(t, srv, func(c *Config) { c.QueueLimit, c.SlowAfter = 4096, 4095 })
	n := max(2*minPerWriter*runtime.GOMAXPROCS(0), 3*minPerWriter)
	kinds := []string{"pyaiot", "batch", "deflate"}
	browsers := make([]*browser, n)
	for i := range browsers {
		switch kinds[i%len(kinds)] {
		case "pyaiot":
			b := dialPyaiot(t, td)
			b.send(`{"type":"new","data":"client"}`)
			if m := b.next(); m.Type != typeNew || m.UID != "n" { // subscribed: the snapshot comes
				t.Fatalf("Pyaiot page: first message %+v", m)
			}
			browsers[i] = b
			continue
		case "batch":
			browsers[i] = dialBatch(t, td)
		case "deflate":
			dialer := websocket.Dialer{EnableCompression: true}
			conn, _, err := dialer.Dial(td.wsURL(), http.Header{"Origin": {"http://localhost:8080"}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			browsers[i] = &browser{t: t, conn: conn}
			browsers[i].next() // hello
		}
		browsers[i].subscribe()
	}
	// value i: every tenth one large (compressed for the deflate browsers).
	value := func(i int) string {
		if i%10 == 9 {
			return fmt.Sprintf("%d:%s", i, strings.Repeat("large ", 200))
		}
		return fmt.Sprint(i)
	}
	const values = 300
	for i := range values {
		pub.value("n", "count", value(i))
		if i%50 == 49 {
			time.Sleep(2 * time.Millisecond) // idle browsers too: the flusher writes at once
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, b := range browsers {
		wg.Go(func() {
			for want := 0; want < values; {
				m, err := b.read(wait)
				if err != nil {
					errs <- fmt.Errorf("browser %d (%s): after %d values: %w", i, kinds[i%len(kinds)], want, err)
					return
				}
				if m.Type != typeUpdate || m.Endpoint != "count" {
					continue // the rest of a Pyaiot snapshot
				}
				want++
				if m.Data != value(want-1) {
					errs <- fmt.Errorf("browser %d (%s): value %d: got %.20q", i, kinds[i%len(kinds)], want-1, m.Data)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if w := metric(t, td, "aiot_dashboard_flusher_writes_total"); w == 0 {
		t.Error("the flusher wrote to no browser itself")
	}
}

// TestFlusherLeavesTheRestToTheWriter: a browser that stops reading fills
// its socket; what the flusher's write could not put there is written by
// the writer first, then the rest of the queue: once the browser reads
// again, it gets every value, in order.
func TestFlusherLeavesTheRestToTheWriter(t *testing.T) {
	srv := bustest.StartServer(t)
	pub := publisher{t, bustest.Connect(t, srv)}
	td := startDashboard(t, srv, func(c *Config) { c.QueueLimit, c.SlowAfter = 100000, 99999 })
	b := dial(t, td, nil)
	b.subscribe()
	const values = 3000
	pad := strings.Repeat("x", 4000) // 12 MB in all: more than the sockets hold
	value := func(i int) string { return fmt.Sprintf("%d %s", i, pad) }
	for i := range values {
		pub.value("n", "v", value(i))
		if i%100 == 99 {
			time.Sleep(2 * time.Millisecond) // the flusher writes at once, and meets a full socket
		}
	}
	for want := 0; want < values; {
		m := b.next()
		if m.Type != typeUpdate {
			continue
		}
		if m.Data != value(want) {
			t.Fatalf("value %d: got %.12q", want, m.Data)
		}
		want++
	}
	if w := metric(t, td, "aiot_dashboard_flusher_writes_total"); w == 0 {
		t.Error("the flusher wrote to no browser itself")
	}
}

// TestFlusherWritesPastOldDeadlines: a write that waits (a ping, a
// writer's) leaves its deadline on the socket; the flusher's non-blocking
// writes that come after that deadline passed must still go out, not fail
// with it and cut a browser that reads everything (it cut a busy browser
// 15 s after its writer last ran, and any browser 10 s after a ping).
func TestFlusherWritesPastOldDeadlines(t *testing.T) {
	srv := bustest.StartServer(t)
	pub := publisher{t, bustest.Connect(t, srv)}
	pub.state("n", bus.StateOnline)
	pub.stored(1)
	td := startDashboard(t, srv, func(c *Config) {
		c.PingInterval, c.WriteTimeout = 60*time.Millisecond, 20*time.Millisecond
		c.QueueLimit, c.SlowAfter = 4096, 4095 // every value must arrive
	})
	b := dialBatch(t, td)
	b.subscribe()
	const values = 60 // 20 ms apart: past several pings and their deadlines
	done := make(chan error, 1)
	go func() {
		for want := 0; want < values; {
			m, err := b.read(wait)
			if err != nil {
				done <- fmt.Errorf("after %d values: %w", want, err)
				return
			}
			if m.Type == typeUpdate && m.Endpoint == "count" {
				if m.Data != fmt.Sprint(want) {
					done <- fmt.Errorf("value %q, want %d", m.Data, want)
					return
				}
				want++
			}
		}
		done <- nil
	}()
	for i := range values {
		pub.value("n", "count", fmt.Sprint(i))
		time.Sleep(20 * time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
