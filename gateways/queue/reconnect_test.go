package queue_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/queue/queuetest"
	"github.com/goaiot/goaiot/sites/linktest"
)

// The $state sent while the queue's connection was away never reach it
// live: once back, it reads the last ones from the stream before it
// answers anything, so it does not answer offline for a node a gateway
// owns meanwhile, and the owner's answer is the only one.
func TestReloadsStatesAfterReconnect(t *testing.T) {
	s := bustest.StartServer(t)
	nc := bustest.Connect(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := bus.EnsureNodesStream(ctx, bustest.JetStream(t, nc), bus.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	link := linktest.New(t, strings.TrimPrefix(s.ClientURL(), "nats://"))
	qc, err := nats.Connect("nats://"+link.Addr(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(qc.Close)
	startQueue(t, qc, nil)
	offline(t, nc, "n1")

	link.Cut()
	bustest.Eventually(t, wait, "the queue's connection lost", func() error { return bustest.Want(!qc.IsConnected()) })
	publishState(t, nc, "n1", bus.StateOnline)
	stream, err := bustest.JetStream(t, nc).Stream(ctx, bus.NodesStream)
	if err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, wait, "the online $state stored", func() error {
		m, err := stream.GetLastMsgForSubject(ctx, bus.NodeState("n1"))
		if err != nil {
			return err
		}
		st, err := bus.ParseState(m.Data)
		return bustest.Want(err == nil && st.State == bus.StateOnline, "state", st.State, err)
	})
	gateway(t, nc, "n1", bus.Reply{OK: true})
	link.Restore()
	bustest.Eventually(t, wait, "the queue's connection back", func() error { return bustest.Want(qc.IsConnected()) })

	// The queue's answer to the command, had it given one, would come
	// before its answer to the barrier (an id never seen).
	got := queuetest.Replies(t, nc, bus.GatewaySet("n1", "led"), nil, "1", 1, []string{bus.GatewaySet("never-seen", "led")})
	if len(got) != 1 || !got[0].OK {
		t.Fatalf("replies %+v, want the gateway's ok alone", got)
	}
}
