package dashboard

import (
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/goaiot/goaiot/bus/bustest"
)

// An idle browser holds no goroutine on the server: its reader parks in
// the dashboard's poller (Linux, plain TCP; elsewhere it holds one, the
// reader), the writer runs only while frames come, pings go out from a
// timer. A value starts the writer again, and pings keep reaching an idle
// browser.
func TestIdleBrowserHasNoWriter(t *testing.T) {
	const browsers = 20
	srv := bustest.StartServer(t)
	pub := publisher{t, bustest.Connect(t, srv)}
	td := startDashboard(t, srv)
	pub.value("idle1", "temperature", "20")
	bustest.Eventually(t, wait, "the node", func() error { return bustest.Want(metric(t, td, "aiot_dashboard_nodes") == 1) })
	settled := func(extra int) func() error {
		return func() error {
			n := runtime.NumGoroutine()
			return bustest.Want(n <= extra, n, " goroutines, want at most ", extra)
		}
	}
	base := runtime.NumGoroutine()
	bs := make([]*browser, browsers)
	for i := range bs {
		bs[i] = dial(t, td, nil)
		bs[i].subscribe()
	}
	perBrowser := 0 // the reader's goroutine, where it cannot park
	if runtime.GOOS != "linux" {
		perBrowser = 1
	}
	t.Run("idle browsers keep no goroutine", func(t *testing.T) {
		bustest.Eventually(t, wait, "writers gone, readers parked", settled(base+perBrowser*browsers+2))
	})
	t.Run("a value starts the writer again", func(t *testing.T) {
		pub.value("idle1", "temperature", "21")
		for i, b := range bs {
			if m, err := b.read(wait); err != nil || m.Type != typeUpdate || m.Data != "21" {
				t.Fatalf("browser %d got %+v, %v", i, m, err)
			}
		}
		bustest.Eventually(t, wait, "writers gone again", settled(base+perBrowser*browsers+2))
	})
	t.Run("pings reach an idle browser", func(t *testing.T) {
		td := startDashboard(t, srv, func(c *Config) { c.PingInterval = 20 * time.Millisecond })
		b := dial(t, td, nil)
		b.subscribe()
		var pings atomic.Int32
		b.conn.SetPingHandler(func(data string) error {
			pings.Add(1)
			return b.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
		// Each read waits past several ping intervals; a browser cut off
		// for not answering would end the read with an error.
		for range 3 {
			if m, err := b.read(100 * time.Millisecond); err == nil {
				t.Fatalf("a message came to an idle browser: %+v", m)
			} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				t.Fatalf("read: %v after %d pings", err, pings.Load())
			}
		}
		if pings.Load() == 0 {
			t.Fatal("no ping")
		}
	})
}
