package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// links is what every simulated CoAP node lists in /.well-known/core.
const links = "</led>"

// coapIngest measures CoAP node values reaching browsers (scenarios coap
// and fanout): nodes register with /alive, then POST values to /server
// at the rate (NON) or in a closed loop (CON, RateMax).
func (r *runner) coapIngest(ctx context.Context, p params) ([]Result, error) {
	if err := r.needBrowsers(); err != nil {
		return nil, err
	}
	if r.target.CoAP == "" {
		return nil, fmt.Errorf("no coap gateway: give --coap")
	}
	if err := r.fleet.setGateway(r.target.CoAP); err != nil {
		return nil, err
	}
	prefix := r.idPrefix() + "-" + p.scenario + "-"
	all := p.nodes + p.strangers
	if err := r.fleet.configure(p.nodes, p.strangers, prefix, links); err != nil {
		return nil, err
	}
	t := newTally(all, p.resources)
	a, err := r.listen(ctx, t, prefix, p.browsers)
	if err != nil {
		return nil, err
	}
	defer a.close()
	w, rcvs, tap := a.watch, a.rcvs, a.tap
	if err := r.registerCoAP(ctx, w, p.nodes, t); err != nil {
		return nil, err
	}
	rej0, drops0, gdrops0 := r.fleet.rejected.Load(), udpDrops(), udpSocketDrops(r.target.CoAP)
	acks0, to0 := r.fleet.acks.Load(), r.fleet.timeouts.Load()
	s := r.sampleServer()
	r.prof.start(ctx, p.scenario, p.duration)
	began := t.now()
	stopProg := r.prog.start(p.scenario, p.duration, func() int64 { return received(rcvs) })
	errs := r.sendCoAP(ctx, t, p, all)
	sendEnd := t.now()
	drain(ctx, rcvs, t.total()*int64(len(rcvs)), 2*time.Second, 20*time.Second)
	stopProg()
	u := s.total()
	path := "coap → browser"
	rows := []Result{row(p.scenario, path, p, t, rcvs, began, sendEnd, u)}
	rows[0].Extra = map[string]any{"send_errors": errs, "gateway_rejected": r.fleet.rejected.Load() - rej0,
		"con_acked": r.fleet.acks.Load() - acks0, "con_timeouts": r.fleet.timeouts.Load() - to0, "strangers": p.strangers,
		"udp_rcvbuf_drops_host": udpDrops() - drops0, "udp_drops_coap_gateway": udpSocketDrops(r.target.CoAP) - gdrops0}
	if tap != nil {
		rows = append(rows, row(p.scenario, "coap → bus (NATS)", p, t, []*receiver{tap}, began, sendEnd, usage{}))
	}
	if r.cfg.NoBaselines {
		return rows, nil
	}
	if p.scenario == ScenarioCoAP {
		b, err := r.noopBaseline(ctx, p)
		if err != nil {
			return rows, fmt.Errorf("no-op go-coap baseline: %w", err)
		}
		rows = append(rows, b)
	}
	if r.target.NATS != "" {
		b, err := r.natsBaseline(ctx, p)
		if err != nil {
			return rows, fmt.Errorf("nats baseline: %w", err)
		}
		rows = append(rows, b)
	}
	return rows, nil
}

// registerCoAP sends alive:<uid> from the first n nodes and waits for the
// browsers to see them online (beacons repeat every second meanwhile: UDP
// may drop the first).
func (r *runner) registerCoAP(ctx context.Context, w *watcher, n int, t *tally) error {
	deadline := time.Now().Add(30*time.Second + time.Duration(n)*time.Millisecond)
	for {
		for i := range n {
			if err := r.fleet.post(i, "/alive", "alive:"+r.fleet.uid(i), false, t.now(), nil); err != nil {
				return fmt.Errorf("beacon: %w", err)
			}
		}
		err := w.waitOnline(ctx, n, time.Second)
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
	}
}

