package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
)

// HeaderQueued marks a replayed command with the id of the queued command
// it carries out (for logs and ops; gateways ignore it).
const HeaderQueued = "Aiot-Queued"

// replayOnline replays the waiting commands of every node owned now.
func (q *Queue) replayOnline(ctx context.Context) {
	for node := range q.waiting {
		if q.states[node].owned {
			q.replayNode(ctx, node)
		}
	}
}

// replayNode starts the replay of every waiting command of node that is
// not being replayed already.
func (q *Queue) replayNode(ctx context.Context, node string) {
	for _, e := range q.waiting[node] {
		k := e.key()
		if q.inflight[k] {
			continue
		}
		q.inflight[k] = true
		c := *e
		q.replays.Go(func() {
			defer func() {
				select {
				case q.done <- replayed{key: k, node: c.Node, command: c.Command}:
				case <-ctx.Done():
				}
			}()
			q.replay(ctx, &c)
		})
	}
}

// replayed is what a replay tells the loop when it ends.
type replayed struct{ key, node, command string }

// onReplayed ends a replay; a newer command that took its place meanwhile
// is replayed now if the node is still owned.
func (q *Queue) onReplayed(ctx context.Context, r replayed) {
	delete(q.inflight, r.key)
	node, res, err := parseKey(r.key)
	if err != nil {
		return
	}
	if e := q.lookup(node, res); e != nil && e.Command != r.command && q.states[r.node].owned {
		q.replayNode(ctx, r.node)
	}
}

// replay claims e in the bucket (so that one queue replays it), sends it
// as an ordinary command request and publishes the gateway's answer as its
// result. When no gateway owns the node after all (it left again: a queue
// answers offline or no_gateway, or, with no queue, nobody does) it waits
// on.
func (q *Queue) replay(ctx context.Context, e *entry) {
	e.Sending = true
	rev, err := q.kv.Update(ctx, e.key(), e.encode(), e.rev)
	if err != nil {
		q.log.Debug("queue: replay not claimed (replaced, or claimed by another queue)", "command", e.Command, "err", err)
		return
	}
	reply, err := q.send(ctx, e)
	switch {
	case ctx.Err() != nil:
		return // stopping: still marked sending, replayed after a restart
	case errors.Is(err, nats.ErrNoResponders), err == nil && notOwned(reply):
		q.requeue(ctx, e, rev)
		return
	}
	code, why := bus.CodeDelivered, ""
	if err != nil {
		code, why = bus.CodeFailed, err.Error()
	} else if !reply.OK {
		code, why = bus.CodeFailed, reply.Error
	}
	if err := q.kv.Delete(ctx, e.key(), jetstream.LastRevision(rev)); err != nil {
		q.log.Debug("queue: delivered command already replaced", "command", e.Command, "err", err)
	}
	q.publish(e, code, why)
}

// notOwned tells an answer that no gateway serves the node: a queue's
// offline or no_gateway (or a gateway's no_gateway, for a node it has
// just let go).
func notOwned(r bus.Reply) bool {
	return !r.OK && (r.Code == bus.CodeOffline || r.Code == bus.CodeNoGateway)
}

// send makes the command request and decodes the answer.
func (q *Queue) send(ctx context.Context, e *entry) (bus.Reply, error) {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.ReplayTimeout)
	defer cancel()
	m := nats.NewMsg(bus.GatewaySet(e.Node, e.Resource))
	m.Data = e.Payload
	m.Header.Set(HeaderQueued, e.Command)
	resp, err := q.nc.RequestMsgWithContext(ctx, m)
	switch {
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return bus.Reply{}, fmt.Errorf("timeout: no answer from the node's gateway within %s", q.cfg.ReplayTimeout)
	case err != nil:
		return bus.Reply{}, err
	}
	r, err := bus.ParseReply(resp.Data)
	if err != nil {
		return bus.Reply{}, fmt.Errorf("bad answer from the gateway: %w", err)
	}
	if !r.OK && r.Error == "" {
		r.Error = "refused"
	}
	return r, nil
}

// requeue puts e back to wait (nobody serves its node after all); if a
// newer command took its place meanwhile, e's result says replaced.
func (q *Queue) requeue(ctx context.Context, e *entry, rev uint64) {
	e.Sending = false
	if _, err := q.kv.Update(ctx, e.key(), e.encode(), rev); err != nil {
		if ctx.Err() == nil && isWrongRevision(err) {
			q.publish(e, bus.CodeReplaced, "replaced by a newer command")
		}
		return
	}
	q.log.Info("queue: node left before its command: waiting again", "node", e.Node, "command", e.Command)
}

func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return true
	}
	return errors.Is(err, jetstream.ErrKeyExists) || strings.Contains(err.Error(), "wrong last sequence")
}

// expire removes the commands whose deadline passed, with a result saying
// so.
func (q *Queue) expire(ctx context.Context) {
	now := q.cfg.Now()
	for _, m := range q.waiting {
		for _, e := range m {
			if q.inflight[e.key()] || now.Before(e.Until) {
				continue
			}
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := q.kv.Delete(dctx, e.key(), jetstream.LastRevision(e.rev))
			cancel()
			if err != nil {
				q.log.Debug("queue: expiry skipped (changed meanwhile)", "command", e.Command, "err", err)
				continue
			}
			q.unindex(e.Node, e.Resource)
			q.publish(e, bus.CodeExpired, fmt.Sprintf("expired: node %s did not come back by %s", e.Node, e.Until.Format(time.RFC3339)))
		}
	}
}
