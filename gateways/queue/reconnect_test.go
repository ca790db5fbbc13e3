package queue_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
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

	// Replies to one command, then to a barrier the queue answers at once
	// (an id never seen): an answer of the queue to the command would have
	// come first.
	inbox := nats.NewInbox()
	replies := bustest.Subscribe(t, nc, inbox+".>")
	if err := nc.PublishRequest(bus.GatewaySet("n1", "led"), inbox+".cmd", []byte("1")); err != nil {
		t.Fatal(err)
	}
	var got []string
	for done := false; !done; {
		var m *nats.Msg
		select {
		case m = <-replies:
		case <-time.After(wait):
			t.Fatalf("replies %q, and no answer to the barrier", got)
		}
		switch {
		case strings.HasSuffix(m.Subject, ".cmd"):
			got = append(got, string(m.Data))
			if len(got) == 1 {
				if err := nc.PublishRequest(bus.GatewaySet("never-seen", "led"), inbox+".barrier", nil); err != nil {
					t.Fatal(err)
				}
			}
		default:
			done = true
		}
	}
	if len(got) != 1 || !strings.Contains(got[0], `"ok":true`) {
		t.Fatalf("replies %q, want the gateway's ok alone", got)
	}
}
