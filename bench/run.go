package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// runner holds what every scenario of one run shares.
// idPrefix is the start of the simulated nodes' ids (Config.IDPrefix).
func (r *runner) idPrefix() string {
	if r.cfg.IDPrefix == "" {
		return "bench"
	}
	return r.cfg.IDPrefix
}

type runner struct {
	cfg    Config
	target Target
	fleet  *coapFleet // nil when no scenario needs CoAP nodes
	server *child     // nil against an external system
	bin    string
	tmp    string
	log    *slog.Logger
	prog   *progress
	prof   *profiler // nil unless Config.ProfileDir
	rep    *Report
}

// Run runs the configured scenarios and returns their report. Errors of
// one scenario or baseline are recorded in the report; Run fails only when
// nothing can run at all.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	scenarios, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, target: cfg.Target, log: cfg.Logger, rep: &Report{Started: time.Now(), Machine: machine()}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Progress != nil {
		r.prog = &progress{w: cfg.Progress}
	}
	r.bin = cfg.Binary
	if r.bin == "" {
		if r.bin, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("own executable: %w", err)
		}
	}
	if r.tmp, err = os.MkdirTemp("", "aiot-bench-"); err != nil {
		return nil, err
	}
	defer os.RemoveAll(r.tmp)
	if err := r.start(ctx, scenarios); err != nil {
		return nil, err
	}
	defer r.stop()
	defer func() {
		for _, err := range r.prof.wait() {
			r.rep.Errors = append(r.rep.Errors, err.Error())
		}
	}()
	r.target.WSURL = r.framing(r.target.WSURL)
	r.rep.Target = r.target
	for _, s := range scenarios {
		if ctx.Err() != nil {
			break
		}
		r.log.Info("scenario", "name", s)
		rows, err := r.scenario(ctx, s)
		r.rep.Results = append(r.rep.Results, rows...)
		if err != nil {
			r.rep.Errors = append(r.rep.Errors, fmt.Sprintf("%s: %v", s, err))
			r.log.Warn("scenario failed", "name", s, "err", err)
		}
	}
	return r.rep, ctx.Err()
}

// scaleConns is the number of node connections scale-mqtt or scale-ws
// opens (the larger), if either runs.
func scaleConns(cfg Config, scenarios []string) int {
	n := 0
	for _, s := range []string{ScenarioScaleMQTT, ScenarioScaleWS} {
		if slices.Contains(scenarios, s) {
			n = max(n, cfg.params(s).nodes)
		}
	}
	return n
}

func usesCoAP(scenarios []string) bool {
	for _, s := range scenarios {
		switch s {
		case ScenarioCoAP, ScenarioFanout, ScenarioCommand, ScenarioScale:
			return true
		}
	}
	return false
}

// start binds the CoAP nodes' socket and starts the system unless a target
// was given.
func (r *runner) start(ctx context.Context, scenarios []string) error {
	external := r.target.external()
	if !external && len(r.target.PIDs) > 0 {
		return errors.New("--pids measures an external system: give its addresses too")
	}
	if external {
		if err := r.target.fill(); err != nil {
			return err
		}
	}
	if usesCoAP(scenarios) && (!external || r.target.CoAP != "") {
		port := 0
		if external {
			port = r.target.CoAPNodePort
		}
		f, err := newCoAPFleet(port)
		if err != nil {
			return err
		}
		r.fleet = f
		go func() {
			if err := f.serve(); err != nil {
				r.log.Error("coap nodes", "err", err)
			}
		}()
	}
	if n := scaleConns(r.cfg, scenarios); n > 0 {
		// Each MQTT or websocket node is a descriptor here and one in the server.
		if err := raiseFileLimit(n); err != nil {
			return err
		}
	}
	if external {
		return nil
	}
	nodePort := 5683
	if r.fleet != nil {
		nodePort = r.fleet.port
	}
	args := r.cfg.ServerArgs
	if r.cfg.ProfileDir != "" {
		if err := os.MkdirAll(r.cfg.ProfileDir, 0o755); err != nil {
			return err
		}
		args = append([]string{"--pprof", "127.0.0.1:0"}, args...)
	}
	c, t, st, pprofURL, err := startSystem(ctx, r.bin, r.tmp+"/data", nodePort, args)
	if err != nil {
		if r.fleet != nil {
			_ = r.fleet.close()
		}
		return err
	}
	r.server, r.target, r.rep.Startup = c, t, &st
	if r.cfg.ProfileDir != "" {
		if pprofURL == "" {
			return errors.New("the server logged no pprof address")
		}
		r.prof = &profiler{url: pprofURL, dir: r.cfg.ProfileDir}
	}
	r.log.Info("system started", "pid", c.pid, "ready_ms", st.ReadyMS, "http", t.HTTP, "nats", t.NATS, "coap", t.CoAP)
	return nil
}

