package queue_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/queue"
)

// wait bounds every wait: generous, for a loaded 2-core machine.
const wait = 20 * time.Second

// startQueue runs a queue on nc until the test ends (or the returned
// function is called) and waits until it is ready.
func startQueue(t *testing.T, nc *nats.Conn, change func(*queue.Config)) (*queue.Queue, context.CancelFunc) {
	t.Helper()
	cfg := queue.Config{Conn: nc, Logger: bustest.Logger(t).With("component", "queue")}
	if change != nil {
		change(&cfg)
	}
	q, err := queue.New(cfg)
	if err != nil {
		t.Fatalf("new queue: %v", err)
	}
	stop := bustest.Run(t, q.Run)
	select {
	case <-q.Ready():
	case <-time.After(wait):
		t.Fatal("queue not ready")
	}
	return q, stop
}

// queueCommand sends a command with Aiot-Queue-For: d and returns the reply.
func queueCommand(t *testing.T, nc *nats.Conn, node, res, payload, d string) (bus.Reply, error) {
	t.Helper()
	m := nats.NewMsg(bus.GatewaySet(node, res))
	m.Data = []byte(payload)
	m.Header.Set(bus.HeaderQueueFor, d)
	resp, err := nc.RequestMsg(m, wait)
	if err != nil {
		return bus.Reply{}, err
	}
	r, err := bus.ParseReply(resp.Data)
	if err != nil {
		t.Fatalf("reply %q: %v", resp.Data, err)
	}
	return r, nil
}

// mustQueue queues a command and fails unless it was queued.
func mustQueue(t *testing.T, nc *nats.Conn, node, res, payload, d string) bus.Reply {
	t.Helper()
	r, err := queueCommand(t, nc, node, res, payload, d)
	if err != nil {
		t.Fatalf("queue %s.%s: %v", node, res, err)
	}
	if !r.OK || r.Code != bus.CodeQueued || r.Command == "" || r.Until.IsZero() {
		t.Fatalf("queue %s.%s: reply %+v, want queued", node, res, r)
	}
	return r
}

// publishState publishes node's $state as a gateway would.
func publishState(t *testing.T, nc *nats.Conn, node, state string) {
	t.Helper()
	b, _ := json.Marshal(bus.State{State: state, Protocol: bus.ProtocolCoAP, Gateway: "test", Time: time.Now().UTC()})
	if err := nc.Publish(bus.NodeState(node), b); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// offline makes node known and offline to q: its $state, then a wait
// until q answers for it (a probe it refuses: a bad duration).
func offline(t *testing.T, nc *nats.Conn, node string) {
	t.Helper()
	publishState(t, nc, node, bus.StateOffline)
	followed(t, nc, node)
}

// followed waits until the queue answers for node (known offline to it):
// a probe it refuses (a bad duration).
func followed(t *testing.T, nc *nats.Conn, node string) {
	t.Helper()
	bustest.Eventually(t, wait, "the queue to answer for "+node, func() error {
		r, err := queueCommand(t, nc, node, "probe", "", "bad")
		return bustest.Want(err == nil && r.Code == bus.CodeBadRequest)
	})
}

// nextResult waits for the next result of node's res on ch.
func nextResult(t *testing.T, ch <-chan *nats.Msg, node, res string) bus.CommandResult {
	t.Helper()
	m := bustest.Next(t, ch, bus.CommandResultSubject(node, res), wait)
	r, err := bus.ParseCommandResult(m.Data)
	if err != nil {
		t.Fatalf("result: %v", err)
	}
	return r
}

// gateway answers node's commands as an owning gateway would, reporting
// each payload on the returned channel.
func gateway(t *testing.T, nc *nats.Conn, node string, reply bus.Reply) <-chan string {
	t.Helper()
	got := make(chan string, 64)
	b, _ := json.Marshal(reply)
	sub, err := nc.Subscribe(bus.GatewaySetAll(node), func(m *nats.Msg) {
		got <- string(m.Data)
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return got
}