// sendCoAP posts values to /server: NON at the rate, or CON in a closed
// loop of p.window requests.
func (r *runner) sendCoAP(ctx context.Context, t *tally, p params, nodes int) int64 {
	if p.rate > 0 {
		return drive(ctx, t, p.rate, p.duration, p.maxValues, nodes, func(i int, res, value string) error {
			return r.fleet.post(i, "/server", res+":"+value, false, t.now(), nil)
		})
	}
	return r.closedLoop(ctx, t, p, nodes, nil)
}

// closedLoop keeps p.window confirmable POSTs to /server in flight for
// p.duration; rtt, when set, records each acknowledged one's round trip.
func (r *runner) closedLoop(ctx context.Context, t *tally, p params, nodes int, rtt func(us int64)) int64 {
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	go r.fleet.expire(ectx, t.now, 2*time.Second)
	sem := make(chan struct{}, p.window)
	start := time.Now()
	var errs int64
	var done int64
	for i := 0; time.Since(start) < p.duration && done < p.maxValues; i = (i + 1) % nodes {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return errs
		}
		res, val := t.next(i)
		sent := t.now()
		err := r.fleet.post(i, "/server", res+":"+val, true, sent, func(acked bool) {
			if acked && rtt != nil {
				rtt(max((t.now()-sent)/1000, 1))
			}
			<-sem
		})
		if err != nil {
			errs++
			<-sem
		}
		done++
	}
	// let the last requests in flight finish or time out
	for range p.window {
		select {
		case sem <- struct{}{}:
		case <-time.After(3 * time.Second):
			return errs
		}
	}
	return errs
}

// noopBaseline runs the same CoAP load against a no-op go-coap server
// child: confirmable POSTs, counted by their acknowledgements.
func (r *runner) noopBaseline(ctx context.Context, p params) (Result, error) {
	c, addr, err := startNoopCoAP(ctx, r.bin)
	if err != nil {
		return Result{}, err
	}
	defer c.stop()
	if err := r.fleet.setGateway(addr); err != nil {
		return Result{}, err
	}
	defer func() { _ = r.fleet.setGateway(r.target.CoAP) }()
	t := newTally(p.nodes, p.resources)
	h := hdrhistogram.New(1, 60_000_000, 3)
	var mu sync.Mutex
	acks0, to0 := r.fleet.acks.Load(), r.fleet.timeouts.Load()
	s := sample(c.pid)
	began := time.Now()
	stopProg := r.prog.start(p.scenario+"/noop", p.duration, func() int64 { return r.fleet.acks.Load() - acks0 })
	q := p
	if q.rate > 0 { // paced: CON at the same rate
		errs := drive(ctx, t, q.rate, q.duration, q.maxValues, q.nodes, func(i int, res, value string) error {
			sent := t.now()
			return r.fleet.post(i, "/server", res+":"+value, true, sent, func(acked bool) {
				if acked {
					mu.Lock()
					_ = h.RecordValue(max((t.now()-sent)/1000, 1))
					mu.Unlock()
				}
			})
		})
		_ = errs
		ectx, cancel := context.WithCancel(ctx)
		go r.fleet.expire(ectx, t.now, 2*time.Second)
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if r.fleet.acks.Load()-acks0+r.fleet.timeouts.Load()-to0 >= t.total() {
				break
			}
		}
		cancel()
	} else {
		r.closedLoop(ctx, t, q, q.nodes, func(us int64) {
			mu.Lock()
			_ = h.RecordValue(us)
			mu.Unlock()
		})
	}
	secs := time.Since(began).Seconds()
	stopProg()
	u := s.stop()
	acked := r.fleet.acks.Load() - acks0
	res := Result{Scenario: p.scenario, Path: "baseline: no-op go-coap (CON acks)", Baseline: true, Nodes: p.nodes,
		Receivers: 1, Rate: max(p.rate, 0), Seconds: secs, Sent: t.total(), Expected: t.total(), Delivered: acked,
		Lost: t.total() - acked, PerSecond: float64(acked) / secs, Server: resource(u),
		Extra: map[string]any{"con_timeouts": r.fleet.timeouts.Load() - to0}}
	mu.Lock()
	res.Latency = latency(h)
	mu.Unlock()
	return res, nil
}
