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
	if r.target.CoAP == "" {
		return nil, fmt.Errorf("no coap gateway: give --coap")
	}
	if err := r.fleet.setGateway(r.target.CoAP); err != nil {
		return nil, err
	}
	prefix := r.idPrefix() + "-scale-"
	if err := r.fleet.configure(p.nodes, 0, prefix, links); err != nil {
		return nil, err
	}
	post := func(i int, now int64) {
		_ = r.fleet.post(i, "/alive", "alive:"+r.fleet.uid(i), false, now, nil)
	}
	return r.registerAndHold(ctx, p, scaleNodes{kind: "coap", first: "/alive", prefix: prefix, beacon: post, rejected: r.fleet.rejected.Load})
}

// scaleMQTT is scale with MQTT nodes on the system's MQTT listener (see
// mqttFleet), each on its own TCP connection.
func (r *runner) scaleMQTT(ctx context.Context, p params) ([]Result, error) {
	if r.target.MQTT == "" {
		return nil, fmt.Errorf("no mqtt broker: give --mqtt")
	}
	prefix := r.idPrefix() + "-smqtt-"
	f := newMQTTFleet(r.target.MQTT, prefix, p.nodes)
	defer f.close()
	rows, err := r.registerAndHold(ctx, p, scaleNodes{kind: "mqtt", first: "node/check", prefix: prefix,
		beacon: func(i int, _ int64) { f.beacon(i) }, rejected: f.errs.Load})
	if e := f.firstError(); e != "" && len(rows) > 0 {
		rows[0].Extra["first_connect_error"] = e
	}
	return rows, err
}

// scaleNodes is what registerAndHold needs of a scale scenario's nodes.
type scaleNodes struct {
	kind     string // in the result's path
	first    string // what registers a node, in the result's path
	prefix   string // of every node id, followed by its index
	beacon   func(i int, now int64)
	rejected func() int64 // what the system refused or failed
	// byName: the system names nodes itself (Pyaiot's websocket gateway
	// gives each a random uid), so a node is ours, and online, once a
	// browser sees it update its "name" resource to our id.
	byName bool
}

