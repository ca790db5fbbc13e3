package coap_test

import (
	"bufio"
	"encoding/hex"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/coap"
)

// riotCapture is the capture of real RIOT datagrams, kept in the repository
// so the test runs on any checkout.
const riotCapture = "testdata/coap-alive.txt"

type datagram struct {
	from string // source address as captured
	data []byte
}

// readCapture parses "<[ipv6]:port> <hex> # comment" lines.
func readCapture(t *testing.T, path string) []datagram {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	defer f.Close()
	var out []datagram
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			t.Fatalf("capture line %q: want <source> <hex>", sc.Text())
		}
		data, err := hex.DecodeString(fields[1])
		if err != nil {
			t.Fatalf("capture line %q: %v", sc.Text(), err)
		}
		out = append(out, datagram{from: fields[0], data: data})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReplayRIOT replays the datagrams two real RIOT nodes sent at boot,
// each IPv6 source mapped to a loopback address of its own.
func TestReplayRIOT(t *testing.T) {
	grams := readCapture(t, riotCapture)
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	events := bustest.Subscribe(t, nc, "node.>")
	g := startGateway(t, nc, func(c *coap.Config) { c.RequestTimeout = 200 * time.Millisecond })
	gw := g.Addr().(*net.UDPAddr)

	socks := map[string]*net.UDPConn{} // captured source → socket on loopback
	loopback := map[string]string{}
	for _, d := range grams {
		host, _, err := net.SplitHostPort(d.from)
		if err != nil {
			t.Fatalf("source %q: %v", d.from, err)
		}
		c, ok := socks[host]
		if !ok {
			ip := net.IPv4(127, 0, 53, byte(20+len(socks)))
			if c, err = net.ListenUDP("udp", &net.UDPAddr{IP: ip}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			socks[host], loopback[host] = c, ip.String()
		}
		if _, err := c.WriteToUDP(d.data, gw); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "every datagram handled", func() bool { return g.Stats().Beacons == int64(len(grams)) })

	want := map[string]string{ // uid → loopback address, from the capture's comments
		"AB582D8277D4D97": loopback["fd00:dead:beef:0:a07a:65ff:fe81:a0b7"],
		"A5FB29BF7350D5F": loopback["fd00:dead:beef:0:5466:7dff:fe44:cfca"],
	}
	got := states(t, events, "AB582D8277D4D97", "A5FB29BF7350D5F")
	for uid, ip := range want {
		if s := got[uid]; s.State != bus.StateOnline || s.Address != ip+":5683" {
			t.Errorf("%s: $state %+v, want online at %s:5683", uid, s, ip)
		}
	}
	nodes := g.Nodes()
	if len(nodes) != 2 {
		t.Fatalf("nodes = %+v, want the two RIOT nodes", nodes)
	}
	if st := g.Stats(); st.Added != 2 || st.Rejected != 0 {
		t.Errorf("stats %+v: want 2 nodes added once each, nothing rejected", st)
	}
}
