package dashboard

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/queue"
)

// TestQueuedCommand: a goaiot page queues a command for an offline node
// (data.queue_for), gets "result" with code queued, and every goaiot page
// gets its "outcome" once the node is back; Pyaiot's page gets none.
func TestQueuedCommand(t *testing.T) {
	srv := bustest.StartServer(t)
	td := startDashboard(t, srv)
	nc := bustest.Connect(t, srv)
	startTestQueue(t, nc)
	p := publisher{t: t, nc: nc}
	p.state("n1", bus.StateOffline)
	bustest.Eventually(t, wait, "the queue to follow n1", func() error {
		m := nats.NewMsg(bus.GatewaySet("n1", "probe"))
		m.Header.Set(bus.HeaderQueueFor, "bad")
		r, err := nc.RequestMsg(m, wait)
		return bustest.Want(err == nil && strings.Contains(string(r.Data), bus.CodeBadRequest))
	})
	sender, other, pyaiot := dial(t, td, nil), dial(t, td, nil), dialPyaiot(t, td)
	sender.subscribe()
	other.subscribe()
	pyaiot.send(`{"type":"new","data":"client"}`) // no "synced" in Pyaiot's protocol

	sender.send(`{"type":"update","data":{"uid":"n1","endpoint":"led","payload":"1","queue_for":600},"id":"q1"}`)
	res := sender.nextOf(typeResult)
	if !res.OK || res.ID != "q1" || res.Code != bus.CodeQueued || res.Command == "" || res.Until <= time.Now().UnixMilli() {
		t.Fatalf("result %+v, want queued with a command id and a deadline", res)
	}

	got := make(chan string, 4)
	sub, err := nc.Subscribe(bus.GatewaySetAll("n1"), func(m *nats.Msg) {
		got <- string(m.Data)
		_ = m.Respond([]byte(`{"ok":true}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	_ = nc.Flush()
	p.state("n1", bus.StateOnline)
	if g := <-got; g != "1" {
		t.Fatalf("gateway got %q", g)
	}
	for name, b := range map[string]*browser{"sender": sender, "other": other} {
		t.Run(name+" gets the outcome", func(t *testing.T) {
			b.t = t
			o := b.nextOf(typeOutcome)
			if o.Command != res.Command || o.UID != "n1" || o.Endpoint != "led" || !o.OK || o.Code != bus.CodeDelivered {
				t.Fatalf("outcome %+v, want %s delivered", o, res.Command)
			}
		})
	}
	t.Run("pyaiot page gets none", func(t *testing.T) {
		pyaiot.t = t
		p.value("n1", "led", "1")
		for {
			m := pyaiot.next()
			if m.Type == typeOutcome {
				t.Fatalf("Pyaiot's page got %+v", m)
			}
			if m.Type == typeUpdate && m.Endpoint == "led" {
				return // the value published after the outcome: none came before it
			}
		}
	})
}

func TestQueueForRefused(t *testing.T) {
	td := startDashboard(t, bustest.StartServer(t))
	tests := []struct{ name, queueFor string }{
		{"zero", "0"},
		{"negative", "-5"},
		{"more than a year", "100000000"},
		{"a string", `"10m"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := dial(t, td, nil)
			b.send(`{"type":"update","data":{"uid":"n1","endpoint":"led","payload":"1","queue_for":` + tt.queueFor + `}}`)
			ce := b.closed()
			if ce.Code != websocket.CloseUnsupportedData || !strings.Contains(ce.Text, "queue_for") {
				t.Fatalf("close %d %q, want 1003 naming queue_for", ce.Code, ce.Text)
			}
		})
	}
}

func startTestQueue(t *testing.T, nc *nats.Conn) {
	t.Helper()
	q, err := queue.New(queue.Config{Conn: nc, Logger: bustest.Logger(t).With("component", "queue")})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, q.Run)
	select {
	case <-q.Ready():
	case <-time.After(wait):
		t.Fatal("queue not ready")
	}
}
