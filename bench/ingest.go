package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// nodeSource is a set of simulated nodes of one protocol.
type nodeSource interface {
	// connect brings nodes 0..n-1 up (connected, announced).
	connect(ctx context.Context, n int) error
	// send sends one value from node i.
	send(i int, res, value string) error
	close()
}

// ingest measures values of src's nodes reaching browsers (and the bus):
// path names the row, prefix is the uid prefix browsers see ("" when the
// system names the nodes itself).
func (r *runner) ingest(ctx context.Context, p params, path, prefix string, src nodeSource) ([]Result, error) {
	if err := r.needBrowsers(); err != nil {
		return nil, err
	}
	t := newTally(p.nodes, p.resources)
	a, err := r.listen(ctx, t, prefix, p.browsers)
	if err != nil {
		return nil, err
	}
	defer a.close()
	w, rcvs, tap := a.watch, a.rcvs, a.tap
	if err := src.connect(ctx, p.nodes); err != nil {
		return nil, err
	}
	defer src.close()
	extra := map[string]any{}
	if err := w.waitOnline(ctx, p.nodes, 30*time.Second); err != nil {
		extra["before_start"] = err.Error()
	}
	s := r.sampleServer()
	r.prof.start(ctx, p.scenario, p.duration)
	began := t.now()
	stopProg := r.prog.start(p.scenario, p.duration, func() int64 { return received(rcvs) })
	errs := sendValues(ctx, t, p, src.send)
	sendEnd := t.now()
	drain(ctx, rcvs, t.total()*int64(len(rcvs)), 2*time.Second, 20*time.Second)
	stopProg()
	extra["send_errors"] = errs
	rows := []Result{row(p.scenario, path+" → browser", p, t, rcvs, began, sendEnd, s.total())}
	rows[0].Extra = extra
	if tap != nil {
		rows = append(rows, row(p.scenario, path+" → bus (NATS)", p, t, []*receiver{tap}, began, sendEnd, usage{}))
	}
	return rows, nil
}

// sendValues has the nodes send: at p.rate (drive), or with RateMax each
// as fast as it can (flood). It returns the failed sends.
func sendValues(ctx context.Context, t *tally, p params, send func(i int, res, value string) error) int64 {
	if p.rate == RateMax {
		return flood(ctx, t, p.duration, p.maxValues, p.nodes, send)
	}
	return drive(ctx, t, p.rate, p.duration, p.maxValues, p.nodes, send)
}

// flood has every node send as fast as its connection takes, each on its
// own goroutine, for d or until count values were sent in all; a node
// whose send fails stops. It returns the failed sends.
func flood(ctx context.Context, t *tally, d time.Duration, count int64, nodes int,
	send func(i int, res, value string) error) int64 {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var sent, errs atomic.Int64
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			for ctx.Err() == nil && sent.Add(1) <= count {
				res, val := t.next(i)
				if send(i, res, val) != nil {
					errs.Add(1)
					return
				}
			}
		})
	}
	wg.Wait()
	return errs.Load()
}
