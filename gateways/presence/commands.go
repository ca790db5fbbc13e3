package presence

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
)

// Command pool bounds: commands run on at most DefaultCommandWorkers
// goroutines at once, one node's commands one after the other in the order
// they came; a node has at most DefaultCommandsPerNode waiting and the
// tracker at most DefaultCommandsQueued in all. Beyond either, a command is
// refused at once with ErrCommandsBusy, never queued without bound.
const (
	DefaultCommandWorkers  = 256
	DefaultCommandsPerNode = 16
	DefaultCommandsQueued  = 4096
)

// ErrCommandsBusy refuses a command when the node already has
// DefaultCommandsPerNode commands waiting, or the gateway
// DefaultCommandsQueued.
var ErrCommandsBusy = errors.New("busy: too many commands waiting")

// command is one request waiting for, or being carried out by, the pool.
type command struct {
	msg       *nats.Msg
	node, res string
	payload   []byte
}

// commandPool runs commands in order per node on a bounded number of
// goroutines: a node with commands has one runner goroutine, which takes a
// worker slot for each command.
type commandPool struct {
	workers chan struct{} // a slot per command being carried out

	mu                 sync.Mutex
	waiting            map[string][]command // node -> commands after the running one
	queued             int                  // commands accepted and not finished
	perNode, maxQueued int
}

func newCommandPool(workers, perNode, maxQueued int) *commandPool {
	return &commandPool{
		workers: make(chan struct{}, workers),
		waiting: make(map[string][]command),
		perNode: perNode, maxQueued: maxQueued,
	}
}

// submit accepts c, or refuses it with ErrCommandsBusy. An accepted command
// is carried out by run, after the node's earlier ones.
func (p *commandPool) submit(c command, run func(command)) error {
	p.mu.Lock()
	if p.queued >= p.maxQueued {
		p.mu.Unlock()
		return fmt.Errorf("node %s: %w (%d in all)", c.node, ErrCommandsBusy, p.maxQueued)
	}
	q, running := p.waiting[c.node]
	if running && len(q) >= p.perNode {
		p.mu.Unlock()
		return fmt.Errorf("node %s: %w (%d for this node)", c.node, ErrCommandsBusy, p.perNode)
	}
	p.queued++
	if running {
		p.waiting[c.node] = append(q, c)
		p.mu.Unlock()
		return nil
	}
	p.waiting[c.node] = nil // the node now has a runner
	p.mu.Unlock()
	go p.runNode(c, run)
	return nil
}

// runNode carries out c and then the node's waiting commands, in order.
func (p *commandPool) runNode(c command, run func(command)) {
	for {
		p.workers <- struct{}{}
		run(c)
		<-p.workers
		p.mu.Lock()
		p.queued--
		q := p.waiting[c.node]
		if len(q) == 0 {
			delete(p.waiting, c.node)
			p.mu.Unlock()
			return
		}
		c = q[0]
		q[0] = command{}
		p.waiting[c.node] = q[1:]
		p.mu.Unlock()
	}
}

// runCommand carries out one command with the gateway's CommandFunc,
// bounded by the command timeout, and replies.
func (t *Tracker) runCommand(c command) {
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.CommandTimeout)
	defer cancel()
	err := t.cfg.Commands(ctx, c.node, c.res, c.payload)
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		err = ErrCommandTimeout
	}
	t.reply(c.msg, c.node, c.res, err)
}
