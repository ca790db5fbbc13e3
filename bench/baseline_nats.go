package bench

import (
	"bytes"
	"context"
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
	s := r.sampleServer()
	began := t.now()
	stopProg := r.prog.start(p.scenario+"/nats", p.duration, func() int64 { return received(rcvs) })
	err = publishValues(ctx, pub, t, p, func(i int, res string) string { return "bench." + t.run + ".n" + itoa(i) + "." + res })
	if err != nil {
		stopProg()
		return Result{}, err
	}
	sendEnd := t.now()
	drain(ctx, rcvs, t.total()*int64(len(rcvs)), 2*time.Second, 20*time.Second)
	stopProg()
	res := row(p.scenario, "baseline: NATS pub/sub (same server)", p, t, rcvs, began, sendEnd, s.total())
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
