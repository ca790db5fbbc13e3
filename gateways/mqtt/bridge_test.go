package mqtt

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/mqtt/bridge"
	"github.com/goaiot/goaiot/gateways/mqtt/internal/mqtttest"
	"github.com/goaiot/goaiot/gateways/mqtt/mqttsim"
)

// startBridged runs a gateway with a bridge to broker.
func startBridged(t *testing.T, srv *bus.Server, cfg bridge.Config, change func(*Config)) *Gateway {
	t.Helper()
	cfg.Conn = bustest.Connect(t, srv)
	cfg.Logger = bustest.Logger(t).With("component", "bridge")
	cfg.Name = "mqtt@test"
	b, err := bridge.New(cfg)
	if err != nil {
		t.Fatalf("new bridge: %v", err)
	}
	return startGateway(t, srv, func(c *Config) {
		c.Bridge = b
		if change != nil {
			change(c)
		}
	})
}

// A node on an external mosquitto appears through the bridge, reports values,
// obeys commands (once) and goes offline when silent.
func TestBridgeNode(t *testing.T) {
	broker := mqtttest.StartBroker(t, mqtttest.BrokerOptions{})
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	states := bustest.Subscribe(t, nc, "node.*.$state")
	values := bustest.Subscribe(t, nc, "node.simb.temperature")
	startBridged(t, srv, bridge.Config{Broker: broker.URL}, func(c *Config) {
		c.NodeTimeout = 1500 * time.Millisecond
		c.CommandTimeout = time.Second
	})

	sim, err := mqttsim.New(mqttsim.Config{Broker: broker.URL, ID: "simb", Logger: bustest.Logger(t),
		CheckInterval: 200 * time.Millisecond, SensorInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	simCtx, stopSim := contextUntilCleanup(t)
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Run(simCtx) }()

	s := nextState(t, states, "simb")
	if s.State != bus.StateOnline || s.Protocol != bus.ProtocolMQTT || s.Address != broker.URL {
		t.Fatalf("state = %+v, want online MQTT at %s", s, broker.URL)
	}
	m := bustest.Next(t, values, "node.simb.temperature", wait)
	if m.Header.Get(bridge.HeaderBridge) != "mqtt@test" {
		t.Fatalf("value headers = %v, want the bridge's", m.Header)
	}

	t.Run("nats.go request", func(t *testing.T) {
		if r := request(t, nc, "simb", "led", "1"); !r.OK || sim.LED() != "1" {
			t.Fatalf("reply %+v, led %s; want ok and 1", r, sim.LED())
		}
	})
	t.Run("refused payload times out", func(t *testing.T) {
		if r := request(t, nc, "simb", "led", "x"); r.OK {
			t.Fatalf("reply %+v, want an error", r)
		}
	})
	t.Run("each command delivered once", func(t *testing.T) {
		if got := sim.Stats().Commands; got != 2 {
			t.Fatalf("node got %d commands, want 2", got)
		}
	})
	t.Run("silent node goes offline", func(t *testing.T) {
		stopSim()
		<-simDone
		for {
			s := nextState(t, states, "simb")
			if s.State == bus.StateOffline {
				return
			}
		}
	})
}

// The bridge logs in with a password over TLS.
func TestBridgeTLSAndPassword(t *testing.T) {
	opts, clientTLS := mqtttest.TLSFiles(t)
	opts.User, opts.Password = "aiot", "s3cret"
	broker := mqtttest.StartBroker(t, opts)
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	states := bustest.Subscribe(t, nc, "node.*.$state")
	startBridged(t, srv, bridge.Config{Broker: broker.URL, Username: "aiot", Password: "s3cret", TLS: clientTLS}, nil)

	sim, err := mqttsim.New(mqttsim.Config{Broker: broker.URL, ID: "tls1", Username: "aiot", Password: "s3cret",
		TLS: clientTLS.Clone(), Logger: bustest.Logger(t), CheckInterval: time.Hour, SensorInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	run(t, sim.Run)
	if s := nextState(t, states, "tls1"); s.Address != broker.URL {
		t.Fatalf("state = %+v", s)
	}
	if r := request(t, nc, "tls1", "led", "1"); !r.OK {
		t.Fatalf("reply %+v, want ok", r)
	}
}

// A command to a bridged node while the broker is down fails at once.
func TestBridgeCommandBrokerDown(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	states := bustest.Subscribe(t, nc, "node.*.$state")
	port := mqtttest.FreePort(t)
	url := "tcp://127.0.0.1:" + itoa(port)
	startBridged(t, srv, bridge.Config{Broker: url}, nil)
	// A node.check as if relayed by this bridge before the broker went away.
	m := &nats.Msg{Subject: bus.SubjectNodeCheck, Data: []byte(`{"id":"gone"}`),
		Header: nats.Header{bridge.HeaderBridge: []string{"mqtt@test"}, bus.HeaderAddress: []string{url}}}
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	nextState(t, states, "gone")
	r := request(t, nc, "gone", "led", "1")
	if r.OK || r.Error == "" {
		t.Fatalf("reply %+v, want a not-connected error", r)
	}
	t.Logf("reply: %s", r.Error)
}
