package mqtt

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/mqtt/internal/mqtttest"
	"github.com/goaiot/goaiot/gateways/mqtt/mqttsim"
)

// A mosquitto_pub/mosquitto_sub node on the embedded listener appears,
// is discovered, reports values and goes offline when silent.
func TestListenerNodeLifecycle(t *testing.T) {
	srv := bustest.StartServer(t, bustest.WithMQTT())
	nc := bustest.Connect(t, srv)
	states := bustest.Subscribe(t, nc, "node.*.$state")
	values := bustest.Subscribe(t, nc, "node.n1.temperature")
	g := startGateway(t, srv, func(c *Config) { c.NodeTimeout = time.Second })
	addr := srv.MQTTAddr()
	node := mqtttest.Sub(t, addr, "gateway/n1/#", "-i", "n1")

	// The check is a claim; the list, which only n1's connections may
	// publish, proves it.
	mqtttest.Pub(t, addr, "node/check", `{"id":"n1"}`, "-i", "mqtt-n1")
	mqtttest.NextLine(t, node, "gateway/n1/discover resources", wait)
	mqtttest.Pub(t, addr, "node/n1/resources", `["temperature","led"]`, "-i", "mqtt-n1")
	s := nextState(t, states, "n1")
	if s.State != bus.StateOnline || s.Protocol != bus.ProtocolMQTT || s.Gateway != "mqtt@test" || s.Site != "lab" {
		t.Fatalf("state = %+v, want online MQTT mqtt@test lab", s)
	}
	mqtttest.NextLine(t, node, "gateway/n1/discover values", wait)

	mqtttest.Pub(t, addr, "node/n1/temperature", `{"value":"21.5°C"}`, "-i", "mqtt-n1")
	m := bustest.Next(t, values, "node.n1.temperature", wait)
	if v, err := bus.ParseValue(m.Data); err != nil || v.Text() != "21.5°C" {
		t.Fatalf("value = %s (%v), want 21.5°C", m.Data, err)
	}
	bustest.Eventually(t, wait, "value counted", func() error { return bustest.Want(g.Stats().Values == 1) })

	if s := nextState(t, states, "n1"); s.State != bus.StateOffline {
		t.Fatalf("after silence: state = %+v, want offline", s)
	}
	if n := len(g.Nodes()); n != 0 {
		t.Fatalf("nodes after timeout = %d, want 0", n)
	}
}

// A node that has not sent its resource list is asked again at its next
// check, at most every RediscoverInterval; once it has, it is not.
func TestListenerRediscovers(t *testing.T) {
	srv := bustest.StartServer(t, bustest.WithMQTT())
	nc := bustest.Connect(t, srv)
	discovers := bustest.Subscribe(t, nc, bus.GatewayDiscover("*"))
	// A claim waits 6 × RediscoverInterval for its proof: long enough for
	// a mosquitto_pub started on a loaded machine.
	const rediscover = 500 * time.Millisecond
	startGateway(t, srv, func(c *Config) { c.RediscoverInterval = rediscover })
	addr := srv.MQTTAddr()

	n1 := []string{"-i", "mqtt-n1"}
	mqtttest.Pub(t, addr, "node/check", `{"id":"n1"}`, n1...)
	if m := first(t, discovers); m.Subject != bus.GatewayDiscover("n1") || string(m.Data) != bus.DiscoverResources {
		t.Fatalf("first discover: %s %s", m.Subject, m.Data)
	}
	time.Sleep(rediscover + 10*time.Millisecond) // let the re-ask interval pass
	mqtttest.Pub(t, addr, "node/check", `{"id":"n1"}`, n1...)
	if m := first(t, discovers); m.Subject != bus.GatewayDiscover("n1") || string(m.Data) != bus.DiscoverResources {
		t.Fatalf("second discover: %s %s", m.Subject, m.Data)
	}
	mqtttest.Pub(t, addr, "node/n1/resources", `["led"]`, n1...)
	if m := first(t, discovers); string(m.Data) != bus.DiscoverValues {
		t.Fatalf("after the list: %s %s, want values", m.Subject, m.Data)
	}
	time.Sleep(rediscover + 10*time.Millisecond)
	mqtttest.Pub(t, addr, "node/check", `{"id":"n1"}`, n1...)
	mqtttest.Pub(t, addr, "node/check", `{"id":"n2"}`, "-i", "mqtt-n2")
	// n1's check was published (and acknowledged) first: had it been
	// asked again, that discover would come before n2's.
	if m := first(t, discovers); m.Subject != bus.GatewayDiscover("n2") {
		t.Fatalf("a node with a known list was asked again: %s %s", m.Subject, m.Data)
	}
}

