package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"
)

// commandTimeout bounds one command's round trip.
const commandTimeout = 6 * time.Second

// outcome is how a command ended.
type outcome struct {
	ok  bool
	err string
}

// waiters are commands waiting for their answer, by key.
type waiters struct {
	mu sync.Mutex
	m  map[string]chan outcome
}

func (w *waiters) add(key string) chan outcome {
	ch := make(chan outcome, 1)
	w.mu.Lock()
	w.m[key] = ch
	w.mu.Unlock()
	return ch
}

func (w *waiters) done(key string, o outcome) {
	w.mu.Lock()
	ch, ok := w.m[key]
	delete(w.m, key)
	w.mu.Unlock()
	if ok {
		ch <- o
	}
}

func (w *waiters) drop(key string) {
	w.mu.Lock()
	delete(w.m, key)
	w.mu.Unlock()
}

// commandStats counts the commands of one path.
type commandStats struct {
	mu                         sync.Mutex
	h                          *hdrhistogram.Histogram
	sent, ok, refused, timeout atomic.Int64
	lastErr                    atomic.Value
}

func newCommandStats() *commandStats { return &commandStats{h: newHistogram()} }

func (c *commandStats) record(sent time.Time, o outcome, got bool) {
	switch {
	case !got:
		c.timeout.Add(1)
	case o.ok:
		c.ok.Add(1)
		c.mu.Lock()
		_ = c.h.RecordValue(max(time.Since(sent).Microseconds(), 1))
		c.mu.Unlock()
	default:
		c.refused.Add(1)
		c.lastErr.Store(o.err)
	}
}

func (c *commandStats) result(p params, path string, secs float64, u usage) Result {
	sent, ok := c.sent.Load(), c.ok.Load()
	res := Result{Scenario: p.scenario, Path: path, Nodes: p.nodes, Receivers: p.browsers, Rate: p.rate, Seconds: secs,
		Sent: sent, Expected: sent, Delivered: ok, Lost: sent - ok, Server: resource(u),
		Extra: map[string]any{"refused": c.refused.Load(), "timeouts": c.timeout.Load()}}
	if e, _ := c.lastErr.Load().(string); e != "" {
		res.Extra["last_error"] = e
	}
	if secs > 0 {
		res.PerSecond = float64(ok) / secs
	}
	c.mu.Lock()
	res.Latency = latency(c.h)
	c.mu.Unlock()
	return res
}