// framing is a goaiot browser URL as Config.OnePerFrame wants it.
func (r *runner) framing(url string) string {
	if !r.cfg.OnePerFrame {
		return url
	}
	return strings.Replace(url, "&batch=1", "", 1)
}

func (r *runner) stop() {
	if r.server != nil {
		if err := r.server.stop(); err != nil {
			r.log.Warn("stopping aiot run", "err", err)
		}
	}
	if r.fleet != nil {
		_ = r.fleet.close()
	}
}

func (r *runner) pid() int {
	if r.server == nil {
		return 0
	}
	return r.server.pid
}

// pids are the processes of the system under test: the self-started
// one's, or the external system's --pids ({0}: nothing to measure).
func (r *runner) pids() []int {
	if r.server == nil && len(r.target.PIDs) > 0 {
		return r.target.PIDs
	}
	return []int{r.pid()}
}

// sampleServer starts measuring the system under test's processes.
func (r *runner) sampleServer() samplers { return sampleAll(r.pids()) }

func (r *runner) scenario(ctx context.Context, s string) ([]Result, error) {
	p := r.cfg.params(s)
	switch s {
	case ScenarioFanout:
		if r.target.CoAP == "" && r.target.NodeURL != "" { // e.g. a Pyaiot without its CoAP gateway
			return r.wsIngest(ctx, p)
		}
		return r.coapIngest(ctx, p)
	case ScenarioCoAP:
		return r.coapIngest(ctx, p)
	case ScenarioDashboard:
		return r.dashboardFanout(ctx, p)
	case ScenarioCommand:
		return r.command(ctx, p)
	case ScenarioScale:
		return r.scale(ctx, p)
	case ScenarioScaleMQTT:
		return r.scaleMQTT(ctx, p)
	case ScenarioScaleWS:
		return r.scaleWS(ctx, p)
	case ScenarioWS:
		return r.wsIngest(ctx, p)
	case ScenarioMQTT:
		return r.mqttIngest(ctx, p)
	case ScenarioMQTTSN:
		return r.mqttsnIngest(ctx, p)
	}
	return nil, fmt.Errorf("no scenario %q", s)
}

// needBrowsers fails when the target has no browser websocket.
func (r *runner) needBrowsers() error {
	if r.target.WSURL == "" {
		return errors.New("no browser websocket: give --http or --ws-url")
	}
	return nil
}

// watcher follows the nodes a browser sees come and go.
type watcher struct {
	prefix string
	mu     sync.Mutex
	online map[string]bool
	outs   atomic.Int64
	// onNew, when set, is told of every new uid of ours (under mu).
	onNew func(uid string)
	// byName: our nodes are known by their "name" resource, the system
	// giving them uids of its own (Pyaiot's websocket gateway); names maps
	// the system's uid to ours.
	byName  bool
	names   map[string]string
	current map[string]string // our id → the system's uid of its latest connection
}

func newWatcher(prefix string) *watcher {
	return &watcher{prefix: prefix, online: make(map[string]bool), names: make(map[string]string), current: make(map[string]string)}
}

func (w *watcher) on(m *wsMessage) {
	if w.byName {
		w.onNamed(m)
		return
	}
	if !strings.HasPrefix(m.UID, w.prefix) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch m.Type {
	case "new":
		was := w.online[m.UID]
		w.online[m.UID] = m.State != "offline"
		if !was && w.onNew != nil {
			w.onNew(m.UID)
		}
	case "out":
		if w.online[m.UID] {
			w.outs.Add(1)
		}
		w.online[m.UID] = false
	}
}

