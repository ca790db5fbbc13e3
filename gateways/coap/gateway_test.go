package coap_test

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/coap"
	"github.com/goaiot/goaiot/gateways/coap/coapsim"
)

// TestSimulatedNode drives the gateway with a simulated RIOT node that, like
// RIOT, POSTs NON from an ephemeral port and serves on 5683 of its own
// loopback address.
func TestSimulatedNode(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	events := bustest.Subscribe(t, bustest.Connect(t, srv), "node.>")
	g := startGateway(t, nc, func(c *coap.Config) { c.NodeTimeout = time.Second })
	const uid = "AB582D8277D4D97"
	sim, stopSim := startSim(t, coapsim.Config{
		UID: uid, Listen: "127.0.53.5:5683", Gateway: g.Addr().String(), Name: "Node LED",
		Sensors: true, SensorInterval: 50 * time.Millisecond, BeaconInterval: 100 * time.Millisecond,
	})

	t.Run("announced", func(t *testing.T) {
		var c bus.Check
		mustJSON(t, bustest.Next(t, events, bus.SubjectNodeCheck, wait).Data, &c)
		if c.ID != uid {
			t.Errorf("node.check id = %q, want %q", c.ID, uid)
		}
		s := nextState(t, events, uid)
		want := bus.State{State: bus.StateOnline, Protocol: bus.ProtocolCoAP, Gateway: "coap@test", Site: "lab", Address: "127.0.53.5:5683"}
		s.Time = time.Time{}
		if s != want {
			t.Errorf("$state = %+v, want %+v", s, want)
		}
	})
	t.Run("discovered", func(t *testing.T) {
		names, err := bus.ParseResources(bustest.Next(t, events, bus.NodeResources(uid), wait).Data)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"board", "led", "mcu", "name", "os", "position"} {
			if !slices.Contains(names, want) {
				t.Errorf("resources %v lack %q", names, want)
			}
		}
		want := map[string]string{"board": "native64", "mcu": "native", "name": "Node LED", "os": "riot", "led": "0",
			"position": `{"lat":48.71,"lng":2.2}`}
		if got := values(t, events, uid, slices.Collect(maps.Keys(want))...); !maps.Equal(got, want) {
			t.Errorf("values = %v, want %v", got, want)
		}
	})
	t.Run("pushed values", func(t *testing.T) {
		got := values(t, events, uid, "temperature", "pressure", "humidity")
		for res, unit := range map[string]string{"temperature": "°C", "pressure": "hPa", "humidity": "%"} {
			if v := got[res]; !strings.HasSuffix(v, unit) {
				t.Errorf("%s = %q, want a value in %s", res, v, unit)
			}
		}
	})
	t.Run("beacons only refresh", func(t *testing.T) {
		before := g.Stats().Beacons
		bustest.Eventually(t, wait, "three more beacons", func() error { return bustest.Want(g.Stats().Beacons >= before+3) })
		if d := g.Stats().Discovered; d != 1 {
			t.Errorf("discovered %d times, want once", d)
		}
	})
	t.Run("led on", func(t *testing.T) {
		if r := command(t, nc, uid, "led", "1"); !r.OK {
			t.Fatalf("reply %+v, want ok", r)
		}
		if !sim.LED() {
			t.Error("led still off after an ok reply")
		}
		if v := nextValue(t, events, uid, "led"); v != "1" {
			t.Errorf("led value = %q, want 1", v)
		}
	})
	t.Run("led refuses 5", func(t *testing.T) {
		r := command(t, nc, uid, "led", "5")
		if r.OK || r.Error != "4.00 Bad Request" || r.Code != bus.CodeRefused {
			t.Errorf("reply %+v, want 4.00 Bad Request", r)
		}
		if !sim.LED() {
			t.Error("led changed by a refused command")
		}
	})
	t.Run("unknown resource", func(t *testing.T) {
		if r := command(t, nc, uid, "nothing", "1"); r.OK || !strings.HasPrefix(r.Error, "4.04") {
			t.Errorf("reply %+v, want 4.04", r)
		}
	})
	t.Run("silent node goes offline", func(t *testing.T) {
		stopSim()
		for {
			s := nextState(t, events, uid)
			if s.State == bus.StateOffline {
				break
			}
		}
		// Its commands are then the queue's to answer (offline), not the
		// gateway's: gateways/presence replies_test.go.
		if n := len(g.Nodes()); n != 0 {
			t.Errorf("gateway still owns %d nodes", n)
		}
	})
}
