package presence_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/presence"
	"github.com/goaiot/goaiot/gateways/queue/queuetest"
)

// replyWait bounds every wait of these tests (a loaded 2-core machine).
const replyWait = 20 * time.Second

// commandTracker runs a tracker that takes commands on its own connection
// to srv: payload "1" is confirmed, any other is refused with an error
// naming the gateway, so that a reply tells who answered.
func commandTracker(t *testing.T, srv *bus.Server, protocol, gateway string) *presence.Tracker {
	t.Helper()
	tr, err := presence.New(presence.Config{Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t).With("gateway", gateway),
		Protocol: protocol, Gateway: gateway, Timeout: time.Minute,
		Commands: func(_ context.Context, node, _ string, payload []byte) error {
			if string(payload) == "1" {
				return nil
			}
			return fmt.Errorf("%s says no to %s", gateway, node)
		}})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, tr.Run)
	return tr
}

// TestOneAnswerPerCommand: every command on the bus reaches every gateway
// (one wildcard subscription each), and exactly one responder answers it:
// the gateway that owns the node, or the queue for a node nobody owns.
func TestOneAnswerPerCommand(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	states := bustest.Subscribe(t, nc, bus.NodeState("*"))
	queuetest.Start(t, bustest.Connect(t, srv))
	coapA := commandTracker(t, srv, bus.ProtocolCoAP, "coap@a")
	coapB := commandTracker(t, srv, bus.ProtocolCoAP, "coap@b") // a replica: same protocol, other nodes
	ws := commandTracker(t, srv, bus.ProtocolWebSocket, "ws@a")
	for _, o := range []struct {
		tr   *presence.Tracker
		node string
	}{{coapA, "a1"}, {coapB, "b1"}, {ws, "w1"}, {coapA, "gone"}} {
		if _, err := o.tr.Seen(o.node, "addr"); err != nil {
			t.Fatal(err)
		}
		bustest.Next(t, states, bus.NodeState(o.node), replyWait)
	}
	coapA.Forget("gone")
	bustest.Next(t, states, bus.NodeState("gone"), replyWait)
	barriers := []string{bus.GatewaySet("a1", "resources"), bus.GatewaySet("b1", "resources"),
		bus.GatewaySet("w1", "resources"), bus.GatewaySet("nobody", "led")}
	queueFor := nats.Header{bus.HeaderQueueFor: []string{"1m"}}

	tests := []struct {
		name, node, payload string
		hdr                 nats.Header
		want                bus.Reply // Error: a part of it
	}{
		{"an owned node: its gateway", "a1", "1", nil, bus.Reply{OK: true, Code: bus.CodeOK}},
		{"an id never seen: the queue, no_gateway", "ghost", "1", nil, bus.Reply{Code: bus.CodeNoGateway, Error: "no gateway serves it"}},
		{"an offline node: the queue, offline", "gone", "1", nil, bus.Reply{Code: bus.CodeOffline, Error: "offline"}},
		{"an offline node, queued: the queue", "gone", "1", queueFor, bus.Reply{OK: true, Code: bus.CodeQueued}},
		{"a node of another protocol: its owner only", "w1", "who", nil, bus.Reply{Code: bus.CodeRefused, Error: "ws@a says no"}},
		{"replicas of one protocol: the owner only", "b1", "who", nil, bus.Reply{Code: bus.CodeRefused, Error: "coap@b says no"}},
		{"a bad resource of an owned node: its gateway", "a1", "1", nil, bus.Reply{Code: bus.CodeBadRequest}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subject := bus.GatewaySet(tt.node, "led")
			if tt.want.Code == bus.CodeBadRequest {
				subject = bus.GatewaySet(tt.node, "$bad")
			}
			got := queuetest.Replies(t, nc, subject, tt.hdr, tt.payload, 1, barriers)
			if len(got) != 1 {
				t.Fatalf("%d replies %+v, want one", len(got), got)
			}
			r := got[0]
			if r.OK != tt.want.OK || r.Code != tt.want.Code || !strings.Contains(r.Error, tt.want.Error) {
				t.Fatalf("reply %+v, want %+v", r, tt.want)
			}
		})
	}

	// Whoever sees a node's online $state can command it at once: the
	// queue sees the $state before the request and stays silent.
	t.Run("commandable as soon as its online state is seen", func(t *testing.T) {
		for i := range 20 {
			node := fmt.Sprintf("new%d", i)
			if _, err := ws.Seen(node, "addr"); err != nil {
				t.Fatal(err)
			}
			bustest.Next(t, states, bus.NodeState(node), replyWait)
			got := queuetest.Replies(t, nc, bus.GatewaySet(node, "led"), nil, "1", 1, barriers)
			if len(got) != 1 || !got[0].OK {
				t.Fatalf("%s: replies %+v, want one ok", node, got)
			}
		}
	})
}