// command measures command round trips to CoAP nodes: a browser's
// {"type":"update","data":{uid,endpoint:"led",payload}} until its answer
// (goaiot's "result", or for Pyaiot the update of led carrying the
// payload), and on goaiot `nats req gateway.<uid>.led.set` until the reply.
// Each browser keeps one command in flight, paced to rate/browsers, the
// browsers taking turns: their first commands are spread over the period,
// so that they do not all send at once (bursts of one command per browser
// measured the gateway's queueing, not a command's round trip).
func (r *runner) command(ctx context.Context, p params) ([]Result, error) {
	if err := r.needBrowsers(); err != nil {
		return nil, err
	}
	if r.target.CoAP == "" {
		return nil, fmt.Errorf("no coap gateway: give --coap")
	}
	if p.rate <= 0 {
		return nil, fmt.Errorf("commands need a rate")
	}
	if err := r.fleet.setGateway(r.target.CoAP); err != nil {
		return nil, err
	}
	prefix := r.idPrefix() + "-command-"
	if err := r.fleet.configure(p.nodes, 0, prefix, links); err != nil {
		return nil, err
	}
	t := newTally(p.nodes, 1)
	w := newWatcher(prefix)
	wait := &waiters{m: make(map[string]chan outcome)}
	pyaiot := r.target.Kind == KindPyaiot
	on := func(m *wsMessage) {
		w.on(m)
		switch {
		case m.Type == "result" && !pyaiot:
			wait.done(m.ID, outcome{ok: m.OK, err: m.Error})
		case m.Type == "update" && pyaiot && m.Endpoint == "led":
			wait.done(m.UID+"\x00"+m.dataString(), outcome{ok: true})
		}
	}
	bs, err := dialBrowsers(ctx, r.target.WSURL, p.browsers, nil, on, time.Second)
	if err != nil {
		return nil, err
	}
	defer closeBrowsers(bs)
	if err := r.registerCoAP(ctx, w, p.nodes, t); err != nil {
		return nil, err
	}
	var seq atomic.Int64
	stats := newCommandStats()
	s := r.sampleServer()
	r.prof.start(ctx, p.scenario, p.duration)
	began := time.Now()
	stopProg := r.prog.start(p.scenario, p.duration, stats.ok.Load)
	var wg sync.WaitGroup
	every := time.Duration(float64(time.Second) * float64(len(bs)) / p.rate)
	for i, b := range bs {
		wg.Go(func() {
			// Browsers take turns, evenly spread over the period: the
			// same rate as the NATS requests, not bursts of one command
			// per browser at once.
			offset := stagger(i, len(bs), every)
			if !sleepCtx(ctx, offset) {
				return
			}
			ticks(ctx, every, p.duration-offset, func() {
				id := int(seq.Add(1))
				uid := r.fleet.uid(id % p.nodes)
				payload := t.run + "c" + strconv.Itoa(id)
				key := strconv.Itoa(id)
				if pyaiot {
					key = uid + "\x00" + payload
				}
				ch := wait.add(key)
				stats.sent.Add(1)
				sent := time.Now()
				if err := b.command(uid, "led", payload, id); err != nil {
					wait.drop(key)
					stats.record(sent, outcome{err: err.Error()}, true)
					return
				}
				select {
				case o := <-ch:
					stats.record(sent, o, true)
				case <-time.After(commandTimeout):
					wait.drop(key)
					stats.record(sent, outcome{}, false)
				case <-ctx.Done():
				}
			})
		})
	}
	wg.Wait()
	secs := time.Since(began).Seconds()
	stopProg()
	rows := []Result{stats.result(p, "browser → coap node → result", secs, s.total())}
	if pyaiot {
		rows[0].Path = "browser → coap node → update"
	}
	if r.target.NATS == "" || pyaiot {
		return rows, nil
	}
	nr, err := r.natsCommands(ctx, p, t)
	if err != nil {
		return rows, fmt.Errorf("nats req: %w", err)
	}
	return append(rows, nr), nil
}

// natsCommands sends the same commands as NATS requests, one in flight.
func (r *runner) natsCommands(ctx context.Context, p params, t *tally) (Result, error) {
	nc, err := nats.Connect(r.target.NATS, nats.Name("aiot-bench-req"))
	if err != nil {
		return Result{}, err
	}
	defer nc.Close()
	stats := newCommandStats()
	s := r.sampleServer()
	began := time.Now()
	stopProg := r.prog.start(p.scenario+"/nats", p.duration, stats.ok.Load)
	var k int64
	ticks(ctx, time.Duration(float64(time.Second)/p.rate), p.duration, func() {
		k++
		uid := r.fleet.uid(int(k % int64(p.nodes)))
		stats.sent.Add(1)
		sent := time.Now()
		m, err := nc.Request("gateway."+uid+".led.set", []byte(t.run+"n"+strconv.FormatInt(k, 10)), commandTimeout)
		if err != nil {
			stats.record(sent, outcome{}, false)
			return
		}
		var rep struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		}
		_ = json.Unmarshal(m.Data, &rep)
		stats.record(sent, outcome{ok: rep.OK, err: rep.Error}, true)
	})
	secs := time.Since(began).Seconds()
	stopProg()
	res := stats.result(p, "nats req → coap node → reply", secs, s.total())
	res.Receivers = 1
	return res, nil
}

// ticks calls fn every interval for d; a tick missed while fn runs is
// skipped, not made up (commands stay under the dashboard's frame limit).
func ticks(ctx context.Context, every, d time.Duration, fn func()) {
	t := time.NewTicker(max(every, time.Microsecond))
	defer t.Stop()
	end := time.After(d)
	for {
		fn()
		select {
		case <-ctx.Done():
			return
		case <-end:
			return
		case <-t.C:
		}
	}
}

// stagger is the offset of the first tick of sender i of n that each
// tick every period: the senders' ticks spread evenly over the period.
func stagger(i, n int, every time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	return every * time.Duration(i) / time.Duration(n)
}

// sleepCtx waits for d, or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
