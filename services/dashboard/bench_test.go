package dashboard

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

// benchWindow is how many events may be published and not yet received by
// the slowest browser in the throughput benchmarks. It is below the default
// SlowAfter, so that nothing is coalesced and every browser receives every
// event.
const benchWindow = 16

// BenchmarkFanout measures the dashboard's throughput end to end on
// loopback: events published on the bus (a value of one of 10 resources),
// fanned out to N websocket browsers (gorilla clients in this process, which
// read and parse every message), with up to benchWindow events in flight.
// It reports events/s (each delivered to every browser), deliveries/s, and
// the p50 and p99 latency from the publish to a browser's receipt (which at
// full load includes the wait behind the events in flight).
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("browsers=%d", n), func(b *testing.B) { benchFanout(b, n, benchWindow) })
	}
}

// BenchmarkFanoutBatch is BenchmarkFanout with browsers that ask for
// several messages per frame (batch=1, goaiot's page since issue 17).
func BenchmarkFanoutBatch(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("browsers=%d", n), func(b *testing.B) { benchFanoutURL(b, n, benchWindow, "&batch=1") })
	}
}

// BenchmarkFanoutLatency is BenchmarkFanout with one event in flight: the
// latency of an event when the dashboard is not loaded.
func BenchmarkFanoutLatency(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("browsers=%d", n), func(b *testing.B) { benchFanout(b, n, 1) })
	}
}

func benchFanout(b *testing.B, n, window int) { benchFanoutURL(b, n, window, "") }

// benchFanoutURL is benchFanout with query added to the browsers' URL.
func benchFanoutURL(b *testing.B, n, window int, query string) {
	srv := benchServer(b)
	td := benchDashboard(b, srv)
	rec := newRecorder(n, b.N, window)
	for i := range n {
		benchBrowser(b, td.wsURL()+query, rec, i)
	}
	pub, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	rec.run(b, pub)
	if c := metric(b, td, "aiot_dashboard_coalesced_total"); c != 0 {
		b.Errorf("%v updates coalesced: the benchmark must not overload the browsers", c)
	}
}

// BenchmarkBusBaseline is the same load received by one plain NATS
// subscriber: the cost of the bus alone, for comparison.
func BenchmarkBusBaseline(b *testing.B) {
	for _, window := range []int{benchWindow, 1} {
		b.Run(fmt.Sprintf("window=%d", window), func(b *testing.B) {
			srv := benchServer(b)
			rec := newRecorder(1, b.N, window)
			nc, err := nats.Connect(srv.ClientURL())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			sub, err := nc.Subscribe(bus.SubjectAllNodes, func(m *nats.Msg) {
				if v, err := bus.ParseValue(m.Data); err == nil {
					rec.received(0, []byte(v.Text()))
				}
			})
			if err != nil {
				b.Fatal(err)
			}
			defer sub.Unsubscribe()
			nc.Flush()
			pub, err := nats.Connect(srv.ClientURL())
			if err != nil {
				b.Fatal(err)
			}
			defer pub.Close()
			rec.run(b, pub)
		})
	}
}

// recorder collects what the browsers received. Each event's value is
// "<index>:<publish time since base>"; remaining[index % len] counts the
// browsers yet to receive it, and the last one reports the event complete,
// which lets the publisher run ahead by window events without polling.
type recorder struct {
	base      time.Time
	browsers  int
	events    int
	window    int               // events published and not yet complete
	remaining []atomic.Int64    // per event slot
	complete  chan struct{}     // one per completed event
	latencies [][]time.Duration // per browser
}

func newRecorder(browsers, events, window int) *recorder {
	r := &recorder{
		base: time.Now(), browsers: browsers, events: events, window: window,
		remaining: make([]atomic.Int64, 2*window),
		complete:  make(chan struct{}, events),
		latencies: make([][]time.Duration, browsers),
	}
	for i := range r.latencies {
		r.latencies[i] = make([]time.Duration, 0, events)
	}
	return r
}

// received records an event's value.
func (r *recorder) received(browser int, data []byte) {
	idx, sent, ok := bytes.Cut(data, []byte(":"))
	i, ok1 := atoi(idx)
	ns, ok2 := atoi(sent)
	if !ok || !ok1 || !ok2 {
		return
	}
	r.latencies[browser] = append(r.latencies[browser], time.Since(r.base)-time.Duration(ns))
	if r.remaining[i%len(r.remaining)].Add(-1) == 0 {
		r.complete <- struct{}{}
	}
}

