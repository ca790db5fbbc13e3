package sites_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/sites"
	"github.com/goaiot/goaiot/sites/linktest"
)

// startHub starts a hub's server (domain hub, leaf listener) with its
// sources-only NODES stream.
func startHub(t testing.TB) (*bus.Server, *nats.Conn) {
	t.Helper()
	var users []bus.LeafUser
	for _, name := range []string{"paris", "lyon"} {
		users = append(users, bus.LeafUser{User: name, Password: name + "-secret", Publish: sites.LeafPublish(name)})
	}
	srv := startServer(t, bus.ServerConfig{Name: "hub", JetStreamDomain: sites.HubDomain, LeafListen: "127.0.0.1:0", LeafUsers: users})
	nc := bustest.Connect(t, srv)
	if _, err := sites.EnsureHubStream(ctxT(t), jsOf(t, nc), bus.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	return srv, nc
}

// startSite starts a site's server (its own domain, its own NODES stream)
// joined to the hub through a link that the test can cut.
func startSite(t testing.TB, name string, hub *bus.Server) (*bus.Server, *nats.Conn, *linktest.Link) {
	t.Helper()
	link := linktest.New(t, hub.LeafAddr())
	srv := startServer(t, bus.ServerConfig{Name: "site-" + name, JetStreamDomain: name,
		LeafRemotes: []bus.LeafRemote{{URL: "nats-leaf://" + name + ":" + name + "-secret@" + link.Addr(), DenyImports: sites.LeafDeny(), DenyExports: sites.LeafDeny()}}})
	nc := bustest.Connect(t, srv)
	if _, err := bus.EnsureNodesStream(ctxT(t), jsOf(t, nc), bus.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	return srv, nc, link
}

func startServer(t testing.TB, cfg bus.ServerConfig) *bus.Server {
	t.Helper()
	cfg.DataDir, cfg.Listen, cfg.Logger = t.TempDir(), "127.0.0.1:0", bustest.Logger(t).With("server", cfg.Name)
	srv, err := bus.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

func jsOf(t testing.TB, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// run runs a component until the test ends.
func run(t testing.TB, r interface{ Run(context.Context) error }) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
}

// waitLeaf waits until the site's server has its leaf connection up.
func waitLeaf(t testing.TB, site *bus.Server, up bool) {
	t.Helper()
	bustest.Eventually(t, 20*time.Second, "leaf connection", func() error {
		n := site.NATS().NumLeafNodes()
		return bustest.Want((n > 0) == up, "leaf nodes: "+itoa(n))
	})
}

// storedValues reads every message on subject from the hub's NODES stream.
func storedValues(t *testing.T, js jetstream.JetStream, subject string) []string {
	t.Helper()
	ctx := ctxT(t)
	st, err := js.Stream(ctx, bus.NodesStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	n := info.State.Subjects[subject]
	if n == 0 {
		return nil
	}
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	it, err := c.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	out := make([]string, 0, n)
	for uint64(len(out)) < n {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			t.Fatalf("after %d of %d: %v", len(out), n, err)
		}
		v, err := bus.ParseValue(m.Data())
		if err != nil {
			t.Fatalf("stored %s: %v", m.Data(), err)
		}
		out = append(out, v.Text())
	}
	return out
}

func value(i int) []byte {
	b, _ := json.Marshal(map[string]int{"value": i})
	return b
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// next is the next message on ch.
func next(t *testing.T, ch <-chan *nats.Msg, within time.Duration) *nats.Msg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(within):
		t.Fatalf("no message within %s", within)
		return nil
	}
}
