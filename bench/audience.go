package bench

import (
	"context"
	"time"
)

// audience is what counts the values of an ingest run: browsers on /ws
// (one receiver each), a watcher of node lifecycle messages, and a NATS tap
// on node.*.* for the bus stage (nil where the target has no NATS).
type audience struct {
	watch *watcher
	rcvs  []*receiver
	tap   *receiver
	close func()
}

// listen connects p.browsers browsers and the bus tap, all counting into t.
func (r *runner) listen(ctx context.Context, t *tally, prefix string, browsers int) (*audience, error) {
	return r.listenAt(ctx, t, prefix, browsers, []string{r.target.WSURL})
}

// listenAt is listen with the browsers spread round robin over urls.
func (r *runner) listenAt(ctx context.Context, t *tally, prefix string, browsers int, urls []string) (*audience, error) {
	a := &audience{watch: newWatcher(prefix), rcvs: make([]*receiver, browsers)}
	bs, err := dialBrowsersAt(ctx, urls, browsers, func(i int) *receiver {
		a.rcvs[i] = newReceiver(t)
		return a.rcvs[i]
	}, a.watch.on, time.Second)
	if err != nil {
		return nil, err
	}
	tap, closeTap, err := r.busTap(t, "node.*.*")
	if err != nil {
		closeBrowsers(bs)
		return nil, err
	}
	a.tap = tap
	a.close = func() { closeTap(); closeBrowsers(bs) }
	return a, nil
}