// onNamed is on for nodes known by name: the update of "name" to one of
// our ids brings that node online, the system's "out" for its uid takes it
// away.
func (w *watcher) onNamed(m *wsMessage) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch id := m.dataString(); {
	case m.Type == "update" && m.Endpoint == "name" && strings.HasPrefix(id, w.prefix):
		w.names[m.UID] = id
		w.current[id] = m.UID
		if !w.online[id] {
			w.online[id] = true
			if w.onNew != nil {
				w.onNew(id)
			}
		}
	case m.Type == "out":
		id, ok := w.names[m.UID]
		if !ok {
			return
		}
		delete(w.names, m.UID)
		if w.current[id] != m.UID {
			return // an earlier connection of a node back under a new uid
		}
		if w.online[id] {
			w.outs.Add(1)
		}
		w.online[id] = false
	}
}

// count is the number of our nodes online.
func (w *watcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, on := range w.online {
		if on {
			n++
		}
	}
	return n
}

// waitOnline waits until n nodes are online or timeout.
func (w *watcher) waitOnline(ctx context.Context, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for w.count() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d nodes online after %s", w.count(), n, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// drive sends values at rate for d (or until max values), round robin over
// nodes; send's errors are counted, not fatal.
func drive(ctx context.Context, t *tally, rate float64, d time.Duration, maxValues int64, nodes int,
	send func(i int, res, value string) error) (errs int64) {
	pace(ctx, rate, d, maxValues, func(k int64) {
		i := int(k % int64(nodes))
		res, val := t.next(i)
		if send(i, res, val) != nil {
			errs++
		}
	})
	return errs
}

// pace calls fn(0), fn(1), … at rate per second, for d or count calls,
// whichever ends first (d 0: no time limit).
func pace(ctx context.Context, rate float64, d time.Duration, count int64, fn func(k int64)) {
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var k int64
	for k < count {
		el := time.Since(start)
		if d > 0 && el >= d {
			return
		}
		for due := int64(rate*el.Seconds()) + 1 - k; due > 0 && k < count; due-- {
			fn(k)
			k++
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// drain waits until rs got every value sent (want of them), or nothing
// came for quiet, or limit passed.
func drain(ctx context.Context, rs []*receiver, want int64, quiet, limit time.Duration) {
	start := time.Now()
	last, changed := int64(-1), time.Now()
	for {
		got := received(rs)
		if got >= want {
			return
		}
		if got != last {
			last, changed = got, time.Now()
		}
		if time.Since(changed) > quiet || time.Since(start) > limit {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// lastReceipt is the tally time of the latest value any of rs got.
func lastReceipt(rs []*receiver) int64 {
	var t int64
	for _, r := range rs {
		t = max(t, r.last.Load())
	}
	return t
}

// row turns what rs got of t into a result; began is the tally time the
// sending started, sendEnd when it stopped.
func row(scenario, path string, p params, t *tally, rs []*receiver, began, sendEnd int64, u usage) Result {
	d := account(t, rs)
	end := max(lastReceipt(rs), sendEnd)
	secs := float64(end-began) / 1e9
	res := Result{Scenario: scenario, Path: path, Nodes: p.nodes, Receivers: len(rs), Rate: max(p.rate, 0),
		Seconds: secs, Sent: t.total(), Expected: d.Expected, Delivered: d.Delivered, Superseded: d.Superseded,
		Lost: d.Lost, Duplicates: d.Duplicates, Latency: latency(d.Latency), Server: resource(u)}
	if secs > 0 && len(rs) > 0 {
		res.PerSecond = float64(d.Delivered) / float64(len(rs)) / secs
	}
	res.Spread = spread(rs, secs)
	return res
}

var valueKey = []byte(`"value":"`)

// busTap subscribes to subject on the target's NATS and feeds the values
// of the run to a receiver.
func (r *runner) busTap(t *tally, subject string) (*receiver, func(), error) {
	if r.target.NATS == "" {
		return nil, func() {}, nil
	}
	nc, err := nats.Connect(r.target.NATS, nats.Name("aiot-bench-tap"))
	if err != nil {
		return nil, nil, fmt.Errorf("bus tap: %w", err)
	}
	rcv := newReceiver(t)
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
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
		nc.Close()
		return nil, nil, fmt.Errorf("bus tap: %w", err)
	}
	return rcv, nc.Close, nil
}

func itoa(i int) string { return strconv.Itoa(i) }
