package coap_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/coap"
	"github.com/goaiot/goaiot/gateways/coap/coapsim"
)

const wait = 10 * time.Second

// startGateway runs a gateway on a random port of 127.0.0.1 until the test
// ends; change adjusts its configuration.
func startGateway(t *testing.T, nc *nats.Conn, change func(*coap.Config)) *coap.Gateway {
	t.Helper()
	cfg := coap.Config{
		Conn: nc, Logger: bustest.Logger(t).With("component", "coap"),
		Listen: "127.0.0.1:0", Gateway: "coap@test", Site: "lab",
		NodeTimeout: 5 * time.Second, RequestTimeout: 2 * time.Second, CommandTimeout: 2 * time.Second,
	}
	if change != nil {
		change(&cfg)
	}
	g, err := coap.New(cfg)
	if err != nil {
		t.Fatalf("new gateway: %v", err)
	}
	run(t, g.Run)
	select {
	case <-g.Ready():
	case <-time.After(wait):
		t.Fatal("gateway not ready")
	}
	return g
}

// run runs fn until the test ends and checks it returned cleanly.
func run(t *testing.T, fn func(context.Context) error) context.CancelFunc {
	t.Helper()
	return bustest.Run(t, fn)
}

// startSim runs a simulated node; it returns the node and a function that
// stops it early.
func startSim(t *testing.T, cfg coapsim.Config) (*coapsim.Node, context.CancelFunc) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = bustest.Logger(t)
	}
	n, err := coapsim.New(cfg)
	if err != nil {
		t.Fatalf("new sim: %v", err)
	}
	stop := run(t, n.Run)
	select {
	case <-n.Ready():
	case <-time.After(wait):
		t.Fatal("sim not ready")
	}
	return n, stop
}

// nextState waits for the next $state of node on ch.
func nextState(t *testing.T, ch <-chan *nats.Msg, node string) bus.State {
	t.Helper()
	m := bustest.Next(t, ch, bus.NodeState(node), wait)
	s, err := bus.ParseState(m.Data)
	if err != nil {
		t.Fatalf("state: %v", err)
	}
	return s
}

// nextValue waits for the next value of node's res on ch.
func nextValue(t *testing.T, ch <-chan *nats.Msg, node, res string) string {
	t.Helper()
	m := bustest.Next(t, ch, bus.NodeValue(node, res), wait)
	v, err := bus.ParseValue(m.Data)
	if err != nil {
		t.Fatalf("value: %v", err)
	}
	return v.Text()
}

// command sends a NATS request to gateway.<node>.<res>.set.
func command(t *testing.T, nc *nats.Conn, node, res, payload string) bus.Reply {
	t.Helper()
	m, err := nc.Request(bus.GatewaySet(node, res), []byte(payload), wait)
	if err != nil {
		t.Fatalf("request %s: %v", bus.GatewaySet(node, res), err)
	}
	return parseReply(t, m)
}

func parseReply(t *testing.T, m *nats.Msg) bus.Reply {
	t.Helper()
	r, err := bus.ParseReply(m.Data)
	if err != nil {
		t.Fatalf("reply %q: %v", m.Data, err)
	}
	return r
}

func mustJSON(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("json %q: %v", data, err)
	}
}

// values collects the next value of each of node's resources names.
func values(t *testing.T, ch <-chan *nats.Msg, node string, names ...string) map[string]string {
	t.Helper()
	got := map[string]string{}
	deadline := time.After(wait)
	for len(got) < len(names) {
		select {
		case m := <-ch:
			s, err := bus.ParseSubject(m.Subject)
			if err != nil || s.Kind != bus.KindNodeValue || s.Node != node {
				continue
			}
			if _, seen := got[s.Resource]; seen || !slices.Contains(names, s.Resource) {
				continue
			}
			v, err := bus.ParseValue(m.Data)
			if err != nil {
				t.Fatalf("value on %s: %v", m.Subject, err)
			}
			got[s.Resource] = v.Text()
		case <-deadline:
			t.Fatalf("got values %v, want values of %v", got, names)
		}
	}
	return got
}

// states collects the first $state of each of uids.
func states(t *testing.T, ch <-chan *nats.Msg, uids ...string) map[string]bus.State {
	t.Helper()
	got := map[string]bus.State{}
	deadline := time.After(wait)
	for len(got) < len(uids) {
		select {
		case m := <-ch:
			s, err := bus.ParseSubject(m.Subject)
			if err != nil || s.Kind != bus.KindNodeState || !slices.Contains(uids, s.Node) {
				continue
			}
			if _, seen := got[s.Node]; seen {
				continue
			}
			st, err := bus.ParseState(m.Data)
			if err != nil {
				t.Fatalf("state on %s: %v", m.Subject, err)
			}
			got[s.Node] = st
		case <-deadline:
			t.Fatalf("got states %v, want states of %v", got, uids)
		}
	}
	return got
}
