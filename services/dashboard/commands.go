package dashboard

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
)

// command carries out a browser's command as a NATS request on
// gateway.<uid>.<endpoint>.set and returns the "result" for that browser,
// with the reply's code (bus.Code*).
func (d *Dashboard) command(c *client, req request) *frame {
	if !c.ext {
		req.queueFor = 0 // Pyaiot's protocol has no queue
	}
	outcome, err := d.allowed(c)
	reply := bus.Reply{Code: bus.CodeForbidden}
	if err == nil {
		reply, outcome, err = d.sendCommand(req)
	}
	d.m.results.WithLabelValues(outcome).Inc()
	res := resultMsg{Type: typeResult, ID: req.id, UID: req.uid, Endpoint: req.endpoint, OK: err == nil, Code: reply.Code}
	if err != nil {
		res.Error = err.Error()
	}
	if reply.Code == bus.CodeQueued {
		res.Command, res.Until = reply.Command, millis(reply.Until)
	}
	c.log.Info("command", "node", req.uid, "resource", req.endpoint, "payload", string(req.payload),
		"outcome", outcome, "code", reply.Code, "err", err)
	return mustFrame(res, "", false)
}

// allowed checks that c may send commands: an operator, whose session (if
// any) is still live.
func (d *Dashboard) allowed(c *client) (outcome string, err error) {
	switch {
	case d.cfg.ReadOnly:
		return outcomeForbidden, errors.New("read-only dashboard: commands are refused")
	case c.id.role != RoleOperator:
		return outcomeForbidden, fmt.Errorf("forbidden: role %s may not send commands (log in as an operator)", c.id.role)
	case c.id.session != "":
		if _, live := d.sessions.get(c.id.session); !live {
			return outcomeForbidden, errors.New("forbidden: session ended (log in again)")
		}
	}
	return "", nil
}

// sendCommand makes the request (with bus.HeaderQueueFor when the browser
// asked to queue it) and returns the reply, the metrics outcome and the
// error shown to the browser. The reply's Code is the gateway's, or the
// dashboard's own when no reply came (no_gateway, timeout, bad_request,
// error); the outcome is told from the code, never from the text.
func (d *Dashboard) sendCommand(req request) (bus.Reply, string, error) {
	if err := checkTarget(req); err != nil {
		return bus.Reply{Code: bus.CodeBadRequest}, outcomeInvalid, err
	}
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.CommandTimeout)
	defer cancel()
	msg := nats.NewMsg(bus.GatewaySet(req.uid, req.endpoint))
	msg.Data = req.payload
	if req.queueFor > 0 {
		msg.Header.Set(bus.HeaderQueueFor, req.queueFor.String())
	}
	m, err := d.nc.RequestMsgWithContext(ctx, msg)
	timeout := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
	switch {
	case errors.Is(err, nats.ErrNoResponders), timeout && !d.hub.owned(req.uid):
		// No answer for a node no gateway owns: nobody answers for such
		// nodes when no queue runs (gateways/queue, "Replies").
		return bus.Reply{Code: bus.CodeNoGateway}, outcomeNoResponders, fmt.Errorf("no gateway serves node %s", req.uid)
	case timeout:
		return bus.Reply{Code: bus.CodeTimeout}, outcomeTimeout, fmt.Errorf("timeout: no answer within %s", d.cfg.CommandTimeout)
	case err != nil:
		return bus.Reply{Code: bus.CodeError}, outcomeError, fmt.Errorf("nats: %w", err)
	}
	reply, err := bus.ParseReply(m.Data)
	if err != nil {
		return bus.Reply{Code: bus.CodeError}, outcomeError, fmt.Errorf("bad answer from the gateway: %w", err)
	}
	return classify(reply)
}

