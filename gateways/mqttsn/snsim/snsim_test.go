package snsim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/mqttsn"
	"github.com/goaiot/goaiot/gateways/mqttsn/snsim"
)

// startGateway runs a real MQTT-SN gateway on loopback and returns its
// address and a NATS connection for test subscribers.
func startGateway(t *testing.T) (string, *nats.Conn) {
	t.Helper()
	srv := bustest.StartServer(t)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := mqttsn.New(mqttsn.Config{
		Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t).With("component", "mqttsn"),
		PacketConn: conn, Tick: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, gw.Run)
	return conn.LocalAddr().String(), bustest.Connect(t, srv)
}

// run runs fn until the test ends and checks it returned nil.
func run(t *testing.T, fn func(context.Context) error) {
	t.Helper()
	bustest.Run(t, fn)
}

func value(t *testing.T, data []byte) string {
	t.Helper()
	v, err := bus.ParseValue(data)
	if err != nil {
		t.Fatalf("value %q: %v", data, err)
	}
	return v.Text()
}

// TestNodeAppearsReportsAndObeys: the node announces itself, reports its
// values on the right subjects, and a NATS request on
// gateway.<id>.led.set reaches it; it sets its LED and republishes led.
func TestNodeAppearsReportsAndObeys(t *testing.T) {
	gw, nc := startGateway(t)
	all := bustest.Subscribe(t, nc, "node.>")
	n, err := snsim.New(snsim.Config{
		Gateway: gw, NodeID: "sim-1", Local: "127.0.0.3:0", Logger: bustest.Logger(t),
		SensorInterval: 100 * time.Millisecond, CheckInterval: 300 * time.Millisecond,
		RetryInterval: 500 * time.Millisecond, Commands: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, n.Run)

	check := bustest.Next(t, all, bus.SubjectNodeCheck, 3*time.Second)
	if c, err := bus.ParseCheck(check.Data); err != nil || c.ID != "sim-1" {
		t.Fatalf("check %q: %v", check.Data, err)
	}
	if check.Header.Get(bus.HeaderTransport) != bus.ProtocolMQTTSN {
		t.Fatalf("headers %v", check.Header)
	}
	res := bustest.Next(t, all, bus.NodeResources("sim-1"), 3*time.Second)
	names, err := bus.ParseResources(res.Data)
	if err != nil || len(names) != 8 {
		t.Fatalf("resources %q: %v", res.Data, err)
	}
	for _, tt := range []struct{ res, want string }{{"board", "native64"}, {"os", "riot"}, {"led", "0"}} {
		if got := value(t, bustest.Next(t, all, bus.NodeValue("sim-1", tt.res), 3*time.Second).Data); got != tt.want {
			t.Fatalf("%s = %q, want %q", tt.res, got, tt.want)
		}
	}
	for range 2 { // sensors keep coming
		for _, r := range []string{"temperature", "pressure", "humidity"} {
			bustest.Next(t, all, bus.NodeValue("sim-1", r), 3*time.Second)
		}
	}

	inbox := nats.NewInbox()
	if err := nc.PublishRequest(bus.GatewaySet("sim-1", "led"), inbox, []byte("1")); err != nil {
		t.Fatal(err)
	}
	if got := value(t, bustest.Next(t, all, bus.NodeValue("sim-1", "led"), 3*time.Second).Data); got != "1" {
		t.Fatalf("led republished as %q", got)
	}
	if n.LED() != "1" {
		t.Fatalf("LED() = %q", n.LED())
	}
}

func TestNodeDiscoverAndGatewayCheck(t *testing.T) {
	gw, nc := startGateway(t)
	all := bustest.Subscribe(t, nc, "node.>")
	n, err := snsim.New(snsim.Config{
		Gateway: gw, NodeID: "sim-2", Logger: bustest.Logger(t),
		SensorInterval: time.Hour, CheckInterval: time.Hour, Commands: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, n.Run)
	bustest.Next(t, all, bus.NodeValue("sim-2", "humidity"), 3*time.Second) // boot done

	tests := []struct {
		name    string
		subject string
		data    string
		want    string
	}{
		{"gateway check", bus.SubjectGatewayCheck, "", bus.SubjectNodeCheck},
		{"discover resources", bus.GatewayDiscover("sim-2"), "resources", bus.NodeResources("sim-2")},
		{"discover values", bus.GatewayDiscover("sim-2"), "values", bus.NodeValue("sim-2", "humidity")}, // the last value
		{"led bad value ignored, then 1", bus.GatewaySet("sim-2", "led"), "7", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := nc.Publish(tt.subject, []byte(tt.data)); err != nil {
				t.Fatal(err)
			}
			if tt.want != "" {
				bustest.Next(t, all, tt.want, 3*time.Second)
				return
			}
			if err := nc.Publish(tt.subject, []byte("1")); err != nil {
				t.Fatal(err)
			}
			m := bustest.Next(t, all, bus.NodeValue("sim-2", "led"), 3*time.Second)
			if got := value(t, m.Data); got != "1" {
				t.Fatalf("led %q (the bad value was not ignored)", got)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	log := bustest.Logger(t)
	tests := []struct {
		name string
		cfg  snsim.Config
	}{
		{"no logger", snsim.Config{Gateway: "127.0.0.1:1885", NodeID: "a"}},
		{"bad node id", snsim.Config{Gateway: "127.0.0.1:1885", NodeID: "a.b", Logger: log}},
		{"bad gateway", snsim.Config{Gateway: "nope", NodeID: "a", Logger: log}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := snsim.New(tt.cfg); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

// TestManyNodes runs a few dozen nodes from one process against one
// gateway and waits until every one has announced itself. The nodes come
// from four loopback addresses, ten each: the gateway takes at most
// bus.DefaultNewNodesPerSource new client ids a second from one address.
func TestManyNodes(t *testing.T) {
	gw, nc := startGateway(t)
	checks := bustest.Subscribe(t, nc, bus.SubjectNodeCheck)
	const count = 40
	for i := range count {
		n, err := snsim.New(snsim.Config{Gateway: gw, NodeID: "m" + string(rune('a'+i%26)) + string(rune('a'+i/26)),
			Local: fmt.Sprintf("127.0.3.%d:0", 1+i/bus.DefaultNewNodesPerSource), Logger: bustest.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		run(t, n.Run)
	}
	seen := map[string]bool{}
	deadline := time.After(10 * time.Second)
	for len(seen) < count {
		select {
		case m := <-checks:
			var c bus.Check
			if err := json.Unmarshal(m.Data, &c); err != nil {
				t.Fatal(err)
			}
			seen[c.ID] = true
		case <-deadline:
			t.Fatalf("%d of %d nodes announced", len(seen), count)
		}
	}
}