// Commands to listener nodes: the request reaches the node once, and the
// reply is ok once the node republished the resource. Each subtest commands
// a node of its own, so what it counts is its own doing.
func TestListenerCommands(t *testing.T) {
	srv := bustest.StartServer(t, bustest.WithMQTT())
	nc := bustest.Connect(t, srv)
	startGateway(t, srv, func(c *Config) { c.CommandTimeout = time.Second })
	addr := srv.MQTTAddr()
	// node starts a simulated node for one subtest and waits until it is online.
	node := func(t *testing.T, id string) *mqttsim.Node {
		t.Helper()
		states := bustest.Subscribe(t, nc, bus.NodeState(id))
		sim := startSim(t, "tcp://"+addr, id)
		nextState(t, states, id)
		return sim
	}

	t.Run("nats.go request", func(t *testing.T) {
		t.Parallel()
		sim := node(t, "go1")
		if r := request(t, nc, "go1", "led", "1"); !r.OK {
			t.Fatalf("reply = %+v, want ok", r)
		}
		if sim.LED() != "1" {
			t.Fatalf("led = %s, want 1", sim.LED())
		}
	})
	t.Run("nats CLI request", func(t *testing.T) {
		t.Parallel()
		natsCLI := bustest.Peer(t, "nats")
		sim := node(t, "cli1")
		out, err := exec.Command(natsCLI, "--server", srv.ClientURL(), "req", "gateway.cli1.led.set", "1", "--timeout", "5s").CombinedOutput()
		if err != nil {
			t.Fatalf("nats req: %v: %s", err, out)
		}
		if !strings.Contains(string(out), `{"ok":true,"code":"ok"}`) {
			t.Fatalf("nats req output has no ok reply:\n%s", out)
		}
		if sim.LED() != "1" {
			t.Fatalf("led = %s, want 1", sim.LED())
		}
	})
	t.Run("refused payload fails, delivered once", func(t *testing.T) {
		t.Parallel()
		sim := node(t, "refuse1")
		r := request(t, nc, "refuse1", "led", "7")
		// The sim ignores "7": a timeout, or refused when its earlier
		// led=0 (answering discover) reached the gateway after the command.
		if r.OK || (r.Code != bus.CodeTimeout && r.Code != bus.CodeRefused) {
			t.Fatalf("reply = %+v, want a timeout or refused", r)
		}
		if got := sim.Stats().Commands; got != 1 {
			t.Fatalf("node got %d commands, want 1", got)
		}
	})
	t.Run("each command delivered once", func(t *testing.T) {
		t.Parallel()
		sim := node(t, "once1")
		for _, v := range []string{"1", "0", "1"} {
			if r := request(t, nc, "once1", "led", v); !r.OK {
				t.Fatalf("led %s: reply = %+v, want ok", v, r)
			}
		}
		if got := sim.Stats().Commands; got != 3 {
			t.Fatalf("node got %d commands, want 3", got)
		}
	})
	t.Run("mosquitto node", func(t *testing.T) {
		t.Parallel()
		states := bustest.Subscribe(t, nc, bus.NodeState("m1"))
		m1 := []string{"-i", "mqtt-m1"}
		cmds := mqtttest.Sub(t, addr, "gateway/m1/#", "-i", "m1")
		mqtttest.Pub(t, addr, "node/check", `{"id":"m1"}`, m1...)
		mqtttest.NextLine(t, cmds, "gateway/m1/discover resources", wait)
		mqtttest.Pub(t, addr, "node/m1/led", `{"value":"0"}`, m1...) // the proof
		nextState(t, states, "m1")
		replies := make(chan bus.Reply, 1)
		go func() {
			m, err := nc.Request(bus.GatewaySet("m1", "led"), []byte("1"), wait)
			if err != nil {
				replies <- bus.Reply{Error: err.Error()}
				return
			}
			r, _ := bus.ParseReply(m.Data)
			replies <- r
		}()
		mqtttest.NextLine(t, cmds, "gateway/m1/led/set 1", wait)
		mqtttest.Pub(t, addr, "node/m1/led", `{"value":"1"}`, m1...)
		if r := <-replies; !r.OK {
			t.Fatalf("reply = %+v, want ok", r)
		}
	})
}

