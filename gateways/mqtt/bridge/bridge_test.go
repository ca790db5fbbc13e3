package bridge

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/mqtt/internal/mqtttest"
)

const wait = 10 * time.Second

func TestCheckBroker(t *testing.T) {
	tests := []struct {
		name, url, want string
		ok              bool
	}{
		{"tcp", "tcp://127.0.0.1:1883", "tcp://127.0.0.1:1883", true},
		{"ssl with credentials stripped", "ssl://u:p@broker:8883", "ssl://broker:8883", true},
		{"websocket", "ws://broker:9001/mqtt", "ws://broker:9001/mqtt", true},
		{"empty", "", "", false},
		{"no port", "tcp://broker", "", false},
		{"no host", "tcp://:1883", "", false},
		{"nats scheme", "nats://broker:4222", "", false},
		{"not a url", "::", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := checkBroker(tt.url)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("checkBroker(%q) = %q, %v; want %q, ok=%v", tt.url, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestDedup(t *testing.T) {
	d := dedup{last: make(map[uint16]uint64)}
	tests := []struct {
		name    string
		id      uint16
		dup     bool
		topic   string
		payload string
		want    bool
	}{
		{"first delivery", 1, false, "node/n1/t", "a", false},
		{"redelivery of it", 1, true, "node/n1/t", "a", true},
		{"same id, new message", 1, false, "node/n1/t", "b", false},
		{"redelivery with other payload", 1, true, "node/n1/t", "c", false},
		{"same content without DUP flag", 1, false, "node/n1/t", "c", false},
		{"other id", 2, true, "node/n1/t", "c", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := d.duplicate(tt.id, tt.dup, tt.topic, []byte(tt.payload)); got != tt.want {
				t.Fatalf("duplicate = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	log := bustest.Logger(t)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no conn", Config{Logger: log, Broker: "tcp://h:1", Name: "b"}},
		{"no logger", Config{Conn: nc, Broker: "tcp://h:1", Name: "b"}},
		{"no name", Config{Conn: nc, Logger: log, Broker: "tcp://h:1"}},
		{"bad broker", Config{Conn: nc, Logger: log, Broker: "http://h:1", Name: "b"}},
		{"negative rate", Config{Conn: nc, Logger: log, Broker: "tcp://h:1", Name: "b", NodeRate: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
}

// startBridge runs a bridge to broker until the test ends and waits until
// it relays.
func startBridge(t *testing.T, srv *bus.Server, broker string, change func(*Config)) *Bridge {
	t.Helper()
	cfg := Config{Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t), Broker: broker, Name: "br"}
	if change != nil {
		change(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	deadline := time.Now().Add(wait)
	for !b.connected() {
		if time.Now().After(deadline) {
			t.Fatal("bridge not connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return b
}

// Malformed, unsafe or reserved messages from the broker never reach the
// bus; good ones do, with the bridge's headers.
func TestRelayRejects(t *testing.T) {
	broker := mqtttest.StartBroker(t, mqtttest.BrokerOptions{})
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	all := bustest.Subscribe(t, nc, "node.>")
	b := startBridge(t, srv, broker.URL, nil)
	addr := broker.Host + ":" + strconv.Itoa(broker.Port)

	// The subscription to node/# may still be on its way: wait for a message.
	deadline := time.Now().Add(wait)
	for b.Stats().ToBus == 0 && time.Now().Before(deadline) {
		mqtttest.Pub(t, addr, "node/check", `{"id":"warmup"}`)
		time.Sleep(50 * time.Millisecond)
	}
	bustest.Next(t, all, bus.SubjectNodeCheck, wait)
	for len(all) > 0 {
		<-all
	}

	tests := []struct {
		name, topic, payload, reason string
	}{
		{"check not JSON", "node/check", "hello", "bad check"},
		{"check unsafe id", "node/check", `{"id":"a.b"}`, "bad check"},
		{"id with a dot in the topic", "node/a.b/temperature", `{"value":"1"}`, "unsafe topic"},
		{"id with a space in the topic", "node/a b/temperature", `{"value":"1"}`, "unsafe topic"},
		{"empty level", "node//temperature", `{"value":"1"}`, "unsafe topic"},
		{"spoofed state", "node/n1/$state", `{"state":"offline"}`, "not a node topic"},
		{"too deep", "node/n1/a/b", `{"value":"1"}`, "not a node topic"},
		{"reserved resource", "node/n1/set", `{"value":"1"}`, "not a node topic"},
		{"value not JSON", "node/n1/temperature", `21`, "bad value"},
		{"resources not a list", "node/n1/resources", `{"a":1}`, "bad resources"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := b.drops.Count(tt.reason)
			mqtttest.Pub(t, addr, tt.topic, tt.payload)
			deadline := time.Now().Add(wait)
			for b.drops.Count(tt.reason) != before+1 {
				if time.Now().After(deadline) {
					t.Fatalf("not dropped as %q: %v", tt.reason, b.Stats().Dropped)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	mqtttest.Pub(t, addr, "node/n1/temperature", `{"value":"21.5°C"}`)
	m := <-all // in order on the broker connection: nothing bad came before
	if m.Subject != "node.n1.temperature" {
		t.Fatalf("first message on the bus after the bad ones: %s %s", m.Subject, m.Data)
	}
	if m.Header.Get(HeaderBridge) != "br" || m.Header.Get(bus.HeaderAddress) != broker.URL {
		t.Fatalf("headers = %v", m.Header)
	}
}

// A node over its rate is cut down; another node is not.
func TestRelayFlood(t *testing.T) {
	broker := mqtttest.StartBroker(t, mqtttest.BrokerOptions{})
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	flood := bustest.Subscribe(t, nc, "node.flood.>")
	calm := bustest.Subscribe(t, nc, "node.calm.>")
	b := startBridge(t, srv, broker.URL, func(c *Config) { c.NodeRate, c.NodeBurst = 1, 5 })
	addr := broker.Host + ":" + strconv.Itoa(broker.Port)
	deadline := time.Now().Add(wait)
	for b.Stats().ToBus == 0 && time.Now().Before(deadline) {
		mqtttest.Pub(t, addr, "node/calm/x", `{"value":"0"}`)
		time.Sleep(50 * time.Millisecond)
	}

	lines := make([]string, 200)
	for i := range lines {
		lines[i] = `{"value":"` + strconv.Itoa(i) + `"}`
	}
	mqtttest.PubLines(t, addr, "node/flood/temperature", lines)
	mqtttest.Pub(t, addr, "node/calm/temperature", `{"value":"ok"}`)
	bustest.Next(t, calm, "node.calm.temperature", wait)
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := len(flood); got < 5 || got > 20 {
		t.Fatalf("flooding node: %d of 200 messages relayed, want its burst (5) and a few", got)
	}
	if b.drops.Count("flood") < 150 {
		t.Fatalf("flood drops = %d", b.drops.Count("flood"))
	}
}

// gateway.check and discover go to the broker; commands published on the bus
// do not (the gateway sends them itself, once).
func TestRelayToBroker(t *testing.T) {
	broker := mqtttest.StartBroker(t, mqtttest.BrokerOptions{})
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	b := startBridge(t, srv, broker.URL, nil)
	lines := mqtttest.Sub(t, broker.Host+":"+strconv.Itoa(broker.Port), "gateway/#")
	for _, m := range []struct{ subject, data string }{
		{bus.GatewaySet("n1", "led"), "1"},
		{bus.SubjectGatewayCheck, "x"},
		{bus.GatewayDiscover("n1"), bus.DiscoverValues},
	} {
		if err := nc.Publish(m.subject, []byte(m.data)); err != nil {
			t.Fatal(err)
		}
	}
	// gateway.check and discover come through two subscriptions: any order.
	got := map[string]bool{}
	for len(got) < 2 {
		select {
		case l := <-lines:
			got[l] = true
		case <-time.After(wait):
			t.Fatalf("relayed to the broker: %v", got)
		}
	}
	if !got["gateway/check x"] || !got["gateway/n1/discover values"] {
		t.Fatalf("relayed to the broker: %v, want gateway/check and the discover only", got)
	}
	if got := b.Stats().ToBroker; got != 2 {
		t.Fatalf("to broker = %d, want 2", got)
	}
}
