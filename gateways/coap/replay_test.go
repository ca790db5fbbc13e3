package coap_test

import (
	"bufio"
	"encoding/hex"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/coap"
	"github.com/goaiot/goaiot/internal/coaptest"
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
	peers := map[string]*coaptest.Peer{} // captured source → peer on loopback
	loopback := map[string]string{}
	for _, d := range grams {
		host, _, err := net.SplitHostPort(d.from)
		if err != nil {
			t.Fatalf("source %q: %v", d.from, err)
		}
		p, ok := peers[host]
		if !ok {
			ip := net.IPv4(127, 0, 53, byte(20+len(peers))).String()
			p = coaptest.NewPeer(t, ip, g.Addr())
			peers[host], loopback[host] = p, ip
		}
		p.SendRaw(t, d.data)
	}
	bustest.Eventually(t, wait, "every datagram handled", func() error { return bustest.Want(g.Stats().Beacons == int64(len(grams))) })

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
	// What the nodes got back (and ignore): one NON 2.04 per request, in
	// whatever order.
	answers := map[string][]message.Message{} // by token
	for _, d := range grams {
		host, _, _ := net.SplitHostPort(d.from)
		req := message.Message{Options: make(message.Options, 0, 8)}
		if _, err := coder.DefaultCoder.Decode(d.data, &req); err != nil {
			t.Fatalf("captured datagram: %v", err)
		}
		tok := string(req.Token)
		if len(answers[tok]) == 0 {
			for _, a := range peers[host].Until(t, coaptest.Token(tok), wait) {
				answers[string(a.Token)] = append(answers[string(a.Token)], a)
			}
		}
		if got := answers[tok]; len(got) != 1 || got[0].Type != message.NonConfirmable || got[0].Code != codes.Changed {
			t.Errorf("request %x answered %v, want one NON 2.04", req.Token, got)
		}
	}
}
