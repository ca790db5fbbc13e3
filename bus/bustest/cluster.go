package bustest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
)

// ClusterOption changes one member's configuration (member i of n).
type ClusterOption func(i int, c *bus.ServerConfig)

// WithRouteTLS requires TLS on the routes, member i with tlsFor(i).
func WithRouteTLS(tlsFor func(i int) *tls.Config) ClusterOption {
	return func(i int, c *bus.ServerConfig) { c.Cluster.TLS = tlsFor(i) }
}

// StartCluster starts n embedded servers (m0, m1, …) that form one NATS
// cluster on loopback, each with a client listener, started at once (a
// lone member waits for a quorum); it waits until every member has a
// JetStream meta leader, makes the NODES stream with min(n, 3) replicas,
// and shuts them down when the test ends.
func StartCluster(t testing.TB, n int, opts ...ClusterOption) []*bus.Server {
	t.Helper()
	addrs := RouteAddrs(t, n)
	var routes []string
	for _, a := range addrs {
		routes = append(routes, "nats-route://"+a)
	}
	servers := make([]*bus.Server, n)
	for i := range servers {
		cfg := bus.ServerConfig{Name: fmt.Sprintf("m%d", i), DataDir: t.TempDir(), Listen: "127.0.0.1:0",
			Logger:  Logger(t).With("component", "nats-server", "member", i),
			Cluster: &bus.ClusterConfig{Name: "test", Listen: addrs[i], Routes: routes}}
		for _, o := range opts {
			o(i, &cfg)
		}
		s, err := bus.NewServer(cfg)
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		if err := s.Start(); err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		t.Cleanup(s.Shutdown)
		servers[i] = s
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, s := range servers {
		if err := s.WaitJetStream(ctx); err != nil {
			t.Fatal(err)
		}
	}
	js, err := jetstream.New(Connect(t, servers[0]))
	if err != nil {
		t.Fatal(err)
	}
	cfg := bus.DefaultStreamConfig()
	cfg.Replicas = min(n, 3)
	if err := bus.RetryJetStream(ctx, time.Minute, func(ctx context.Context) error {
		_, err := bus.EnsureNodesStream(ctx, js, cfg)
		return err
	}); err != nil {
		t.Fatalf("stream: %v", err)
	}
	return servers
}

// RouteAddrs returns n loopback TCP addresses free a moment ago: routes
// must be known before the members start.
func RouteAddrs(t testing.TB, n int) []string {
	t.Helper()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ln.Addr().String())
		defer ln.Close()
	}
	return out
}
