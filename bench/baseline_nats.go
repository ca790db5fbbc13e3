package bench

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// natsBaseline is the floor of the bus, `nats bench`-style on the same
// server: one publisher sends the same values (at the rate, or as fast as
// it can with RateMax) on bench.<run>.<node>.<res>, and one subscriber
// connection per browser of the scenario receives them.
func (r *runner) natsBaseline(ctx context.Context, p params) (Result, error) {
	t := newTally(p.nodes, p.resources)
	pub, err := nats.Connect(r.target.NATS, nats.Name("aiot-bench-pub"))
	if err != nil {
		return Result{}, err
	}
	defer pub.Close()
	rcvs := make([]*receiver, p.browsers)
	for i := range rcvs {
		rcvs[i] = newReceiver(t)
		nc, err := nats.Connect(r.target.NATS, nats.Name("aiot-bench-sub"))
		if err != nil {
			return Result{}, err
		}
		defer nc.Close()
		rcv := rcvs[i]
		sub, err := nc.Subscribe("bench."+t.run+".>", func(m *nats.Msg) {
			if v, ok := valueOf(m.Data); ok {
				rcv.got(v)
			}
		})
		if err == nil {
			err = sub.SetPendingLimits(-1, -1)
		}
		if err == nil {
			err = nc.Flush()
		}
		if err != nil {
			return Result{}, err
		}
	}
	s := sample(r.pid())
	began := t.now()
	stopProg := r.prog.start(p.scenario+"/nats", p.duration, func() int64 { return received(rcvs) })
	publish := func(i int, res, value string) error {
		return pub.Publish("bench."+t.run+".n"+itoa(i)+"."+res, []byte(`{"value":"`+value+`"}`))
	}
	if p.rate > 0 {
		drive(ctx, t, p.rate, p.duration, p.maxValues, p.nodes, publish)
	} else {
		start := time.Now()
		var n int64
		for i := 0; time.Since(start) < p.duration && n < p.maxValues && ctx.Err() == nil; i = (i + 1) % p.nodes {
			res, val := t.next(i)
			_ = publish(i, res, val)
			n++
			if n%1000 == 0 { // keep the publisher within what the subscribers take
				if err := pub.FlushTimeout(5 * time.Second); err != nil {
					return Result{}, fmt.Errorf("flush: %w", err)
				}
			}
		}
	}
	_ = pub.FlushTimeout(5 * time.Second)
	sendEnd := t.now()
	drain(ctx, rcvs, t.total()*int64(len(rcvs)), 2*time.Second, 20*time.Second)
	stopProg()
	res := row(p.scenario, "baseline: NATS pub/sub (same server)", p, t, rcvs, began, sendEnd, s.stop())
	res.Baseline = true
	return res, nil
}

// valueOf is the string of a {"value":"…"} payload, without decoding the
// rest (the values of a run hold no escapes).
func valueOf(data []byte) (string, bool) {
	i := bytes.Index(data, valueKey)
	if i < 0 {
		return "", false
	}
	v := data[i+len(valueKey):]
	j := bytes.IndexByte(v, '"')
	if j < 0 {
		return "", false
	}
	return string(v[:j]), true
}
