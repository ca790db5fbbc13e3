package mqttsim

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

const wait = 10 * time.Second

func TestNewValidates(t *testing.T) {
	log := bustest.Quiet()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no logger", Config{ID: "n1"}},
		{"no id", Config{Logger: log}},
		{"unsafe id", Config{ID: "a/b", Logger: log}},
		{"reserved id", Config{ID: "check", Logger: log}},
		{"negative interval", Config{ID: "n1", Logger: log, SensorInterval: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
}

// The simulated node speaks Pyaiot's topic tree through the embedded NATS
// MQTT listener.
func TestNodeBehaviour(t *testing.T) {
	srv := bustest.StartServer(t, bustest.WithMQTT())
	nc := bustest.Connect(t, srv)
	msgs := bustest.Subscribe(t, nc, "node.>")
	n, err := New(Config{Broker: "tcp://" + srv.MQTTAddr(), ID: "s1", Logger: bustest.Logger(t),
		CheckInterval: time.Hour, SensorInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	t.Run("announces itself at connect", func(t *testing.T) {
		c, err := bus.ParseCheck(bustest.Next(t, msgs, bus.SubjectNodeCheck, wait).Data)
		if err != nil || c.ID != "s1" {
			t.Fatalf("check = %+v, %v", c, err)
		}
		names, err := bus.ParseResources(bustest.Next(t, msgs, bus.NodeResources("s1"), wait).Data)
		if err != nil || !slices.Equal(names, Resources()) {
			t.Fatalf("resources = %v, %v", names, err)
		}
		wantValue(t, msgs, "os", "riot")
	})
	t.Run("publishes sensors", func(t *testing.T) {
		v, err := bus.ParseValue(bustest.Next(t, msgs, bus.NodeValue("s1", "temperature"), wait).Data)
		if err != nil || len(v.Text()) < 4 || v.Text()[len(v.Text())-3:] != "°C" {
			t.Fatalf("temperature = %q, %v", v.Text(), err)
		}
	})
	t.Run("answers discover values", func(t *testing.T) {
		publish(t, nc, bus.GatewayDiscover("s1"), bus.DiscoverValues)
		wantValue(t, msgs, "led", "0")
	})
	t.Run("answers gateway check", func(t *testing.T) {
		publish(t, nc, bus.SubjectGatewayCheck, "")
		bustest.Next(t, msgs, bus.SubjectNodeCheck, wait)
	})
	t.Run("obeys led set", func(t *testing.T) {
		publish(t, nc, bus.GatewaySet("s1", "led"), "1")
		wantValue(t, msgs, "led", "1")
		if n.LED() != "1" {
			t.Fatalf("LED() = %s", n.LED())
		}
	})
	t.Run("ignores a bad led payload", func(t *testing.T) {
		publish(t, nc, bus.GatewaySet("s1", "led"), "on")
		publish(t, nc, bus.GatewaySet("s1", "led"), "0")
		wantValue(t, msgs, "led", "0") // the next led value is the good command's
		if got := n.Stats().Commands; got != 3 {
			t.Fatalf("commands = %d, want 3", got)
		}
	})
}

func publish(t *testing.T, nc *nats.Conn, subject, data string) {
	t.Helper()
	if err := nc.Publish(subject, []byte(data)); err != nil {
		t.Fatal(err)
	}
}

func wantValue(t *testing.T, msgs <-chan *nats.Msg, res, want string) {
	t.Helper()
	m := bustest.Next(t, msgs, bus.NodeValue("s1", res), wait)
	var v struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(m.Data, &v); err != nil || v.Value != want {
		t.Fatalf("%s = %s (%v), want %q", res, m.Data, err, want)
	}
}
