package mqtt

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/mqtt/bridge"
	"github.com/goaiot/goaiot/gateways/mqtt/internal/mqtttest"
)

// benchTopic and benchPayload are one sensor value as an MQTT node sends it.
const (
	benchTopic   = "node/bench/temperature"
	benchSubject = "node.bench.temperature"
	benchPayload = `{"value":"21.5°C"}`
)

// BenchmarkIngest measures sensor values per second from a paho publisher to
// a consumer: into NATS through the embedded MQTT listener and through the
// bridge from mosquitto, and, as the baseline, mosquitto alone (paho →
// mosquitto → paho). Each message is one value of 19 bytes.
func BenchmarkIngest(b *testing.B) {
	b.Run("listener-qos0", func(b *testing.B) { benchListener(b, 0) })
	b.Run("listener-qos1", func(b *testing.B) { benchListener(b, 1) })
	b.Run("bridge-qos1", benchBridge)
	b.Run("mosquitto-qos0", func(b *testing.B) { benchMosquitto(b, 0) })
	b.Run("mosquitto-qos1", func(b *testing.B) { benchMosquitto(b, 1) })
}

// benchListener: paho → nats-server MQTT listener → NATS subscriber, with the
// gateway owning the node and the NODES stream storing every value.
func benchListener(b *testing.B, qos byte) {
	srv := bustest.StartServer(b, bustest.WithMQTT())
	nc := bustest.Connect(b, srv)
	startBenchGateway(b, srv, nil)
	pub := pahoClient(b, "tcp://"+srv.MQTTAddr(), "mqtt-bench") // speaks for node bench
	announce(b, nc, pub)
	runIngest(b, pub, qos, natsCounter(b, nc))
}

// benchBridge: paho → mosquitto → bridge → NATS subscriber.
func benchBridge(b *testing.B) {
	broker := mqtttest.StartBroker(b, mqtttest.BrokerOptions{})
	srv := bustest.StartServer(b)
	nc := bustest.Connect(b, srv)
	br, err := bridge.New(bridge.Config{Conn: bustest.Connect(b, srv), Logger: bustest.Quiet(), Broker: broker.URL,
		Name: "bench", NodeRate: 1e9, NodeBurst: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	startBenchGateway(b, srv, br)
	pub := pahoClient(b, broker.URL, "bench-pub")
	announce(b, nc, pub)
	runIngest(b, pub, 1, natsCounter(b, nc))
}

// benchMosquitto: paho → mosquitto → paho, the broker on its own.
func benchMosquitto(b *testing.B, qos byte) {
	broker := mqtttest.StartBroker(b, mqtttest.BrokerOptions{})
	sub := pahoClient(b, broker.URL, "bench-sub")
	c := &counter{done: make(chan struct{})}
	if t := sub.Subscribe(benchTopic, qos, func(_ paho.Client, _ paho.Message) { c.add() }); t.Wait() && t.Error() != nil {
		b.Fatal(t.Error())
	}
	runIngest(b, pahoClient(b, broker.URL, "bench-pub"), qos, c)
}

func startBenchGateway(b *testing.B, srv *bus.Server, br *bridge.Bridge) {
	b.Helper()
	g, err := New(Config{Conn: bustest.Connect(b, srv), Logger: bustest.Quiet(), Gateway: "bench", Bridge: br,
		CheckInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = g.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
}

// announce makes the bench node known to the gateway before measuring.
func announce(b *testing.B, nc *nats.Conn, pub paho.Client) {
	b.Helper()
	states := bustest.Subscribe(b, nc, bus.NodeState("bench"))
	deadline := time.Now().Add(wait)
	for len(states) == 0 {
		pub.Publish("node/check", 1, false, `{"id":"bench"}`).Wait()
		// a listener claim is proven by a message on the node's own subjects
		pub.Publish("node/bench/resources", 1, false, `["temperature"]`).Wait()
		if time.Now().After(deadline) {
			b.Fatal("bench node not claimed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// counter counts received values and closes done at want.
type counter struct {
	n    atomic.Int64
	want atomic.Int64
	done chan struct{}
}

func (c *counter) add() {
	if c.n.Add(1) == c.want.Load() {
		close(c.done)
	}
}

func natsCounter(b *testing.B, nc *nats.Conn) *counter {
	b.Helper()
	c := &counter{done: make(chan struct{})}
	sub, err := nc.Subscribe(benchSubject, func(*nats.Msg) { c.add() })
	if err != nil {
		b.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	return c
}

// runIngest publishes b.N values and waits until the consumer got them all.
func runIngest(b *testing.B, pub paho.Client, qos byte, c *counter) {
	b.Helper()
	c.want.Store(int64(b.N))
	payload := []byte(benchPayload)
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	start := time.Now()
	var last paho.Token
	for range b.N {
		last = pub.Publish(benchTopic, qos, false, payload)
	}
	select {
	case <-c.done:
	case <-time.After(2 * time.Minute):
		b.Fatalf("received %d of %d values", c.n.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	last.Wait()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "values/s")
}

func pahoClient(b *testing.B, broker, id string) paho.Client {
	b.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(true).
		SetOrderMatters(false).SetWriteTimeout(time.Minute))
	if t := c.Connect(); t.WaitTimeout(wait) && t.Error() != nil {
		b.Fatal(t.Error())
	}
	if !c.IsConnected() {
		b.Fatal("paho: not connected to " + broker)
	}
	b.Cleanup(func() { c.Disconnect(100) })
	return c
}
