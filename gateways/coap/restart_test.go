package coap_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/coap"
	"github.com/goaiot/goaiot/gateways/persist"
	"github.com/goaiot/goaiot/gateways/presence"
)

// persisted is the configuration of the restart tests: changes reach the
// bucket at once, nodes stay online for a minute without a beacon.
func persisted(c *coap.Config) {
	c.NodeTimeout, c.PersistDelay, c.RequestTimeout = time.Minute, 10*time.Millisecond, 200*time.Millisecond
}

// startStoppable runs a gateway on listen until stop is called.
func startStoppable(t *testing.T, nc *nats.Conn, listen string, change func(*coap.Config)) (*coap.Gateway, func()) {
	t.Helper()
	cfg := coap.Config{Conn: nc, Logger: bustest.Logger(t).With("component", "coap"), Listen: listen,
		Gateway: "coap@test", Site: "lab"}
	change(&cfg)
	g, err := coap.New(cfg)
	if err != nil {
		t.Fatalf("new gateway: %v", err)
	}
	stop := bustest.RunStop(t, g.Run)
	select {
	case <-g.Ready():
	case <-time.After(wait):
		t.Fatal("gateway not ready")
	}
	return g, stop
}

// riotNodes replays the RIOT capture (each node from a loopback address
// of its own) and returns the sockets of the nodes by uid, once both are
// online.
func riotNodes(t *testing.T, g *coap.Gateway, nc *nats.Conn) map[string]*net.UDPConn {
	t.Helper()
	events := bustest.Subscribe(t, nc, bus.NodeState("*"))
	grams := readCapture(t, riotCapture)
	uids := map[string]string{ // captured source → uid, from the capture's comments
		"fd00:dead:beef:0:a07a:65ff:fe81:a0b7": "AB582D8277D4D97",
		"fd00:dead:beef:0:5466:7dff:fe44:cfca": "A5FB29BF7350D5F",
	}
	socks := map[string]*net.UDPConn{}
	for _, d := range grams {
		host, _, _ := net.SplitHostPort(d.from)
		uid := uids[host]
		c, ok := socks[uid]
		if !ok {
			var err error
			c, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 54, byte(20+len(socks)))})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			socks[uid] = c
		}
		if _, err := c.WriteToUDP(d.data, g.Addr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
	}
	for uid, s := range states(t, events, "AB582D8277D4D97", "A5FB29BF7350D5F") {
		if s.State != bus.StateOnline && s.State != bus.StateReset {
			t.Fatalf("%s: %+v", uid, s)
		}
	}
	bustest.Eventually(t, wait, "every datagram handled", func() error { return bustest.Want(g.Stats().Beacons == int64(len(grams))) })
	return socks
}

// riotPost is a POST as RIOT's firmware sends it: NON, a 2-byte token,
// Uri-Path, Content-Format 0 (text/plain), the payload.
func riotPost(mid uint16, path, payload string) []byte {
	b := []byte{0x52, 0x02, 0, 0, byte(mid), byte(mid >> 8)}
	binary.BigEndian.PutUint16(b[2:], mid)
	b = append(b, 0xB0|byte(len(path)))
	b = append(b, path...)
	b = append(b, 0x10, 0xFF) // Content-Format 0, then the payload
	return append(b, payload...)
}

// sendValues has each node send n values of temperature from a new
// ephemeral port of its address, as RIOT does, and checks each reaches
// its subject; it returns how many it sent.
func sendValues(t *testing.T, g *coap.Gateway, nc *nats.Conn, socks map[string]*net.UDPConn, n int, mid *uint16) int {
	t.Helper()
	sent := 0
	for uid, sock := range socks {
		values := bustest.Subscribe(t, nc, bus.NodeValue(uid, "temperature"))
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: sock.LocalAddr().(*net.UDPAddr).IP})
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			*mid++
			want := fmt.Sprintf("%d.%d°C", 20+i, i)
			if _, err := c.WriteToUDP(riotPost(*mid, "server", "temperature:"+want), g.Addr().(*net.UDPAddr)); err != nil {
				t.Fatal(err)
			}
			v, err := bus.ParseValue(bustest.Next(t, values, bus.NodeValue(uid, "temperature"), wait).Data)
			if err != nil || v.Text() != want {
				t.Fatalf("%s: value %+v, %v; want %s", uid, v, err, want)
			}
			sent++
		}
		c.Close()
	}
	return sent
}

// TestRestartKeepsRIOTNodes replays the boot of two real RIOT nodes, then
// restarts the gateway (or the whole bus on the same data directory, and
// the gateway on it) and has the nodes send values before their next
// beacon: every value is accepted, and both nodes are online again.
func TestRestartKeepsRIOTNodes(t *testing.T) {
	tests := []struct {
		name       string
		restartBus bool
	}{
		{"gateway restarted", false},
		{"bus and gateway restarted on the same data directory", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			srv := bustest.StartServer(t, bustest.WithDataDir(dir))
			nc := bustest.Connect(t, srv)
			g, stop := startStoppable(t, nc, "127.0.0.1:0", persisted)
			socks := riotNodes(t, g, nc)
			var mid uint16
			sendValues(t, g, nc, socks, 1, &mid)
			listen := g.Addr().String()
			stop()

			if tt.restartBus {
				srv.Shutdown()
				srv = bustest.StartServer(t, bustest.WithDataDir(dir))
				nc = bustest.Connect(t, srv)
			}
			events := bustest.Subscribe(t, nc, bus.NodeState("*"))
			g, _ = startStoppable(t, nc, listen, persisted)
			sent := sendValues(t, g, nc, socks, 5, &mid)

			st := g.Stats()
			if st.Values != int64(sent) || st.Rejected != 0 {
				t.Errorf("after the restart: %d values accepted, %d refused; want %d, 0", st.Values, st.Rejected, sent)
			}
			if st.Table.Loaded != 2 || st.Table.Written != 0 {
				t.Errorf("table stats %+v: want 2 nodes loaded, nothing written for values", st.Table)
			}
			for uid, s := range states(t, events, "AB582D8277D4D97", "A5FB29BF7350D5F") {
				if s.State != bus.StateOnline || s.Gateway != "coap@test" {
					t.Errorf("%s after the restart: $state %+v, want online", uid, s)
				}
			}
			if nodes := g.Nodes(); len(nodes) != 2 {
				t.Errorf("online after the restart: %+v, want both nodes", nodes)
			}
		})
	}
}

