// Package queuetest runs the command queue in other packages' tests: it
// answers the commands of nodes no gateway owns, as in every aiot process
// that runs gateways.
package queuetest

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/queue"
)

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
	case <-time.After(20 * time.Second):
		t.Fatal("queue not ready")
	}
	return q
}
