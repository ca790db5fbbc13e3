package bus_test

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/sites/linktest"
)

// logLines collects a server's log lines for the test to wait on.
type logLines struct {
	t  *testing.T
	mu sync.Mutex
	b  strings.Builder
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	return len(p), nil
}

func (l *logLines) waitFor(within time.Duration, substr string) {
	l.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		ok := strings.Contains(l.b.String(), substr)
		l.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.t.Fatalf("no log line with %q within %s:\n%s", substr, within, l.b.String())
}

// leafPair starts a hub with hubCfg's leaf settings and a site joined to it
// with remote (URL completed with the hub's leaf address).
func leafPair(t *testing.T, hubCfg bus.ServerConfig, userinfo string, remote bus.LeafRemote) (hub, site *bus.Server, hubLog *logLines) {
	t.Helper()
	hubLog = &logLines{t: t}
	hubCfg.Listen, hubCfg.LeafListen, hubCfg.Name, hubCfg.JetStreamDomain = "127.0.0.1:0", "127.0.0.1:0", "hub", "hub"
	hubCfg.Logger = slog.New(slog.NewTextHandler(hubLog, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hub, err := newServer(t, hubCfg)
	if err != nil {
		t.Fatal(err)
	}
	remote.URL = "nats-leaf://" + userinfo + hub.LeafAddr()
	site, err = newServer(t, bus.ServerConfig{Name: "site", Listen: "127.0.0.1:0", JetStreamDomain: "site", LeafRemotes: []bus.LeafRemote{remote}})
	if err != nil {
		t.Fatal(err)
	}
	return hub, site, hubLog
}

func waitLeafUp(t *testing.T, s *bus.Server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.NATS().NumLeafNodes() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("leaf connection not up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// firstOf publishes each subject in order from pub and returns the subjects
// that reached sub before the last one (a marker that must arrive). probe
// is a subject that must cross, used to wait for the subscription's interest.
func firstOf(t *testing.T, pub, sub *nats.Conn, probe string, subjects ...string) []string {
	t.Helper()
	ch := bustest.Subscribe(t, sub, ">")
	marker := subjects[len(subjects)-1]
	// Interest crosses the leaf connection asynchronously: publish the
	// probe until it arrives, then the real sequence.
	deadline := time.Now().Add(10 * time.Second)
	for got := false; !got; {
		if err := pub.Publish(probe, nil); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-ch:
			got = m.Subject == probe
		case <-time.After(50 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatalf("%s never crossed the leaf connection", probe)
			}
		}
	}
	for _, s := range subjects {
		if err := pub.Publish(s, nil); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for {
		select {
		case m := <-ch:
			switch m.Subject {
			case marker:
				return got
			case probe: // still in flight
			default:
				got = append(got, m.Subject)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("marker %s lost", marker)
		}
	}
}

func TestLeafUserPermissions(t *testing.T) {
	hub, site, _ := leafPair(t, bus.ServerConfig{LeafUsers: []bus.LeafUser{
		{User: "paris", Password: "secret", Publish: []string{"node.>", "aiot.site.paris.>", "_INBOX.>"}},
	}}, "paris:secret@", bus.LeafRemote{})
	waitLeafUp(t, site)
	got := firstOf(t, bustest.Connect(t, site), bustest.Connect(t, hub), "node.probe.x",
		"gateway.n1.led.set", "aiot.site.lyon.heartbeat", "aiot.site.paris.heartbeat", "node.n1.temperature")
	if strings.Join(got, " ") != "aiot.site.paris.heartbeat" {
		t.Fatalf("the hub got %v from the site, want only aiot.site.paris.heartbeat before the marker", got)
	}
}

func TestLeafUserWrongPasswordRefused(t *testing.T) {
	_, site, hubLog := leafPair(t, bus.ServerConfig{LeafUsers: []bus.LeafUser{{User: "paris", Password: "secret"}}},
		"paris:guess@", bus.LeafRemote{})
	hubLog.waitFor(10*time.Second, "authentication error")
	if n := site.NATS().NumLeafNodes(); n != 0 {
		t.Fatalf("%d leaf connections with a wrong password", n)
	}
}

func TestLeafRemoteDenyImports(t *testing.T) {
	hub, site, _ := leafPair(t, bus.ServerConfig{}, "", bus.LeafRemote{DenyImports: []string{"node.>"}})
	waitLeafUp(t, site)
	got := firstOf(t, bustest.Connect(t, hub), bustest.Connect(t, site), "probe", "node.n1.temperature", "gateway.n1.led.set", "marker")
	if strings.Join(got, " ") != "gateway.n1.led.set" {
		t.Fatalf("the site got %v from the hub, want gateway.n1.led.set only", got)
	}
}

// TestLeafIsolate: with LeafIsolate a leaf's interest is not passed on to
// the other leaves, so nothing flows from site to site unless a client of
// the hub itself subscribes.
func TestLeafIsolate(t *testing.T) {
	hub, a, _ := leafPair(t, bus.ServerConfig{LeafIsolate: true}, "", bus.LeafRemote{})
	b, err := newServer(t, bus.ServerConfig{Name: "b", Listen: "127.0.0.1:0", JetStreamDomain: "b",
		LeafRemotes: []bus.LeafRemote{{URL: "nats-leaf://" + hub.LeafAddr()}}})
	if err != nil {
		t.Fatal(err)
	}
	waitLeafUp(t, a)
	waitLeafUp(t, b)
	atB := bustest.Subscribe(t, bustest.Connect(t, b), ">")
	bustest.Subscribe(t, bustest.Connect(t, hub), "marker") // the hub's own client draws "marker" from a
	pub := bustest.Connect(t, a)
	// Publish until b has had 5 markers: by then its interest in ">" would
	// long have reached a, were it passed on.
	deadline := time.Now().Add(10 * time.Second)
	for markers := 0; markers < 5; {
		for _, s := range []string{"gateway.n1.led.set", "marker"} {
			if err := pub.Publish(s, nil); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case m := <-atB:
			switch m.Subject {
			case "marker":
				markers++
			default:
				t.Fatalf("site b got site a's %s", m.Subject)
			}
		case <-time.After(50 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatalf("b got %d markers", markers)
			}
		}
	}
}

// TestLeafRemoteDialsOnlyItsURL: a site whose link (a relay) is cut keeps
// trying the relay; it never goes around it to the address the hub
// advertises.
func TestLeafRemoteDialsOnlyItsURL(t *testing.T) {
	hub, err := newServer(t, bus.ServerConfig{Name: "hub", Listen: "127.0.0.1:0", LeafListen: "127.0.0.1:0", JetStreamDomain: "hub"})
	if err != nil {
		t.Fatal(err)
	}
	relay := linktest.New(t, hub.LeafAddr())
	site, err := newServer(t, bus.ServerConfig{Name: "site", Listen: "127.0.0.1:0", JetStreamDomain: "site",
		LeafRemotes: []bus.LeafRemote{{URL: "nats-leaf://" + relay.Addr()}}})
	if err != nil {
		t.Fatal(err)
	}
	waitLeafUp(t, site)
	relay.Cut()
	deadline := time.Now().Add(20 * time.Second)
	for relay.Refused() < 3 {
		if n := site.NATS().NumLeafNodes(); n > 0 && relay.Refused() > 0 {
			t.Fatalf("the site reconnected around its cut link (%d leaf connections)", n)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d attempts through the relay", relay.Refused())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := hub.NATS().NumLeafNodes(); n != 0 {
		t.Fatalf("the hub has %d leaf connections while the only link is cut", n)
	}
}

func TestLeafUsersBadConfig(t *testing.T) {
	tests := []struct {
		name  string
		users []bus.LeafUser
	}{
		{"empty password", []bus.LeafUser{{User: "paris"}}},
		{"twice", []bus.LeafUser{{User: "paris", Password: "a"}, {User: "paris", Password: "b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bus.NewServer(bus.ServerConfig{DataDir: t.TempDir(), LeafListen: "127.0.0.1:0", LeafUsers: tt.users, Logger: bustest.Logger(t)})
			if err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