// classify tells a gateway's reply's outcome from its code. A reply
// without a code (a gateway older than codes) is ok or refused.
func classify(reply bus.Reply) (bus.Reply, string, error) {
	if reply.Code == "" {
		reply.Code = bus.CodeRefused
		if reply.OK {
			reply.Code = bus.CodeOK
		}
	}
	switch {
	case reply.OK && reply.Code == bus.CodeQueued:
		return reply, outcomeQueued, nil
	case reply.OK:
		return reply, outcomeOK, nil
	}
	why := reply.Error
	if why == "" {
		why = reply.Code
	}
	switch reply.Code {
	case bus.CodeTimeout:
		return reply, outcomeTimeout, errors.New(why)
	case bus.CodeNoGateway:
		return reply, outcomeNoResponders, errors.New(why)
	}
	return reply, outcomeRefused, errors.New(why)
}

func checkTarget(req request) error {
	if err := bus.ValidateNodeID(req.uid); err != nil {
		return err
	}
	return bus.ValidateResource(req.endpoint)
}

// busy is the answer to a request over the browser's in-flight limit.
func (d *Dashboard) busy(req request) *frame {
	const msg = "busy: too many requests in flight"
	if req.kind == typeHistory {
		return mustFrame(historyMsg{Type: typeHistory, ID: req.id, UID: req.uid, Endpoint: req.endpoint, Points: []point{}, Error: msg}, "", false)
	}
	d.m.results.WithLabelValues(outcomeInvalid).Inc()
	return mustFrame(resultMsg{Type: typeResult, ID: req.id, UID: req.uid, Endpoint: req.endpoint, Code: bus.CodeBusy, Error: msg}, "", false)
}

// history answers a browser's history request from the stream: the last
// req.limit values of node.<uid>.<endpoint>, oldest first.
func (d *Dashboard) history(c *client, req request) *frame {
	msg := historyMsg{Type: typeHistory, ID: req.id, UID: req.uid, Endpoint: req.endpoint, Points: []point{}}
	err := checkTarget(req)
	if err == nil {
		ctx, cancel := context.WithTimeout(d.ctx, d.cfg.CommandTimeout)
		msg.Points, err = d.readHistory(ctx, bus.NodeValue(req.uid, req.endpoint), req.limit)
		cancel()
	}
	if err != nil {
		msg.Error = err.Error()
		c.log.Warn("history", "node", req.uid, "resource", req.endpoint, "err", err)
	}
	d.m.histories.Inc()
	return mustFrame(msg, "", false)
}

// readHistory reads every stored message of subject and keeps the last
// limit values. The stream keeps a bounded number per subject, so this
// reads at most that many.
func (d *Dashboard) readHistory(ctx context.Context, subject string, limit int) ([]point, error) {
	js, err := jetstream.New(d.nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	stream, err := js.Stream(ctx, d.cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", d.cfg.Stream, err)
	}
	last, err := stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return []point{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", d.cfg.Stream, err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return nil, fmt.Errorf("stream %s: consumer: %w", d.cfg.Stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", d.cfg.Stream, err)
	}
	defer it.Stop()
	ring := newPointRing(limit)
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", d.cfg.Stream, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", d.cfg.Stream, err)
		}
		if v, err := bus.ParseValue(msg.Data()); err == nil {
			ts := meta.Timestamp
			if !v.Time.IsZero() {
				ts = v.Time
			}
			ring.add(point{TS: millis(ts), Data: v.Text()})
		}
		if meta.Sequence.Stream >= last.Sequence || meta.NumPending == 0 {
			return ring.points(), nil
		}
	}
}

// pointRing keeps the last n points added.
type pointRing struct {
	buf  []point
	next int
	full bool
}

func newPointRing(n int) *pointRing { return &pointRing{buf: make([]point, n)} }

func (r *pointRing) add(p point) {
	r.buf[r.next] = p
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

// points returns the kept points, oldest first.
func (r *pointRing) points() []point {
	if !r.full {
		return append([]point{}, r.buf[:r.next]...)
	}
	return append(append([]point{}, r.buf[r.next:]...), r.buf[:r.next]...)
}
