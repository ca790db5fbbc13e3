package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// scale registers p.nodes CoAP nodes (alive:<uid> from one loopback
// address each, at p.rate per second) and holds them online with a beacon
// every p.beacon for p.hold, watching the server's memory and CPU. A
// browser counts the nodes online ("new") and gone ("out").
func (r *runner) scale(ctx context.Context, p params) ([]Result, error) {
	if err := r.needBrowsers(); err != nil {
		return nil, err
	}
	if r.target.CoAP == "" {
		return nil, fmt.Errorf("no coap gateway: give --coap")
	}
	if p.rate <= 0 {
		return nil, fmt.Errorf("scale needs a registration rate")
	}
	if err := r.fleet.setGateway(r.target.CoAP); err != nil {
		return nil, err
	}
	prefix := "bench-scale-"
	if err := r.fleet.configure(p.nodes, 0, prefix, links); err != nil {
		return nil, err
	}
	t := newTally(1, 1)
	first := make([]atomic.Int64, p.nodes) // tally time of each node's first beacon
	h := newHistogram()
	w := newWatcher(prefix)
	w.onNew = func(uid string) { // under w.mu
		i, err := strconv.Atoi(strings.TrimPrefix(uid, prefix))
		if err == nil && i >= 0 && i < p.nodes {
			if sent := first[i].Load(); sent > 0 {
				_ = h.RecordValue(max((t.now()-sent)/1000, 1))
			}
		}
	}
	bs, err := dialBrowsers(ctx, r.target.WSURL, 1, nil, w.on, time.Second)
	if err != nil {
		return nil, err
	}
	defer closeBrowsers(bs)
	beacon := func(i int) {
		first[i].CompareAndSwap(0, t.now())
		_ = r.fleet.post(i, "/alive", "alive:"+r.fleet.uid(i), false, t.now(), nil)
	}

	// Registration: every node once at the rate, then, as real nodes do,
	// again one beacon period later for those not yet online (UDP may
	// drop), until all are or the time is up.
	drops0, rej0 := udpDrops(), r.fleet.rejected.Load()
	s := sample(r.pid())
	began := time.Now()
	limit := time.Duration(float64(p.nodes)/p.rate*float64(time.Second)) + 2*p.beacon + 10*time.Second
	r.prof.start(ctx, p.scenario+"-register", limit/2)
	stopProg := r.prog.start(p.scenario+"/reg", limit, func() int64 { return int64(w.count()) })
	var sent int64
	pace(ctx, p.rate, 0, int64(p.nodes), func(k int64) { beacon(int(k)); sent++ })
	for w.count() < p.nodes && time.Since(began) < limit && ctx.Err() == nil {
		if err := w.waitOnline(ctx, p.nodes, p.beacon); err == nil {
			break
		}
		missing := r.offline(w, prefix, p.nodes)
		pace(ctx, p.rate, 0, int64(len(missing)), func(k int64) { beacon(missing[k]); sent++ })
	}
	regTime := time.Since(began)
	stopProg()
	r.prof.heap(ctx, p.scenario+"-register")
	online := w.count()
	reg := Result{Scenario: p.scenario, Path: "register coap nodes (/alive → browser new)", Nodes: p.nodes, Receivers: 1,
		Rate: p.rate, Seconds: regTime.Seconds(), Sent: sent, Expected: int64(p.nodes), Delivered: int64(online),
		Lost: int64(p.nodes - online), PerSecond: float64(online) / regTime.Seconds(), Server: resource(s.stop()),
		Extra: map[string]any{"udp_rcvbuf_drops_host": udpDrops() - drops0, "gateway_rejected": r.fleet.rejected.Load() - rej0}}
	w.mu.Lock()
	reg.Latency = latency(h)
	w.mu.Unlock()
	if online < p.nodes {
		return []Result{reg}, fmt.Errorf("%d of %d nodes online after %s", online, p.nodes, regTime.Round(time.Second))
	}

	// Hold: each node beacons every p.beacon, spread evenly.
	outs0, drops0, rej0 := w.outs.Load(), udpDrops(), r.fleet.rejected.Load()
	s = sample(r.pid())
	r.prof.start(ctx, p.scenario, p.hold)
	began = time.Now()
	stopProg = r.prog.start(p.scenario+"/hold", p.hold, func() int64 { return int64(w.count()) })
	var beacons int64
	pace(ctx, float64(p.nodes)/p.beacon.Seconds(), p.hold, 1<<62, func(k int64) { beacon(int(k % int64(p.nodes))); beacons++ })
	stopProg()
	r.prof.heap(ctx, p.scenario+"-hold")
	held := w.count()
	hold := Result{Scenario: p.scenario, Path: fmt.Sprintf("hold coap nodes (beacon every %s)", p.beacon), Nodes: p.nodes,
		Receivers: 1, Rate: float64(p.nodes) / p.beacon.Seconds(), Seconds: time.Since(began).Seconds(), Sent: beacons,
		Expected: int64(p.nodes), Delivered: int64(held), Lost: int64(p.nodes - held), Server: resource(s.stop()),
		Extra: map[string]any{"went_offline": w.outs.Load() - outs0, "udp_rcvbuf_drops_host": udpDrops() - drops0,
			"gateway_rejected": r.fleet.rejected.Load() - rej0}}
	hold.PerSecond = float64(beacons) / hold.Seconds
	return []Result{reg, hold}, nil
}

// offline lists the first n nodes of prefix the watcher has not seen
// online.
func (r *runner) offline(w *watcher, prefix string, n int) []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []int
	for i := range n {
		if !w.online[prefix+strconv.Itoa(i)] {
			out = append(out, i)
		}
	}
	return out
}