// The simulated node answers gateway.check, and the gateway publishes it
// periodically.
func TestGatewayCheckPeriodic(t *testing.T) {
	srv := bustest.StartServer(t, bustest.WithMQTT())
	nc := bustest.Connect(t, srv)
	checks := bustest.Subscribe(t, nc, bus.SubjectNodeCheck)
	gwChecks := bustest.Subscribe(t, nc, bus.SubjectGatewayCheck)
	startSim(t, "tcp://"+srv.MQTTAddr(), "sim2")
	bustest.Next(t, checks, bus.SubjectNodeCheck, wait) // at connect
	startGateway(t, srv, func(c *Config) { c.CheckInterval = 50 * time.Millisecond })
	for range 3 {
		bustest.Next(t, gwChecks, bus.SubjectGatewayCheck, wait)
		bustest.Next(t, checks, bus.SubjectNodeCheck, wait)
	}
}

// MQTT-SN nodes come through the MQTT-SN gateway, which relays their
// messages with the transport headers and delivers commands itself.
func TestMQTTSNNode(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	states := bustest.Subscribe(t, nc, "node.*.$state")
	g := startGateway(t, srv, nil)
	transport := nats.Header{bus.HeaderTransport: []string{bus.ProtocolMQTTSN}, bus.HeaderAddress: []string{"127.0.0.1:1883"}}

	// The "MQTT-SN gateway": delivers commands to its client, which answers.
	delivered := make(chan string, 16)
	_, err := nc.Subscribe(bus.GatewaySetAll("sn1"), func(m *nats.Msg) {
		delivered <- string(m.Data)
		_ = nc.PublishMsg(&nats.Msg{Subject: bus.NodeValue("sn1", "led"), Data: []byte(`{"value":"` + string(m.Data) + `"}`), Header: transport})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishMsg(&nats.Msg{Subject: bus.SubjectNodeCheck, Data: []byte(`{"id":"sn1"}`), Header: transport}); err != nil {
		t.Fatal(err)
	}
	s := nextState(t, states, "sn1")
	if s.Protocol != bus.ProtocolMQTTSN || s.Address != "127.0.0.1:1883" || s.State != bus.StateOnline {
		t.Fatalf("state = %+v, want online MQTT-SN 127.0.0.1:1883", s)
	}
	if r := request(t, nc, "sn1", "led", "1"); !r.OK {
		t.Fatalf("reply = %+v, want ok", r)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(delivered) != 1 {
		t.Fatalf("command delivered %d times, want once", len(delivered))
	}
	if st := g.Stats(); st.MQTTSN.Online != 1 || st.MQTT.Online != 0 {
		t.Fatalf("stats = %+v, want one MQTT-SN node", st)
	}
}

// node.check published by a gateway that owns its node is never claimed.
func TestOwnedCheckIgnored(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	states := bustest.Subscribe(t, nc, "node.*.$state")
	discovers := bustest.Subscribe(t, nc, bus.GatewayDiscover("n9"))
	g := startGateway(t, srv, nil)
	owned := &nats.Msg{Subject: bus.SubjectNodeCheck, Data: []byte(`{"id":"coap1"}`), Header: nats.Header{bus.HeaderOwner: []string{"coap@x"}}}
	if err := nc.PublishMsg(owned); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish(bus.SubjectNodeCheck, []byte(`{"id":"n9"}`)); err != nil {
		t.Fatal(err)
	}
	bustest.Next(t, discovers, bus.GatewayDiscover("n9"), wait)
	if err := nc.Publish(bus.NodeValue("n9", "led"), []byte(`{"value":"0"}`)); err != nil { // the proof
		t.Fatal(err)
	}
	// Same connection, same subscription: coap1 would have come first.
	if m := first(t, states); m.Subject != bus.NodeState("n9") {
		t.Fatalf("first $state on %s, want node.n9.$state", m.Subject)
	}
	if got := g.Stats().OwnedElsewhere; got != 1 {
		t.Fatalf("owned elsewhere = %d, want 1", got)
	}
}

// Malformed or unsafe input is dropped with a counter; it claims no node and
// never lands on another node.
func TestBadInputDropped(t *testing.T) {
	srv := bustest.StartServer(t, bustest.WithMQTT())
	nc := bustest.Connect(t, srv)
	states := bustest.Subscribe(t, nc, "node.*.$state")
	g := startGateway(t, srv, nil)
	addr := srv.MQTTAddr()
	good := []string{"-i", "mqtt-good"}
	mqtttest.Pub(t, addr, "node/check", `{"id":"good"}`, good...)
	mqtttest.Pub(t, addr, "node/good/resources", `["temperature"]`, good...)
	nextState(t, states, "good")

	tests := []struct {
		name, topic, payload, reason string
	}{
		{"check not JSON", "node/check", `id=n1`, "bad check"},
		{"check id with a dot", "node/check", `{"id":"a.b"}`, "bad check"},
		{"check id with a space", "node/check", `{"id":"a b"}`, "bad check"},
		{"check id wildcard", "node/check", `{"id":"*"}`, "bad check"},
		{"check id reserved", "node/check", `{"id":"$state"}`, "bad check"},
		{"check id empty", "node/check", `{"id":""}`, "bad check"},
		{"check id missing", "node/check", `{}`, "bad check"},
		{"resources not JSON", "node/good/resources", `[board`, "bad resources"},
		{"resources unsafe name", "node/good/resources", `["a.b"]`, "bad resources"},
		{"value not JSON", "node/good/temperature", `21.5`, "bad value"},
		{"value without value", "node/good/temperature", `{"v":1}`, "bad value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := g.drops.Count(tt.reason)
			mqtttest.Pub(t, addr, tt.topic, tt.payload, good...)
			bustest.Eventually(t, wait, "drop counted as "+tt.reason, func() error { return bustest.Want(g.drops.Count(tt.reason) == before+1) })
		})
	}
	mqtttest.Pub(t, addr, "node/check", `{"id":"last"}`, "-i", "mqtt-last")
	mqtttest.Pub(t, addr, "node/last/resources", `["led"]`, "-i", "mqtt-last")
	if m := first(t, states); m.Subject != bus.NodeState("last") {
		t.Fatalf("a bad check claimed a node: %s", m.Subject)
	}
	if got := len(g.Nodes()); got != 2 {
		t.Fatalf("nodes = %d, want 2", got)
	}
}

// A node flooding its resource list is not echoed back a flood of
// discover requests, and the other nodes keep being served.
func TestFloodContained(t *testing.T) {
	srv := bustest.StartServer(t, bustest.WithMQTT())
	nc := bustest.Connect(t, srv)
	states := bustest.Subscribe(t, nc, "node.*.$state")
	discovers := bustest.Subscribe(t, nc, bus.GatewayDiscover("flood"))
	g := startGateway(t, srv, nil)
	sim := startSim(t, "tcp://"+srv.MQTTAddr(), "calm")
	nextState(t, states, "calm")
	if err := nc.Publish(bus.SubjectNodeCheck, []byte(`{"id":"flood"}`)); err != nil {
		t.Fatal(err)
	}
	bustest.Next(t, discovers, bus.GatewayDiscover("flood"), wait)
	if err := nc.Publish(bus.NodeResources("flood"), []byte(`["led"]`)); err != nil { // the proof
		t.Fatal(err)
	}
	nextState(t, states, "flood")

	flooder, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer flooder.Close()
	const n = 5_000
	for range n {
		if err := flooder.Publish(bus.NodeResources("flood"), []byte(`["led"]`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := flooder.Flush(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	r := request(t, nc, "calm", "led", "1")
	t.Logf("command during the flood answered in %s", time.Since(t0))
	if !r.OK || sim.LED() != "1" {
		t.Fatalf("during the flood: reply %+v, led %s", r, sim.LED())
	}
	bustest.Eventually(t, wait, "flood dropped", func() error { return bustest.Want(g.drops.Count("resources too often") > 0) })
	t.Logf("flood dropped after %s", time.Since(t0))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	asked := 0
	for {
		select {
		case m := <-discovers:
			if string(m.Data) == bus.DiscoverValues {
				asked++
			}
			continue
		case <-ctx.Done():
		}
		break
	}
	if asked > 10 {
		t.Fatalf("the gateway asked the flooding node for values %d times", asked)
	}
}

// A node naming ever new resources does not grow the gateway's memory of
// its latest values past bus.DefaultMaxResources.
func TestRecentValuesBounded(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	states := bustest.Subscribe(t, nc, "node.*.$state")
	g := startGateway(t, srv, nil)
	transport := nats.Header{bus.HeaderTransport: []string{bus.ProtocolMQTTSN}, bus.HeaderAddress: []string{"127.0.0.1:1"}}
	if err := nc.PublishMsg(&nats.Msg{Subject: bus.SubjectNodeCheck, Data: []byte(`{"id":"many"}`), Header: transport}); err != nil {
		t.Fatal(err)
	}
	nextState(t, states, "many")
	const n = bus.DefaultMaxResources + 100
	for i := range n {
		m := &nats.Msg{Subject: bus.NodeValue("many", fmt.Sprintf("r%d", i)), Data: []byte(`{"value":"1"}`), Header: transport}
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	bustest.Eventually(t, wait, "every value handled", func() error { return bustest.Want(g.Stats().Values >= n) })
	g.mu.Lock()
	kept := len(g.nodes["many"].recent)
	g.mu.Unlock()
	if kept != bus.DefaultMaxResources {
		t.Fatalf("%d recent values kept, want the bound %d", kept, bus.DefaultMaxResources)
	}
}
