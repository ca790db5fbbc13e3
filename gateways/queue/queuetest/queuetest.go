// Package queuetest helps tests of who answers commands: it runs the
// command queue in other packages' tests (it answers the commands of nodes
// no gateway owns, as in every aiot process that runs gateways) and counts
// the answers to one command.
package queuetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/queue"
)

// wait bounds every wait of these helpers (a loaded 2-core machine).
const wait = 20 * time.Second

// Start runs a queue with the default configuration on nc until the test
// ends, and returns once it answers requests (or fails the test after
// 20 s).
func Start(t testing.TB, nc *nats.Conn) *queue.Queue {
	t.Helper()
	q, err := queue.New(queue.Config{Conn: nc, Logger: bustest.Logger(t).With("component", "queue")})
	if err != nil {
		t.Fatalf("new queue: %v", err)
	}
	bustest.Run(t, q.Run)
	select {
	case <-q.Ready():
	case <-time.After(wait):
		t.Fatal("queue not ready")
	}
	return q
}

// Replies sends one command request on subject with a raw reply inbox and
// returns every reply it got. Barriers make "every" exact without waiting
// for a silence: once the first want replies came, it sends one request
// per responder that it answers at once in its loop (a reserved resource
// of a node a tracker owns, gateway.<id>.resources.set; an id nobody
// knows for the queue).
// Each responder handles requests in order and replies on its own
// connection, so a second answer to the command, had one been sent, comes
// before that responder's barrier answer.
func Replies(t testing.TB, nc *nats.Conn, subject string, hdr nats.Header, payload string, want int, barriers []string) []bus.Reply {
	t.Helper()
	inbox := nats.NewInbox()
	ch := bustest.Subscribe(t, nc, inbox+".>")
	m := &nats.Msg{Subject: subject, Reply: inbox + ".cmd", Header: hdr, Data: []byte(payload)}
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	var got []bus.Reply
	pending := len(barriers)
	sent := false
	deadline := time.After(wait)
	for len(got) < want || pending > 0 {
		if len(got) >= want && !sent {
			sent = true
			for i, b := range barriers {
				if err := nc.PublishRequest(b, fmt.Sprintf("%s.barrier%d", inbox, i), nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		select {
		case r := <-ch:
			if strings.HasSuffix(r.Subject, ".cmd") {
				rep, err := bus.ParseReply(r.Data)
				if err != nil {
					t.Fatalf("reply %q: %v", r.Data, err)
				}
				got = append(got, rep)
			} else {
				pending--
			}
		case <-deadline:
			t.Fatalf("%s: %d replies (%+v) and %d barriers missing after %s", subject, len(got), got, pending, wait)
		}
	}
	return got
}
