package mqtt

import (
	"context"
	"hash/maphash"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
)

// Lanes carry the messages of every owned (or claimed) node: each node's
// node.<id>.> is a channel subscription into the lane its id hashes to, and
// one worker per lane handles them in order. A node's messages therefore
// keep their order, and the gateway holds nodeLanes goroutines whatever
// the number of nodes (nats.go gives each callback subscription its own).
const (
	nodeLanes = 16
	// laneDepth is the slow-consumer bound of one lane: past it nats.go
	// drops the message and reports a slow consumer on the node's
	// subscription.
	laneDepth = 4096
)

// lanes are the channels node subscriptions deliver into.
type lanes struct {
	seed maphash.Seed
	ch   [nodeLanes]chan *nats.Msg
}

func newLanes() *lanes {
	l := &lanes{seed: maphash.MakeSeed()}
	for i := range l.ch {
		l.ch[i] = make(chan *nats.Msg, laneDepth)
	}
	return l
}

// of is the lane of node id.
func (l *lanes) of(id string) chan *nats.Msg {
	return l.ch[maphash.String(l.seed, id)%nodeLanes]
}

// subscribeNode subscribes to node.<id>.> into id's lane.
func (g *Gateway) subscribeNode(id string) (*nats.Subscription, error) {
	return g.cfg.Conn.ChanSubscribe(bus.NodeAll(id), g.lanes.of(id))
}

// runLanes handles every lane's messages until ctx ends.
func (g *Gateway) runLanes(ctx context.Context) error {
	done := make(chan struct{}, nodeLanes)
	for _, ch := range g.lanes.ch {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-ch:
					g.handleNodeMsg(m)
				}
			}
		}()
	}
	for range nodeLanes {
		<-done
	}
	return nil
}
