package dashboard

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/goaiot/goaiot/bus/bustest"
)

// dialSlow connects a browser whose socket has a small receive buffer
// (but above the loopback MSS, so that TCP still flows well once it reads),
// so that the server's writes back up soon after it stops reading.
func dialSlow(t *testing.T, td *testDashboard) *browser {
	t.Helper()
	return dialSlowURL(t, td.wsURL())
}

// dialSlowURL is dialSlow on url.
func dialSlowURL(t *testing.T, url string) *browser {
	t.Helper()
	dialer := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			err = c.(*net.TCPConn).SetReadBuffer(128 << 10)
		}
		return c, err
	}}
	conn, _, err := dialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	b := &browser{t: t, conn: conn, batch: strings.Contains(url, "batch=1")}
	b.next() // hello
	return b
}

// reader reads a browser's updates in the background and keeps them.
type reader struct {
	mu      sync.Mutex
	updates []msg
	err     error
	done    chan struct{}
}

func readAll(b *browser) *reader {
	r := &reader{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			m, err := b.read(time.Minute)
			r.mu.Lock()
			if err != nil {
				r.err = err
				r.mu.Unlock()
				return
			}
			if m.Type == typeUpdate {
				r.updates = append(r.updates, m)
			}
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *reader) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.updates)
}

var padding = strings.Repeat("x", 1000)

// TestSlowBrowserCoalesced publishes values while one browser reads
// everything and another reads nothing: the fast one gets every value in
// order; the slow one, once it reads again, gets the latest value of every
// resource but not every value, and stays connected.
func TestSlowBrowserCoalesced(t *testing.T) {
	srv := bustest.StartServer(t)
	pub := publisher{t, bustest.Connect(t, srv)}
	td := startDashboard(t, srv, func(c *Config) { c.SlowAfter, c.WriteTimeout = 256, time.Minute })
	fast := dial(t, td, nil)
	fast.subscribe()
	slow := dialSlow(t, td)
	slow.subscribe()
	fastR := readAll(fast)

	const resources, batch = 5, 100
	published := 0
	publish := func(v string) {
		pub.value("s", fmt.Sprintf("r%d", published%resources), v)
		published++
	}
	deadline := time.Now().Add(30 * time.Second)
	for metric(t, td, "aiot_dashboard_coalesced_total") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no update coalesced after %d published", published)
		}
		for range batch {
			publish(fmt.Sprintf("%d:%s", published, padding))
		}
		bustest.Eventually(t, wait, "the fast browser", func() error { return bustest.Want(fastR.count() == published) })
	}
	for range resources {
		publish(fmt.Sprintf("%d:final", published))
	}
	bustest.Eventually(t, wait, "the fast browser", func() error { return bustest.Want(fastR.count() == published) })

	t.Run("fast browser got every value in order", func(t *testing.T) {
		fastR.mu.Lock()
		defer fastR.mu.Unlock()
		for i, m := range fastR.updates {
			var n int
			fmt.Sscanf(m.Data, "%d:", &n)
			if n != i || m.Endpoint != fmt.Sprintf("r%d", i%resources) {
				t.Fatalf("update %d: %s=%.10s", i, m.Endpoint, m.Data)
			}
		}
	})
	t.Run("slow browser got the latest values", func(t *testing.T) {
		slowR := readAll(slow)
		finals := func() int {
			slowR.mu.Lock()
			defer slowR.mu.Unlock()
			n := 0
			for _, m := range slowR.updates {
				if strings.HasSuffix(m.Data, ":final") {
					n++
				}
			}
			return n
		}
		bustest.Eventually(t, wait, "the final values", func() error { return bustest.Want(finals() == resources) })
		if n := slowR.count(); n >= published {
			t.Errorf("slow browser got %d of %d values: nothing coalesced", n, published)
		}
		if cut := metric(t, td, "aiot_dashboard_disconnects_total", "reason", cutSlow); cut != 0 {
			t.Errorf("%v browsers cut off", cut)
		}
		t.Logf("published %d, the slow browser got %d", published, slowR.count())
	})
}

// TestStuckBrowserCutOff fills a browser's queue with messages that are
// never dropped (new nodes): it is cut off with 1013, while another browser
// keeps getting everything.
func TestStuckBrowserCutOff(t *testing.T) {
	srv := bustest.StartServer(t)
	pub := publisher{t, bustest.Connect(t, srv)}
	td := startDashboard(t, srv, func(c *Config) { c.QueueLimit, c.SlowAfter = 64, 8 })
	fast := dial(t, td, nil)
	fast.subscribe()
	stuck := dialSlow(t, td)
	stuck.subscribe()
	fastR := readAll(fast)

	nodes := 0
	deadline := time.Now().Add(30 * time.Second)
	for metric(t, td, "aiot_dashboard_disconnects_total", "reason", cutSlow) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("stuck browser not cut off after %d nodes", nodes)
		}
		for range 20 { // 40 messages: below the fast browser's limit too
			pub.value(fmt.Sprintf("n%d", nodes), "text", padding)
			nodes++
		}
		bustest.Eventually(t, wait, "the fast browser", func() error { return bustest.Want(fastR.count() == nodes) })
	}
	if ce := stuck.closed(); ce.Code != websocket.CloseTryAgainLater {
		t.Errorf("stuck browser closed with %d %q", ce.Code, ce.Text)
	}
	pub.value("n0", "text", "still there")
	bustest.Eventually(t, wait, "the fast browser", func() error { return bustest.Want(fastR.count() == nodes+1) })
	if metric(t, td, "aiot_dashboard_dropped_total") == 0 {
		t.Error("no dropped messages counted")
	}
}

// TestSlowBrowserAfterLargeSnapshot: a browser that took a snapshot of
// 10 000 nodes and then stops reading is cut off once QueueLimit messages
// wait, as for any browser: the snapshot's allowance ends once it is sent.
func TestSlowBrowserAfterLargeSnapshot(t *testing.T) {
	const nodes, limit = 10_000, 64
	srv := bustest.StartServer(t)
	pub := publisher{t, bustest.Connect(t, srv)}
	td := startDashboard(t, srv, func(c *Config) { c.QueueLimit, c.SlowAfter = limit, 8 })
	for i := range nodes {
		pub.value(fmt.Sprintf("big%d", i), "r", "1")
	}
	bustest.Eventually(t, wait, "the index", func() error {
		known, _ := td.d.hub.stats()
		return bustest.Want(known == nodes, known, " of ", nodes, " nodes known")
	})
	slow := dialSlow(t, td)
	if snap := slow.subscribe(); len(snap) != 2*nodes {
		t.Fatalf("snapshot of %d messages, want %d", len(snap), 2*nodes)
	}
	// Messages of 4 KB: the sockets' buffers hold about a thousand of them
	// (128 KiB received, at most 4 MiB sent), far below the snapshot's size.
	big := strings.Repeat("x", 4000)
	published := 0
	deadline := time.Now().Add(2 * wait)
	for metric(t, td, "aiot_dashboard_disconnects_total", "reason", cutSlow) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("slow browser not cut off after %d new nodes", published)
		}
		for range 50 {
			pub.value(fmt.Sprintf("late%d", published), "r", big)
			published++
		}
		if err := pub.nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if published >= nodes/2 {
		t.Errorf("cut off after %d new nodes: the snapshot of %d still counted", published, nodes)
	}
	if ce := slow.closed(); ce.Code != websocket.CloseTryAgainLater {
		t.Errorf("slow browser closed with %d %q", ce.Code, ce.Text)
	}
}
