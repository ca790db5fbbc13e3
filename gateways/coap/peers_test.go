package coap_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/coap"
	"github.com/goaiot/goaiot/gateways/coap/coapsim"
	"github.com/goaiot/goaiot/internal/coaptest"
)

// TestQuietPeersForgotten: a peer that only sent NON requests is forgotten
// after QuietPeerIdle; one that sent a confirmable request is kept for
// PeerIdle, and its retransmission gets the cached answer without being
// handled twice.
func TestQuietPeersForgotten(t *testing.T) {
	for _, tc := range []struct {
		name     string
		handlers int
	}{
		{"on the gateway's handler goroutines", 0},
		{"on go-coap's goroutine per peer", -1},
	} {
		t.Run(tc.name, func(t *testing.T) { testQuietPeersForgotten(t, tc.handlers) })
	}
}

func testQuietPeersForgotten(t *testing.T, handlers int) {
	t.Helper()
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	g := startGateway(t, nc, func(c *coap.Config) {
		c.QuietPeerIdle = 50 * time.Millisecond
		c.PeerIdle = time.Minute
		c.Handlers = handlers
	})
	con := coaptest.NewPeer(t, "127.0.53.130", g.Addr())
	non := coaptest.NewPeer(t, "127.0.53.131", g.Addr())
	// Values from unknown sources: each is handled (refused 4.04), which
	// Stats.Rejected counts.
	retry := coaptest.Request(message.Confirmable, 7, "con", codes.POST, coap.PathServer, "temperature:1°C")
	con.Send(t, retry)
	non.Send(t, coaptest.Request(message.NonConfirmable, 8, "non", codes.POST, coap.PathServer, "temperature:2°C"))
	for _, a := range []struct {
		p   *coaptest.Peer
		tok string
	}{{con, "con"}, {non, "non"}} {
		if got := a.p.Until(t, coaptest.Token(a.tok), wait); len(got) != 1 || got[0].Code != codes.NotFound {
			t.Fatalf("%s answered %v, want one 4.04", a.tok, got)
		}
	}
	bustest.Eventually(t, wait, "the NON peer forgotten, the confirmable one kept", peersHeld(g, 1))

	t.Run("retransmission answered from the cache", func(t *testing.T) {
		con.Send(t, retry)
		got := con.Until(t, coaptest.MessageID(7), wait)
		if len(got) != 1 || got[0].Type != message.Acknowledgement || got[0].Code != codes.NotFound {
			t.Fatalf("retransmission answered %v, want the same 4.04 ACK", got)
		}
		if r := g.Stats().Rejected; r != 2 {
			t.Errorf("%d requests handled, want 2: the retransmission was handled again", r)
		}
	})
}

// TestCommandAfterPeerForgotten: a node whose peer state was forgotten
// (beacons NON, discovery over, nothing in flight) is still reached by
// commands: the gateway makes a new peer toward it.
func TestCommandAfterPeerForgotten(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	events := bustest.Subscribe(t, bustest.Connect(t, srv), "node.>")
	// PeerIdle stays long: the node's peer goes once its discovery is over.
	g := startGateway(t, nc, func(c *coap.Config) { c.QuietPeerIdle = 20 * time.Millisecond })
	const uid = "AB582D8277D4D98"
	sim, _ := startSim(t, coapsim.Config{UID: uid, Listen: "127.0.53.132:5683", Gateway: g.Addr().String(), BeaconInterval: time.Hour})
	if got := values(t, events, uid, "led"); got["led"] != "0" {
		t.Fatalf("discovered led = %q, want 0", got["led"])
	}
	bustest.Eventually(t, wait, "every peer forgotten", peersHeld(g, 0))
	for _, tc := range []struct {
		name, payload string
		on            bool
	}{
		{"led on", "1", true},
		{"led off", "0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := command(t, nc, uid, "led", tc.payload); !r.OK {
				t.Fatalf("reply %+v, want ok", r)
			}
			if sim.LED() != tc.on {
				t.Errorf("led = %v after an ok reply, want %v", sim.LED(), tc.on)
			}
			if v := nextValue(t, events, uid, "led"); v != tc.payload {
				t.Errorf("led value %q, want %q", v, tc.payload)
			}
		})
	}
	if s := g.Nodes(); len(s) != 1 || s[0].ID != uid {
		t.Errorf("nodes %+v, want %s online", s, uid)
	}
}

// TestObservedPeerKept: the peer of an observed node is kept between
// notifications further apart than QuietPeerIdle (they would be dropped,
// their observation unknown to a new peer).
func TestObservedPeerKept(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	g := startGateway(t, nc, func(c *coap.Config) { c.QuietPeerIdle = 20 * time.Millisecond })
	startSim(t, coapsim.Config{UID: "obs2", Listen: "127.0.53.133:5683", Gateway: g.Addr().String(),
		Sensors: true, Observe: true, SensorInterval: 300 * time.Millisecond, BeaconInterval: time.Hour})
	bustest.Eventually(t, wait, "ten notifications", func() error { return bustest.Want(g.Stats().Notifications >= 10) })
}

// peersHeld checks that g holds state for want peers.
func peersHeld(g *coap.Gateway, want int64) func() error {
	return func() error {
		if n := g.Stats().Peers; n != want {
			return fmt.Errorf("%d peers held, want %d", n, want)
		}
		return nil
	}
}

// TestRunFailsCleanly: a gateway that cannot bind returns the error and
// stops its handler goroutines.
func TestRunFailsCleanly(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	first := startGateway(t, nc, nil)
	g, err := coap.New(coap.Config{Conn: nc, Logger: bustest.Logger(t), Listen: first.Addr().String(), Gateway: "coap@second"})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Run(t.Context()); err == nil {
		t.Fatal("Run on a bound address: no error")
	}
}
