package dashboard

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/sites"
)

// dialPyaiot connects as Pyaiot's page does: /ws, no extensions asked for.
func dialPyaiot(t *testing.T, td *testDashboard) *browser {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(strings.TrimSuffix(td.wsURL(), "?ext=1"), nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { conn.Close() })
	return &browser{t: t, conn: conn}
}

// expectFrames reads len(want) frames and compares each, as "type uid
// endpoint=data" (endpoint=data for updates only).
func (b *browser) expectFrames(want ...string) {
	b.t.Helper()
	for i, w := range want {
		m := b.next()
		got := m.Type + " " + m.UID
		if m.Type == typeUpdate {
			got += " " + m.Endpoint + "=" + m.Data
		}
		if got != w {
			b.t.Fatalf("frame %d: %q, want %q", i+1, got, w)
		}
	}
}

// Pyaiot's own page gets exactly Pyaiot's protocol: no extension message,
// no offline node in the snapshot, each node's seed values (protocol, ip or
// id) after its "new" as Pyaiot's gateways sent them, and commands without
// a result message. The page's frames are replayed and the server's
// answers checked frame by frame.
func TestPyaiotPageGetsPyaiotProtocol(t *testing.T) {
	srv := bustest.StartServer(t)
	td := startDashboard(t, srv)
	pub := publisher{t: t, nc: bustest.Connect(t, srv)}
	now := time.Now().UTC()
	pub.json(bus.NodeState("coap1"), bus.State{State: bus.StateOnline, Protocol: bus.ProtocolCoAP, Gateway: "coap@a", Address: "[fd00::1]:5683", Time: now})
	pub.json(bus.NodeValue("coap1", "temperature"), bus.StringValue("21.5°C", now))
	pub.json(bus.NodeState("gone"), bus.State{State: bus.StateOnline, Protocol: bus.ProtocolMQTT, Time: now})
	pub.json(bus.NodeState("gone"), bus.State{State: bus.StateOffline, Protocol: bus.ProtocolMQTT, Time: now})
	pub.json(bus.NodeState("mqtt1"), bus.State{State: bus.StateOnline, Protocol: bus.ProtocolMQTT, Time: now})
	bustest.Eventually(t, wait, "three nodes known", func() error { return bustest.Want(metric(t, td, "aiot_dashboard_nodes") == 3) })

	page := dialPyaiot(t, td)
	if m, err := page.read(200 * time.Millisecond); err == nil {
		t.Fatalf("the server spoke first: %+v (Pyaiot's broker waits for new)", m)
	}
	page = dialPyaiot(t, td) // the timed-out read spoiled that socket
	page.send(`{"type":"new","data":"client"}`)
	page.expectFrames(
		"new coap1", "update coap1 protocol=CoAP", "update coap1 ip=fd00::1", "update coap1 temperature=21.5°C",
		"new mqtt1", "update mqtt1 protocol=MQTT", "update mqtt1 id=mqtt1",
	)

	t.Run("live values, and no extension message", func(t *testing.T) {
		pub.json(sites.SubjectCollision, sites.Collision{Type: "collision", UID: "coap1", Sites: []string{"a", "b"}})
		pub.json(bus.SubjectClaimRefused, bus.ClaimRefused{UID: "coap1", Owner: "x", Claimant: "y"})
		pub.json(bus.NodeValue("coap1", "temperature"), bus.StringValue("22°C", time.Now()))
		page.expectFrames("update coap1 temperature=22°C")
	})
	t.Run("a command reaches the gateway, no result comes back", func(t *testing.T) {
		got := make(chan string, 1)
		sub, err := pub.nc.Subscribe(bus.GatewaySet("coap1", "led"), func(m *nats.Msg) {
			got <- string(m.Data)
			_ = m.Respond([]byte(`{"ok":true}`))
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		_ = pub.nc.Flush()
		page.send(`{"type":"update","data":{"uid":"coap1","endpoint":"led","payload":"1"}}`)
		select {
		case p := <-got:
			if p != "1" {
				t.Fatalf("command payload %q", p)
			}
		case <-time.After(wait):
			t.Fatal("the command never reached the gateway")
		}
		pub.json(bus.NodeValue("coap1", "led"), bus.StringValue("1", time.Now())) // the node's answer
		page.expectFrames("update coap1 led=1")
	})
	t.Run("a node going offline is removed, coming back is new again with its seeds", func(t *testing.T) {
		pub.json(bus.NodeState("mqtt1"), bus.State{State: bus.StateOffline, Protocol: bus.ProtocolMQTT, Time: time.Now()})
		page.expectFrames("out mqtt1")
		pub.json(bus.NodeState("mqtt1"), bus.State{State: bus.StateOnline, Protocol: bus.ProtocolMQTT, Time: time.Now()})
		page.expectFrames("new mqtt1", "update mqtt1 protocol=MQTT", "update mqtt1 id=mqtt1")
	})
	t.Run("goaiot's page still gets its extensions", func(t *testing.T) {
		b := dial(t, td, nil) // asks ?ext=1, gets hello first
		snap := b.subscribe()
		var types []string
		for _, m := range snap {
			if m.Type == typeUpdate && (m.Endpoint == "protocol" || m.Endpoint == "ip" || m.Endpoint == "id") {
				t.Fatalf("seed value sent to goaiot's page: %+v", m)
			}
			types = append(types, m.Type+" "+m.UID)
		}
		if !strings.Contains(fmt.Sprint(types), "new gone") {
			t.Fatalf("goaiot's page lacks the offline node: %v", types)
		}
	})
}