// TestRestoredNodes: what a restored node may and may not do before it
// speaks again.
func TestRestoredNodes(t *testing.T) {
	t.Run("silent for the node timeout: forgotten, entry deleted", func(t *testing.T) {
		srv := bustest.StartServer(t)
		nc := bustest.Connect(t, srv)
		g, stop := startStoppable(t, nc, "127.0.0.1:0", persisted)
		socks := riotNodes(t, g, nc)
		stop()
		short := func(c *coap.Config) { persisted(c); c.NodeTimeout = time.Second }
		g, _ = startStoppable(t, nc, "127.0.0.1:0", short)
		kv := nodeTable(t, nc)
		bustest.Eventually(t, wait, "both entries deleted", func() error { return bustest.Want(len(keys(t, kv)) == 0) })
		sock := socks["AB582D8277D4D97"]
		if _, err := sock.WriteToUDP(riotPost(1, "server", "temperature:1°C"), g.Addr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
		bustest.Eventually(t, wait, "the value refused", func() error { return bustest.Want(g.Stats().Rejected == 1) })
		if n := g.Nodes(); len(n) != 0 {
			t.Fatalf("online: %+v", n)
		}
	})

	t.Run("claimed by another gateway meanwhile: not this gateway's", func(t *testing.T) {
		srv := bustest.StartServer(t)
		nc := bustest.Connect(t, srv)
		g, stop := startStoppable(t, nc, "127.0.0.1:0", persisted)
		socks := riotNodes(t, g, nc)
		stop()
		g, _ = startStoppable(t, nc, "127.0.0.1:0", persisted)
		other, err := presence.New(presence.Config{Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t),
			Protocol: bus.ProtocolWebSocket, Gateway: "ws@elsewhere", Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		bustest.Run(t, other.Run)
		const uid = "AB582D8277D4D97"
		if _, err := other.Seen(uid, "10.0.0.9:1"); err != nil {
			t.Fatal(err)
		}
		// The restored node speaks: a claim through presence, which the
		// earlier claim wins (refused at once if this gateway saw it, or
		// yielded to once seen).
		if _, err := socks[uid].WriteToUDP(riotPost(1, "server", "temperature:1°C"), g.Addr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
		bustest.Eventually(t, wait, "the claim refused or yielded", func() error {
			st := g.Stats()
			return bustest.Want(st.OwnedElsewhere+st.Conflicts > 0 && len(g.Nodes()) == 0)
		})
		if _, mine := other.Lookup(uid); !mine {
			t.Fatalf("the other gateway lost %s", uid)
		}
		kv := nodeTable(t, nc)
		bustest.Eventually(t, wait, "its entry deleted", func() error { return bustest.Want(!slices.Contains(keys(t, kv), "coap.coap=40test."+uid)) })
	})
}

// TestRestoredDTLSNode: a uid stored as known over DTLS is not taken by
// a plain CoAP beacon after a restart (4.03), and a corrupt entry beside
// it is skipped.
func TestRestoredDTLSNode(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := bus.EnsureNodeTables(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	for id, v := range map[string]string{
		"dtls7":  `{"v":1,"uid":"dtls7","from":"127.0.53.60:40000","dtls":true,"since":"2026-01-02T03:04:05Z"}`,
		"broken": `{"v":1,"uid":"broken","from":"nowhere"}`,
	} {
		if _, err := kv.Put(t.Context(), persist.Key("coap", "coap@test", id), []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	g, _ := startStoppable(t, nc, "127.0.0.1:0", persisted)
	if st := g.Stats().Table; st.Loaded != 1 || st.Skipped != 1 {
		t.Fatalf("table stats %+v: want 1 loaded, 1 skipped", st)
	}
	if got := request(t, dialFrom(t, g, "127.0.53.61"), codes.POST, "/alive", []byte("alive:dtls7")); got != codes.Forbidden {
		t.Fatalf("plain coap takeover of a restored dtls node answered %s, want 4.03", coap.CodeText(got))
	}
	if _, ok := lookupNode(g, "dtls7"); ok {
		t.Fatal("the dtls node went online through plain coap")
	}
}

// nodeTable is the NODE_TABLES bucket, as an admin sees it.
func nodeTable(t *testing.T, nc *nats.Conn) jetstream.KeyValue {
	t.Helper()
	return bustest.KeyValue(t, nc, bus.NodeTablesBucket)
}

// keys lists the CoAP gateway's keys in kv.
func keys(t *testing.T, kv jetstream.KeyValue) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	l, err := kv.ListKeysFiltered(ctx, persist.Prefix("coap", "coap@test")+">")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for k := range l.Keys() {
		out = append(out, k)
	}
	return out
}
