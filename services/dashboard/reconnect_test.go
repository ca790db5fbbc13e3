package dashboard

import (
	"net/url"
	"testing"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

// TestResyncAfterReconnect restarts the NATS server under a running
// dashboard: values published while the dashboard was disconnected reach
// the browser from the stream once it reconnects.
func TestResyncAfterReconnect(t *testing.T) {
	dir := t.TempDir()
	srv := bustest.StartServer(t, bustest.WithDataDir(dir))
	u, err := url.Parse(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	td := startDashboard(t, srv)
	pub := publisher{t, bustest.Connect(t, srv)}
	b := dial(t, td, nil)
	b.subscribe()
	pub.state("r1", bus.StateOnline)
	if m := b.next(); m.Type != typeNew || m.UID != "r1" {
		t.Fatalf("got %+v, want new r1", m)
	}

	srv.Shutdown()
	srv2 := bustest.StartServer(t, bustest.WithDataDir(dir), func(c *bus.ServerConfig) { c.Listen = u.Host })
	pub2 := publisher{t, bustest.Connect(t, srv2)}
	pub2.value("r1", "temperature", "while away")
	pub2.state("r2", bus.StateOnline)
	pub2.stored(3)

	want := map[string]bool{"update r1 temperature=while away": true, "new r2 online": true}
	for len(want) > 0 {
		s := summary([]msg{b.next()})[0]
		if !want[s] {
			t.Fatalf("unexpected %q", s)
		}
		delete(want, s)
	}
	t.Run("live again", func(t *testing.T) {
		b.t = t
		pub2.value("r2", "led", "1")
		if s := summary([]msg{b.next()})[0]; s != "update r2 led=1" {
			t.Fatalf("got %q", s)
		}
	})
}
