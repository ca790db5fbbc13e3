package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
)

// dashboardFanout measures the dashboard alone (scenario dashboard): bench
// publishes the values on node.<id>.<res> as a gateway would, and the
// browsers on /ws count them, so no gateway's ingest limits the rate.
// With Config.Dashboards > 1, that many `aiot dashboard` processes serve
// the browsers (spread round robin) side by side on the same NATS, and the
// row's CPU and memory are their sum. The same-run baseline is one bare
// NATS subscriber per browser receiving the same load.
func (r *runner) dashboardFanout(ctx context.Context, p params) ([]Result, error) {
	if err := r.needBrowsers(); err != nil {
		return nil, err
	}
	if r.target.NATS == "" {
		return nil, fmt.Errorf("no NATS: give --nats")
	}
	pub, err := nats.Connect(r.target.NATS, nats.Name("aiot-bench-gateway"))
	if err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	defer pub.Close()
	urls, pids, stop, err := r.dashboards(ctx, p)
	if err != nil {
		return nil, err
	}
	defer stop()
	prefix := "bench-dash-"
	t := newTally(p.nodes, p.resources)
	a, err := r.listenAt(ctx, t, prefix, p.browsers, urls)
	if err != nil {
		return nil, err
	}
	defer a.close()
	if err := announce(pub, prefix, p.nodes); err != nil {
		return nil, err
	}
	extra := map[string]any{"dashboards": len(urls)}
	if err := a.watch.waitOnline(ctx, p.nodes, 30*time.Second); err != nil {
		extra["before_start"] = err.Error()
	}
	s := sampleAll(pids)
	r.prof.start(ctx, p.scenario, p.duration)
	began := t.now()
	stopProg := r.prog.start(p.scenario, p.duration, func() int64 { return received(a.rcvs) })
	err = publishValues(ctx, pub, t, p, func(i int, res string) string { return bus.NodeValue(prefix+itoa(i), res) })
	sendEnd := t.now()
	drain(ctx, a.rcvs, t.total()*int64(len(a.rcvs)), 2*time.Second, 20*time.Second)
	stopProg()
	u, each := s.stop()
	r.prof.heap(ctx, p.scenario) // with the browsers still connected
	rows := []Result{row(p.scenario, "bus → browser", p, t, a.rcvs, began, sendEnd, u)}
	if len(each) > 1 { // the first are the system's (aiot run: NATS, JetStream, gateways, dashboard); the last ones dashboards only
		cores := make([]float64, len(each))
		for i, x := range each {
			cores[i] = x.Cores()
		}
		extra["cpu_cores_each"] = cores
	}
	rows[0].Extra = extra
	if err != nil {
		return rows, err
	}
	if r.cfg.NoBaselines {
		return rows, nil
	}
	b, err := r.natsBaseline(ctx, p)
	if err != nil {
		return rows, fmt.Errorf("nats baseline: %w", err)
	}
	return append(rows, b), nil
}

// announce publishes an online $state for nodes prefix0..prefix<n-1>.
func announce(pub *nats.Conn, prefix string, n int) error {
	for i := range n {
		b, err := json.Marshal(bus.State{State: "online", Protocol: "bench", Gateway: "bench", Time: time.Now().UTC()})
		if err != nil {
			return err
		}
		if err := pub.Publish(bus.NodeState(prefix+itoa(i)), b); err != nil {
			return fmt.Errorf("announce: %w", err)
		}
	}
	return pub.Flush()
}

// publishValues publishes {"value":…} on subject(i, res) round robin over
// the nodes: at p.rate for p.duration, or with RateMax as fast as the
// server takes them (a flush every 1 000 values keeps the publisher within
// what the server reads).
func publishValues(ctx context.Context, pub *nats.Conn, t *tally, p params, subject func(i int, res string) string) error {
	publish := func(i int, res, value string) error {
		return pub.Publish(subject(i, res), []byte(`{"value":"`+value+`"}`))
	}
	if p.rate > 0 {
		drive(ctx, t, p.rate, p.duration, p.maxValues, p.nodes, publish)
		return pub.FlushTimeout(5 * time.Second)
	}
	start := time.Now()
	var n int64
	for i := 0; time.Since(start) < p.duration && n < p.maxValues && ctx.Err() == nil; i = (i + 1) % p.nodes {
		res, val := t.next(i)
		_ = publish(i, res, val)
		n++
		if n%1000 == 0 {
			if err := pub.FlushTimeout(5 * time.Second); err != nil {
				return fmt.Errorf("flush: %w", err)
			}
		}
	}
	return pub.FlushTimeout(5 * time.Second)
}

// dashboards returns the browser URLs and server pids of the scenario:
// the target's, plus Config.Dashboards-1 `aiot dashboard` children on the
// target's NATS. stop ends the children.
func (r *runner) dashboards(ctx context.Context, p params) (urls []string, pids []int, stop func(), err error) {
	urls, pids = []string{r.target.WSURL}, slices.Clone(r.pids())
	var children []*child
	stop = func() {
		for _, c := range children {
			_ = c.stop()
		}
	}
	for k := 1; k < r.cfg.Dashboards; k++ {
		ready := filepath.Join(r.tmp, fmt.Sprintf("%s-dashboard-%d.ready.json", p.scenario, k))
		_ = os.Remove(ready)
		args := []string{"dashboard", "--nats", r.target.NATS, "--http", "127.0.0.1:0", "--ready-file", ready,
			"--log-format", "json", "--log-level", "warn", "--data", filepath.Join(r.tmp, fmt.Sprintf("dashboard-%d", k))}
		c, rep, err := startChild(ctx, r.bin, args, ready)
		if err != nil {
			stop()
			return nil, nil, nil, fmt.Errorf("dashboard %d: %w", k+1, err)
		}
		children = append(children, c)
		urls = append(urls, r.framing("ws://"+rep.Addrs["http"]+"/ws?ext=1&batch=1"))
		pids = append(pids, c.pid)
	}
	return urls, pids, stop, nil
}
