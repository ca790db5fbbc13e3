package coap_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/coap"
)

// A device that spoofs /alive beacons from a victim's address makes the
// gateway send discovery requests there: at most DiscoveryRate per second
// (bursts of twice that) toward one address, whatever the number of
// beacons, so the gateway is no amplifier (issue 15.7). go-coap also keeps
// one confirmable request in flight per peer (RFC 7252 NSTART 1); the
// deferral counter shows the per-address limit at work on top of it.
func TestDiscoveryReflectionBounded(t *testing.T) {
	victim, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	const rate = 5
	g := startGateway(t, bustest.Connect(t, bustest.StartServer(t)), func(c *coap.Config) {
		c.NodePort = victim.LocalAddr().(*net.UDPAddr).Port // beacons from 127.0.0.1 name the victim
		c.DiscoveryRate = rate
	})
	cc := dialFrom(t, g, "127.0.0.1")
	start := time.Now()
	const beacons = 200
	for i := range beacons {
		if code := request(t, cc, codes.POST, "/alive", fmt.Appendf(nil, "alive:spoof%d", i)); code != codes.Changed {
			t.Fatalf("beacon %d: %v", i, code)
		}
	}
	// Count the distinct discovery requests that reached the victim.
	seen := map[int32]bool{}
	buf := make([]byte, 1500)
	_ = victim.SetReadDeadline(time.Now().Add(time.Second))
	for {
		n, _, err := victim.ReadFrom(buf)
		if err != nil {
			break
		}
		m := pool.NewMessage(t.Context())
		if _, err := m.UnmarshalWithDecoder(coder.DefaultCoder, buf[:n]); err == nil && m.Code() == codes.GET {
			seen[m.MessageID()] = true
		}
	}
	elapsed := time.Since(start).Seconds()
	if limit := int(2*rate + rate*elapsed + 1); len(seen) > limit {
		t.Fatalf("%d discovery requests toward one address in %.1f s from %d beacons, want at most %d", len(seen), elapsed, beacons, limit)
	}
	if len(seen) == 0 {
		t.Fatal("no discovery at all: the limit must defer, not stop, discovery")
	}
	if d := g.Stats().DiscoveriesDeferred; d == 0 {
		t.Fatal("no deferred discovery counted")
	}
	t.Logf("%d beacons → %d discovery requests toward the victim in %.1f s (rate %d/s)", beacons, len(seen), elapsed, rate)
}