// registerAndHold registers p.nodes nodes at p.rate, then holds them
// online with a beacon every p.beacon for p.hold.
func (r *runner) registerAndHold(ctx context.Context, p params, sn scaleNodes) ([]Result, error) {
	if err := r.needBrowsers(); err != nil {
		return nil, err
	}
	if p.rate <= 0 {
		return nil, fmt.Errorf("scale needs a registration rate")
	}
	prefix := sn.prefix
	t := newTally(1, 1)
	first := make([]atomic.Int64, p.nodes) // tally time of each node's first beacon
	h := newHistogram()
	w := newWatcher(prefix)
	w.byName = sn.byName
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
	// Each node beacons every p.beacon from its first beacon on, as RIOT
	// does; keep sends the beacons that are due, in the order the nodes
	// started (so the due ones are always a run from the cursor).
	last := make([]atomic.Int64, p.nodes)
	var started, beacons atomic.Int64
	beacon := func(i int) {
		now := t.now()
		first[i].CompareAndSwap(0, now)
		last[i].Store(now)
		beacons.Add(1)
		sn.beacon(i, now)
	}
	kctx, stopKeep := context.WithCancel(ctx)
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		keep(kctx, t, last, &started, p.beacon, beacon)
	}()
	defer func() { stopKeep(); <-kept }()

	// Registration: every node's first beacon at the rate; nodes not online
	// yet are retried by their next beacons, until all are online or the
	// time is up.
	drops0, gdrops0, rej0 := udpDrops(), udpSocketDrops(r.target.CoAP), sn.rejected()
	s := r.sampleServer()
	began := time.Now()
	paced := time.Duration(float64(p.nodes) / p.rate * float64(time.Second))
	limit := paced + 2*p.beacon + 10*time.Second
	// The pacing time, which registration never undercuts: the profile is
	// over when the hold's starts (pprof serves one CPU profile at a time).
	r.prof.start(ctx, p.scenario+"-register", paced)
	stopProg := r.prog.start(p.scenario+"/reg", limit, func() int64 { return int64(w.count()) })
	pace(ctx, p.rate, 0, int64(p.nodes), func(k int64) { beacon(int(k)); started.Add(1) })
	_ = w.waitOnline(ctx, p.nodes, limit-time.Since(began))
	sent := beacons.Load()
	regTime := time.Since(began)
	stopProg()
	r.prof.heap(ctx, p.scenario+"-register")
	online := w.count()
	seen := "browser new"
	if sn.byName {
		seen = "browser's name update"
	}
	reg := Result{Scenario: p.scenario, Path: "register " + sn.kind + " nodes (" + sn.first + " → " + seen + ")", Nodes: p.nodes, Receivers: 1,
		Rate: p.rate, Seconds: regTime.Seconds(), Sent: sent, Expected: int64(p.nodes), Delivered: int64(online),
		Lost: int64(p.nodes - online), PerSecond: float64(online) / regTime.Seconds(), Server: resource(s.total()),
		Extra: map[string]any{"udp_rcvbuf_drops_host": udpDrops() - drops0, "gateway_rejected": sn.rejected() - rej0,
			"udp_drops_coap_gateway": udpSocketDrops(r.target.CoAP) - gdrops0}}
	w.mu.Lock()
	reg.Latency = latency(h)
	w.mu.Unlock()
	if online < p.nodes {
		return []Result{reg}, fmt.Errorf("%d of %d nodes online after %s", online, p.nodes, regTime.Round(time.Second))
	}

	// Hold: each node beacons every p.beacon, spread evenly.
	outs0, drops0, rej0, beacons0 := w.outs.Load(), udpDrops(), sn.rejected(), beacons.Load()
	gdrops0 = udpSocketDrops(r.target.CoAP)
	s = r.sampleServer()
	r.prof.start(ctx, p.scenario, p.hold)
	began = time.Now()
	stopProg = r.prog.start(p.scenario+"/hold", p.hold, func() int64 { return int64(w.count()) })
	select {
	case <-ctx.Done():
	case <-time.After(p.hold):
	}
	stopProg()
	r.prof.heap(ctx, p.scenario+"-hold")
	held := w.count()
	hold := Result{Scenario: p.scenario, Path: fmt.Sprintf("hold %s nodes (beacon every %s)", sn.kind, p.beacon), Nodes: p.nodes,
		Receivers: 1, Rate: float64(p.nodes) / p.beacon.Seconds(), Seconds: time.Since(began).Seconds(), Sent: beacons.Load() - beacons0,
		Expected: int64(p.nodes), Delivered: int64(held), Lost: int64(p.nodes - held), Server: resource(s.total()),
		Extra: map[string]any{"went_offline": w.outs.Load() - outs0, "udp_rcvbuf_drops_host": udpDrops() - drops0,
			"udp_drops_coap_gateway": udpSocketDrops(r.target.CoAP) - gdrops0,
			"gateway_rejected":       sn.rejected() - rej0}}
	hold.PerSecond = float64(hold.Sent) / hold.Seconds
	return []Result{reg, hold}, nil
}

// keep sends every beacon that is due (a node's last one p.beacon ago)
// among the started nodes, cycling in start order, until ctx ends.
//
// After a stall (the load tool itself not scheduled for a while), it does
// not send the whole backlog at once: at most twice the nominal rate per
// tick, as a fleet of independent nodes would never synchronise into one
// burst that no receive buffer holds.
func keep(ctx context.Context, t *tally, last []atomic.Int64, started *atomic.Int64, every time.Duration, beacon func(int)) {
	const period = 5 * time.Millisecond
	cursor := 0
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n := int(started.Load())
		most := max(1, int(2*float64(n)*float64(period)/float64(every)))
		for range min(n, most) {
			if cursor >= n {
				cursor = 0
			}
			if t.now()-last[cursor].Load() < int64(every) {
				break
			}
			beacon(cursor)
			cursor++
		}
	}
}