// atoi parses a decimal number without allocating.
func atoi(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' || n > 1<<55 {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(b) > 0
}

// run publishes b.N events, at most r.window of them incomplete at a time,
// waits for every delivery and reports.
func (r *recorder) run(b *testing.B, pub *nats.Conn) {
	b.Helper()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0, cpuOK := cpuTime(b)
	b.ResetTimer()
	began := time.Now()
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	completed := 0
	wait := func() {
		select {
		case <-r.complete:
			completed++
		case <-timeout.C:
			b.Fatalf("%d of %d events complete", completed, r.events)
		}
	}
	for i := range r.events {
		for i-completed >= r.window {
			wait()
		}
		r.remaining[i%len(r.remaining)].Store(int64(r.browsers))
		v := bus.StringValue(strconv.Itoa(i)+":"+strconv.FormatInt(int64(time.Since(r.base)), 10), time.Time{})
		if err := pub.Publish(bus.NodeValue("bench", "r"+strconv.Itoa(i%10)), mustJSON(v)); err != nil {
			b.Fatal(err)
		}
	}
	for completed < r.events {
		wait()
	}
	elapsed := time.Since(began)
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	cpu1, _ := cpuTime(b)
	cpu := cpu1 - cpu0
	deliveries := float64(r.events * r.browsers)
	var all []time.Duration
	for _, l := range r.latencies {
		all = append(all, l...)
	}
	slices.Sort(all)
	b.ReportMetric(float64(r.events)/elapsed.Seconds(), "events/s")
	b.ReportMetric(deliveries/elapsed.Seconds(), "deliveries/s")
	// Per delivered message: wall time, CPU time and bytes allocated of the
	// whole process (the dashboard, nats-server and the browsers).
	b.ReportMetric(float64(elapsed.Nanoseconds())/deliveries, "ns/delivery")
	if cpuOK {
		b.ReportMetric(float64(cpu.Nanoseconds())/deliveries, "cpu-ns/delivery")
	}
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/deliveries, "B/delivery")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
}

// benchServer starts a quiet embedded NATS with the NODES stream.
func benchServer(b *testing.B) *bus.Server {
	b.Helper()
	srv, err := bus.NewServer(bus.ServerConfig{Name: "bench", DataDir: b.TempDir(), Listen: "127.0.0.1:0", Logger: bustest.Quiet()})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := bus.EnsureNodesStream(context.Background(), js, bus.DefaultStreamConfig()); err != nil {
		b.Fatal(err)
	}
	return srv
}

func benchDashboard(b *testing.B, srv *bus.Server) *testDashboard {
	b.Helper()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	d, err := New(Config{Conn: nc, Logger: bustest.Quiet(), MaxBrowsers: 2000})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(d.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	<-d.ready
	b.Cleanup(func() {
		cancel()
		<-done
		hs.Close()
	})
	return &testDashboard{d: d, http: hs}
}

// benchBrowser connects browser i to url, subscribes and records what it
// receives (each line of a frame, with batch=1).
func benchBrowser(b *testing.B, url string, rec *recorder, i int) {
	b.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"new","data":"client"}`)); err != nil {
		b.Fatal(err)
	}
	for {
		_, m, err := conn.ReadMessage()
		if err != nil {
			b.Fatal(err)
		}
		if bytes.Contains(m, []byte(`"type":"synced"`)) {
			break
		}
	}
	go func() {
		key := []byte(`"data":"`)
		var buf bytes.Buffer
		for {
			_, r, err := conn.NextReader()
			if err == nil {
				buf.Reset()
				_, err = buf.ReadFrom(r)
			}
			if err != nil {
				return
			}
			for rest := buf.Bytes(); len(rest) > 0; {
				var line []byte
				line, rest, _ = bytes.Cut(rest, []byte("\n"))
				if _, v, ok := bytes.Cut(line, key); ok {
					if data, _, ok := bytes.Cut(v, []byte(`"`)); ok {
						rec.received(i, data)
					}
				}
			}
		}
	}()
}
