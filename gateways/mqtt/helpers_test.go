package mqtt

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/mqtt/mqttsim"
)

const wait = 10 * time.Second

// startGateway runs a gateway on srv until the test ends; change adjusts
// its configuration.
func startGateway(t *testing.T, srv *bus.Server, change func(*Config)) *Gateway {
	t.Helper()
	cfg := Config{
		Conn:           bustest.Connect(t, srv),
		Logger:         bustest.Logger(t).With("component", "mqtt"),
		Gateway:        "mqtt@test",
		Site:           "lab",
		CheckInterval:  time.Hour,
		CommandTimeout: 8 * time.Second, // success paths; a loaded machine is slow (tests of timeouts set their own)
	}
	if change != nil {
		change(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatalf("new gateway: %v", err)
	}
	run(t, g.Run)
	waitServing(t, cfg.Conn)
	return g
}

// waitServing waits until the gateway's micro service answers: it is
// registered after the node.check subscription, so the gateway is listening.
func waitServing(t *testing.T, nc *nats.Conn) {
	t.Helper()
	bustest.Eventually(t, wait, "gateway serving", func() error {
		_, err := nc.Request("aiot."+ServiceMQTT+".nodes", nil, 100*time.Millisecond)
		return bustest.Want(err == nil)
	})
}

// first returns the next message of ch, failing after wait.
func first(t *testing.T, ch <-chan *nats.Msg) *nats.Msg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(wait):
		t.Fatalf("no message within %s", wait)
		return nil
	}
}

// run runs fn until the test ends and checks that it returned nil.
func run(t *testing.T, fn func(context.Context) error) {
	t.Helper()
	bustest.Run(t, fn)
}

// startSim runs a simulated node against broker until the test ends.
func startSim(t *testing.T, broker, id string) *mqttsim.Node {
	t.Helper()
	n, err := mqttsim.New(mqttsim.Config{Broker: broker, ID: id, Logger: bustest.Logger(t).With("component", "sim"),
		CheckInterval: time.Hour, SensorInterval: time.Hour})
	if err != nil {
		t.Fatalf("new sim: %v", err)
	}
	run(t, n.Run)
	return n
}

// nextState waits for node id's next $state and decodes it.
func nextState(t *testing.T, ch <-chan *nats.Msg, id string) bus.State {
	t.Helper()
	m := bustest.Next(t, ch, bus.NodeState(id), wait)
	s, err := bus.ParseState(m.Data)
	if err != nil {
		t.Fatalf("state of %s: %v", id, err)
	}
	return s
}

// request sends a command and decodes the reply.
func request(t *testing.T, nc *nats.Conn, id, res, payload string) bus.Reply {
	t.Helper()
	m, err := nc.Request(bus.GatewaySet(id, res), []byte(payload), wait)
	if err != nil {
		t.Fatalf("request %s: %v", bus.GatewaySet(id, res), err)
	}
	r, err := bus.ParseReply(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// contextUntilCleanup is a context cancelled by its cancel func or when the
// test ends.
func contextUntilCleanup(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx, cancel
}

func itoa(i int) string { return strconv.Itoa(i) }
