package bus_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

// startCluster starts three members with NODES on three replicas.
func startCluster(t *testing.T, tlsFor func(i int) *tls.Config) []*bus.Server {
	t.Helper()
	if tlsFor != nil {
		return bustest.StartCluster(t, 3, bustest.WithRouteTLS(tlsFor))
	}
	return bustest.StartCluster(t, 3)
}

// streamLeader is the name of the NODES stream's leader, or "".
func streamLeader(ctx context.Context, js jetstream.JetStream) string {
	st, err := js.Stream(ctx, bus.NodesStream)
	if err != nil || st.CachedInfo().Cluster == nil {
		return ""
	}
	return st.CachedInfo().Cluster.Leader
}

// TestClusterKeepsNodesThroughLeaderLoss: three members, the NODES stream
// and NODE_TABLES with three replicas; values stored before the stream
// leader shuts down are all there after, on a new leader, and storing
// goes on.
func TestClusterKeepsNodesThroughLeaderLoss(t *testing.T) {
	servers := startCluster(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nc := bustest.Connect(t, servers[0])
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := bus.DefaultStreamConfig()
	cfg.Replicas = 3
	if _, err := bus.EnsureNodesStream(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureNodeTablesReplicas(ctx, js, 3); err != nil {
		t.Fatal(err)
	}
	t.Run("replicas", func(t *testing.T) {
		for _, name := range []string{bus.NodesStream, "KV_" + bus.NodeTablesBucket} {
			st, err := js.Stream(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if r := st.CachedInfo().Config.Replicas; r != 3 {
				t.Errorf("%s: %d replicas, want 3", name, r)
			}
		}
	})
	subject := bus.NodeValue("cluster-node", "count")
	publish := func(js jetstream.JetStream, from, to int) {
		t.Helper()
		for i := from; i <= to; i++ {
			if _, err := js.Publish(ctx, subject, fmt.Appendf(nil, `{"value":"%d"}`, i)); err != nil {
				t.Fatalf("value %d: %v", i, err)
			}
		}
	}
	publish(js, 1, 50)
	var leader string
	bustest.Eventually(t, 30*time.Second, "a stream leader", func() error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		leader = streamLeader(ctx, js)
		return bustest.Want(leader != "", "no leader yet")
	})
	var survivor *bus.Server
	for _, s := range servers {
		if s.NATS().Name() == leader {
			s.Shutdown()
		} else if survivor == nil {
			survivor = s
		}
	}
	snc := bustest.Connect(t, survivor)
	sjs, err := jetstream.New(snc)
	if err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 30*time.Second, "a new stream leader", func() error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second) // a request to the leader that left goes unanswered
		defer cancel()
		st, err := sjs.Stream(ctx, bus.NodesStream)
		if err != nil {
			return err
		}
		l := st.CachedInfo().Cluster.Leader
		return bustest.Want(l != "" && l != leader, "leader", l)
	})
	publish(sjs, 51, 100)
	st, err := sjs.Stream(ctx, bus.NodesStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 100 {
		t.Fatalf("%d values stored after the leader left, want 100", n)
	}
}

// TestClusterRoutesTLS: members with certificates of the cluster's CA form
// a cluster over TLS routes.
func TestClusterRoutesTLS(t *testing.T) {
	ca, member := clusterPKI(t)
	servers := startCluster(t, func(int) *tls.Config {
		return &tls.Config{Certificates: []tls.Certificate{member}, ClientCAs: ca, RootCAs: ca,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	})
	for _, s := range servers {
		if n := s.NATS().NumRoutes(); n < 2 {
			t.Errorf("%s: %d routes, want at least 2", s.NATS().Name(), n)
		}
	}
}

// clusterPKI is a CA and a member certificate for 127.0.0.1 it signed,
// good as a server and as a client (routes dial both ways).
func clusterPKI(t *testing.T) (*x509.CertPool, tls.Certificate) {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cluster CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "member"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestClusterMembersEnsureAtOnce: every member makes NODES at start, all at
// the same moment. JetStream answers only the first of identical creates
// in flight; RetryJetStream gets the others through.
func TestClusterMembersEnsureAtOnce(t *testing.T) {
	servers := startCluster(t, nil)
	js0 := bustest.JetStream(t, bustest.Connect(t, servers[0]))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := js0.DeleteStream(ctx, bus.NodesStream); err != nil { // made by startCluster
		t.Fatal(err)
	}
	cfg := bus.DefaultStreamConfig()
	cfg.Replicas = 3
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		nc, err := bus.Connect(bus.ConnectConfig{Name: "core", Server: s, Logger: bustest.Quiet()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			errs[i] = bus.RetryJetStream(context.Background(), time.Minute, func(ctx context.Context) error {
				_, err := bus.EnsureNodesStream(ctx, js, cfg)
				return err
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("member %d: %v", i, err)
		}
	}
}

func TestClusterConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cluster bus.ClusterConfig
		want    string
	}{
		{"no name", bus.ClusterConfig{Listen: "127.0.0.1:0", Routes: []string{"nats-route://127.0.0.1:1"}}, "no name"},
		{"dotted name", bus.ClusterConfig{Name: "a.b", Listen: "127.0.0.1:0", Routes: []string{"nats-route://127.0.0.1:1"}}, "no spaces, dots"},
		{"no listen", bus.ClusterConfig{Name: "c", Routes: []string{"nats-route://127.0.0.1:1"}}, "no listen"},
		{"no routes", bus.ClusterConfig{Name: "c", Listen: "127.0.0.1:0"}, "no routes"},
		{"http route", bus.ClusterConfig{Name: "c", Listen: "127.0.0.1:0", Routes: []string{"http://127.0.0.1:1"}}, "scheme must be"},
		{"route without port", bus.ClusterConfig{Name: "c", Listen: "127.0.0.1:0", Routes: []string{"nats-route://h"}}, "want host:port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := tc.cluster
			_, err := bus.NewServer(bus.ServerConfig{DataDir: t.TempDir(), Logger: bustest.Quiet(), Cluster: &cl})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCheckReplicas(t *testing.T) {
	for _, tc := range []struct {
		name      string
		replicas  int
		clustered bool
		want      string
	}{
		{"one on a single server", 1, false, ""},
		{"three in a cluster", 3, true, ""},
		{"three on a single server", 3, false, "form a cluster"},
		{"zero", 0, true, "want 1 to 5"},
		{"six", 6, true, "want 1 to 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := bus.CheckReplicas(tc.replicas, tc.clustered)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestWaitJetStreamAlone: a lone member of a three-member cluster has no
// meta leader; WaitJetStream says so when its context ends.
func TestWaitJetStreamAlone(t *testing.T) {
	addrs := bustest.RouteAddrs(t, 3)
	s, err := newServer(t, bus.ServerConfig{Name: "alone", Listen: "127.0.0.1:0", Cluster: &bus.ClusterConfig{Name: "test", Listen: addrs[0],
		Routes: []string{"nats-route://" + addrs[1], "nats-route://" + addrs[2]}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err = s.WaitJetStream(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no meta leader") {
		t.Fatalf("error %v, want no meta leader", err)
	}
}
