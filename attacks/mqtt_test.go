package attacks

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/mqtt"
	"github.com/goaiot/goaiot/gateways/presence"
)

// mqttEdge is the default `aiot run` set-up for the MQTT listener: an
// embedded server with its MQTT listener and NODES stream, the MQTT node
// logic, and a CoAP gateway's tracker owning node "victim" with stored
// history.
type mqttEdge struct {
	srv    *bus.Server
	nc     *nats.Conn
	gw     *mqtt.Gateway
	coap   *presence.Tracker
	before jetstream.StreamState
}

func startMQTTEdge(t *testing.T) *mqttEdge {
	t.Helper()
	e := &mqttEdge{srv: bustest.StartServer(t, bustest.WithMQTT())}
	e.nc = bustest.Connect(t, e.srv)
	var err error
	e.coap, err = presence.New(presence.Config{Conn: bustest.Connect(t, e.srv), Logger: bustest.Logger(t),
		Protocol: bus.ProtocolCoAP, Gateway: "coap@lab", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, e.coap.Run)
	e.gw, err = mqtt.New(mqtt.Config{Conn: bustest.Connect(t, e.srv), Logger: bustest.Logger(t),
		Gateway: "mqtt@lab", CheckInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, e.gw.Run)
	states := bustest.Subscribe(t, e.nc, bus.NodeState("victim"))
	if _, err := e.coap.Seen("victim", "[fd00::1]:5683"); err != nil {
		t.Fatal(err)
	}
	bustest.Next(t, states, bus.NodeState("victim"), wait)
	e.before = victim(t, e.nc, 5)
	return e
}

// Rows 1, 3, 4, 6 and 9 of issue 12, on nats-server's MQTT listener with
// no --auth (the default): an anonymous MQTT client speaks only for the
// node named by its client id.
func TestMQTTListenerAttacks(t *testing.T) {
	e := startMQTTEdge(t)

	t.Run("delete the NODES stream", func(t *testing.T) {
		c := mqttClient(t, e.srv, "mallory")
		publish(t, c, "$JS/API/STREAM/DELETE/NODES", nil)
		publish(t, c, "$JS/API/STREAM/PURGE/NODES", nil)
		settle(t, c, e.nc, "mallory")
		intact(t, e.nc, e.before)
	})

	t.Run("command another node", func(t *testing.T) {
		cmds, err := e.nc.SubscribeSync(bus.GatewaySet("victim", "led"))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmds.Unsubscribe() }()
		c := mqttClient(t, e.srv, "mallory")
		publish(t, c, "gateway/victim/led/set", []byte("1"))
		settle(t, c, e.nc, "mallory")
		if m, err := cmds.NextMsg(10 * time.Millisecond); err == nil {
			t.Fatalf("a command reached the victim: %s", m.Data)
		}
	})

	t.Run("read commands and replies", func(t *testing.T) {
		c := mqttClient(t, e.srv, "mallory")
		for _, filter := range []string{"gateway/#", "_INBOX/#", "node/#", "#"} {
			tok := c.Subscribe(filter, 0, nil)
			if !tok.WaitTimeout(wait) {
				t.Fatalf("subscribe %s: no answer", filter)
			}
			// A refused filter is either answered with the failure code or
			// closes the connection; it never delivers.
			if tok.Error() == nil && c.IsConnected() {
				if code := subackCode(tok); code != 0x80 {
					t.Fatalf("subscribe %s granted (code %#x)", filter, code)
				}
			}
		}
	})

	t.Run("forge another node's state, values and check", func(t *testing.T) {
		c := mqttClient(t, e.srv, "mallory")
		publish(t, c, "node/victim/$state", []byte(`{"state":"offline"}`))
		publish(t, c, "node/victim/temperature", []byte(`{"value":"forged"}`))
		publish(t, c, "node/check", []byte(`{"id":"victim"}`))
		settle(t, c, e.nc, "mallory")
		if got := lastValue(t, e.nc, bus.NodeValue("victim", "temperature")); strings.Contains(got, "forged") {
			t.Fatalf("forged value stored: %s", got)
		}
		if st := lastValue(t, e.nc, bus.NodeState("victim")); !strings.Contains(st, `"online"`) || !strings.Contains(st, "coap@lab") {
			t.Fatalf("victim's state = %s, want online by coap@lab", st)
		}
		for _, n := range e.gw.Nodes() {
			if n.ID == "victim" {
				t.Fatal("the MQTT node logic claimed the CoAP node")
			}
		}
		if _, ok := e.coap.Lookup("victim"); !ok {
			t.Fatal("the CoAP gateway lost its node")
		}
		intact(t, e.nc, e.before)
	})

	t.Run("huge values and a flood of subjects", func(t *testing.T) {
		c := mqttClient(t, e.srv, "mallory")
		big := make([]byte, 900_000)
		for i := range big {
			big[i] = 'x'
		}
		for i := range 20 {
			publish(t, c, "node/mallory/r"+string(rune('a'+i)), big)
		}
		settle(t, c, e.nc, "mallory")
		if got := lastValue(t, e.nc, bus.NodeValue("mallory", "ra")); got != "" {
			t.Fatalf("a %d-byte value was stored", len(got))
		}
		intact(t, e.nc, e.before)
	})

	t.Run("20 000 node.check claims", func(t *testing.T) {
		states, err := e.nc.SubscribeSync(bus.NodeState("*"))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = states.Unsubscribe() }()
		c := mqttClient(t, e.srv, "mallory")
		for i := range 20_000 {
			publish(t, c, "node/check", []byte(`{"id":"fake`+itoa(i)+`"}`))
		}
		settle(t, c, e.nc, "mallory")
		bustest.Eventually(t, wait, "every claim handled", func() error { return bustest.Want(e.gw.Stats().Checks >= 20_000) })
		if m, err := states.NextMsg(10 * time.Millisecond); err == nil {
			t.Fatalf("a claim without proof made a node: %s %s", m.Subject, m.Data)
		}
		if n := len(e.gw.Nodes()); n != 0 {
			t.Fatalf("%d fake nodes online", n)
		}
		intact(t, e.nc, e.before)
	})

	t.Run("the honest node still works", func(t *testing.T) {
		states := bustest.Subscribe(t, e.nc, bus.NodeState("honest"))
		disc := bustest.Subscribe(t, e.nc, bus.GatewayDiscover("honest"))
		c := mqttClient(t, e.srv, "mqtt-honest")
		// Like a real node, it beacons until it is asked for its list (the
		// gateway may still be working through the flood).
		deadline := time.Now().Add(3 * wait)
		for asked := false; !asked; {
			publish(t, c, "node/check", []byte(`{"id":"honest"}`))
			select {
			case <-disc:
				asked = true
			case <-time.After(time.Second):
				if time.Now().After(deadline) {
					t.Fatalf("never asked for its resources: %+v", e.gw.Stats())
				}
			}
		}
		publish(t, c, "node/honest/resources", []byte(`["temperature"]`))
		bustest.Next(t, states, bus.NodeState("honest"), wait)
		publish(t, c, "node/honest/temperature", []byte(`{"value":"21.5°C"}`))
		bustest.Eventually(t, wait, "honest value stored", func() error {
			return bustest.Want(strings.Contains(lastValue(t, e.nc, bus.NodeValue("honest", "temperature")), "21.5"))
		})
	})
}

// A full stream refuses new values instead of evicting stored ones
// (DiscardNew): a node filling it with its own subjects costs nobody's
// history.
func TestFullStreamEvictsNobody(t *testing.T) {
	srv := bustest.StartServer(t, bustest.WithMQTT())
	nc := bustest.Connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	small := bus.DefaultStreamConfig()
	small.MaxBytes = 256 << 10
	if _, err := bus.EnsureNodesStream(ctx, js, small); err != nil {
		t.Fatal(err)
	}
	before := victim(t, nc, 5)
	c := mqttClient(t, srv, "loud")
	value := []byte(`{"value":"` + strings.Repeat("x", 4000) + `"}`)
	for i := range 200 {
		publish(t, c, "node/loud/r"+itoa(i), value)
	}
	settle(t, c, nc, "loud")
	_, err = js.Publish(ctx, bus.NodeValue("loud", "more"), value)
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("publish into a full stream: %v, want refused", err)
	}
	intact(t, nc, before)
}

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{digits[i%10]}, b...)
	}
	return string(b)
}
