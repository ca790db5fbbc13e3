package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/internal/config"
	"github.com/goaiot/goaiot/internal/origin"
	"github.com/goaiot/goaiot/internal/version"
	"github.com/goaiot/goaiot/internal/wspark"
	"github.com/goaiot/goaiot/webapp"
)

// readBuffer is the size of a browser connection's read buffer.
const readBuffer = 512

// ServiceName is the NATS micro service the dashboard registers.
const ServiceName = "aiot-dashboard"

// Config configures a Dashboard. Zero values take the defaults shown.
type Config struct {
	Conn   *nats.Conn   // required
	Logger *slog.Logger // required
	// Version is announced in "hello" and in `nats micro ls`.
	Version string
	// Stream holds node.>; default bus.NodesStream.
	Stream string
	// AllowOrigins are the origins ("https://host:port", or "*" for any)
	// allowed to open /ws besides the same origin and localhost.
	AllowOrigins []string
	// ReadOnly refuses commands from every browser: all are viewers, logged
	// in or not.
	ReadOnly bool
	// Users may log in (POST /login); nil: no login, browsers are anonymous.
	Users *Users
	// Anonymous is the role of a browser that has not logged in:
	// AnonymousAuto (default), AnonymousViewer, AnonymousOperator or
	// AnonymousNone.
	Anonymous string
	// SessionTTL is how long a login lasts; default 12 h.
	SessionTTL time.Duration
	// MaxSessions bounds the sessions held; default 10 000.
	MaxSessions int
	// LoginRate bounds password checks per second, all browsers together
	// (bcrypt is slow on purpose: this keeps guessing and CPU use bounded);
	// default 5/s with bursts of 10.
	LoginRate float64
	// WebApp is served at /; default webapp.FS().
	WebApp fs.FS

	// CommandTimeout bounds one command, gateway and node included; default
	// 6 s, longer than a gateway's own 5 s so that its answer comes back.
	CommandTimeout time.Duration
	// MaxMessageBytes is the largest frame a browser may send; default 64 KiB.
	MaxMessageBytes int
	// MessageRate and MessageBurst limit the frames per second one browser
	// may send; defaults 20 and 60.
	MessageRate  float64
	MessageBurst int
	// MaxInFlight bounds the commands and history requests one browser has
	// running at once; default 8.
	MaxInFlight int
	// QueueLimit is how many messages may wait for one browser (besides its
	// snapshot) before it is cut off; default 4096.
	QueueLimit int
	// SlowAfter is the queue length from which a browser's updates are
	// coalesced to the latest value per resource; default 256, what one
	// write takes (a browser that gets everything queued at each write is
	// not behind, however fast values come).
	SlowAfter int
	// WriteTimeout cuts off a browser that accepts no data for this long;
	// default 10 s.
	WriteTimeout time.Duration
	// WriteDelay is the least time between two writes to one browser: a
	// browser that is sent more often gets what came meanwhile in the same
	// write (fewer system calls under load; one value at a time when quiet
	// is written at once, and so is an answer to the browser's own request:
	// a command's result, a history). Default 1 ms; negative: none.
	WriteDelay time.Duration
	// PingInterval between pings; a browser silent for 2.5 intervals (no
	// pong) is closed. Default 20 s.
	PingInterval time.Duration
	// MaxBrowsers bounds the connected browsers; default 10 000.
	MaxBrowsers int
	// MaxHistory bounds the points of one history answer; default 1000.
	MaxHistory int
	// LoadTimeout bounds reading the stream at start; default 30 s.
	LoadTimeout time.Duration
	// ForgetAfter: a node offline for longer leaves the index, so that ids
	// that come and go (or are spoofed) do not grow memory or snapshots;
	// its history stays in the stream. 0 keeps every node (`aiot` sets 24 h).
	ForgetAfter time.Duration
	// Readiness says whether the process around the dashboard is ready and
	// what it bound, for /healthz (aiot: every part bound and serving); nil:
	// the dashboard alone, ready once Run has read the stream.
	Readiness func() (ready bool, addrs map[string]string)
}

// setDefaults fills the zero fields (package internal/config: defaults,
// then validate).
func (c *Config) setDefaults() {
	config.Default(&c.Stream, bus.NodesStream)
	config.Default(&c.Version, "dev")
	config.Default(&c.CommandTimeout, 6*time.Second)
	config.Default(&c.MaxMessageBytes, 64<<10)
	config.Default(&c.MessageRate, 20)
	config.Default(&c.MessageBurst, 60)
	config.Default(&c.MaxInFlight, 8)
	config.Default(&c.QueueLimit, 4096)
	config.Default(&c.SlowAfter, writeBatch)
	config.Default(&c.WriteTimeout, 10*time.Second)
	config.Default(&c.WriteDelay, time.Millisecond)
	config.Default(&c.PingInterval, 20*time.Second)
	config.Default(&c.MaxBrowsers, 10_000)
	config.Default(&c.MaxHistory, 1000)
	config.Default(&c.LoadTimeout, 30*time.Second)
	config.Default(&c.Anonymous, AnonymousAuto)
	config.Default(&c.SessionTTL, 12*time.Hour)
	config.Default(&c.MaxSessions, 10_000)
	config.Default(&c.LoginRate, 5)
	if c.WebApp == nil {
		c.WebApp = webapp.FS()
	}
}

func (c *Config) validate() error {
	switch {
	case c.Conn == nil:
		return errors.New("dashboard: no nats connection")
	case c.Logger == nil:
		return errors.New("dashboard: no logger")
	case c.CommandTimeout < 0 || c.WriteTimeout < 0 || c.PingInterval < 0 || c.LoadTimeout < 0 || c.SessionTTL < 0 || c.ForgetAfter < 0:
		return errors.New("dashboard: negative duration")
	case c.MaxMessageBytes < 0 || c.MessageRate < 0 || c.MessageBurst < 0 || c.MaxInFlight < 0 ||
		c.QueueLimit < 0 || c.SlowAfter < 0 || c.MaxBrowsers < 0 || c.MaxHistory < 0 || c.MaxSessions < 0 || c.LoginRate < 0:
		return errors.New("dashboard: negative limit")
	case c.Anonymous != AnonymousAuto && c.Anonymous != AnonymousViewer && c.Anonymous != AnonymousOperator && c.Anonymous != AnonymousNone:
		return fmt.Errorf("dashboard: anonymous role %q: want auto, viewer, operator or none", c.Anonymous)
	case c.SlowAfter >= c.QueueLimit:
		return fmt.Errorf("dashboard: slow-after %d must be below the queue limit %d", c.SlowAfter, c.QueueLimit)
	}
	_, err := origin.New(c.AllowOrigins, true)
	return err
}

// Dashboard is the websocket fan-out service and the web app server.
type Dashboard struct {
	cfg      Config
	log      *slog.Logger
	nc       *nats.Conn
	m        *metrics
	hub      *hub
	feed     *feed
	origins  *origin.Policy
	upgrader websocket.Upgrader
	rbufs    *wspark.Buffers // read buffers, lent while a browser's frames are read
	poller   *wspark.Poller  // where idle browsers wait, while Run runs
	wbufs    sync.Pool       // *[]byte: the writers' batch buffers (client.go)
	batches  sync.Pool       // *[]*frame: the writers' lists of frames taken
	sessions *sessions
	logins   *rate.Limiter // password checks

	ctx    context.Context // ends when Run returns; browsers and commands stop
	cancel context.CancelFunc
	ready  chan struct{} // closed once the stream was read at start

	browsers atomic.Int64
	clients  sync.WaitGroup
	mu       sync.Mutex
	conns    map[*client]struct{}
}

// New validates cfg and builds the dashboard; Run starts it.
func New(cfg Config) (*Dashboard, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	origins, _ := origin.New(cfg.AllowOrigins, true) // validated above
	m := newMetrics()
	d := &Dashboard{
		cfg: cfg, log: cfg.Logger, nc: cfg.Conn, m: m, hub: newHub(m), origins: origins,
		sessions: newSessions(cfg.SessionTTL, cfg.MaxSessions),
		logins:   rate.NewLimiter(rate.Limit(cfg.LoginRate), max(1, int(2*cfg.LoginRate))),
		ready:    make(chan struct{}),
		conns:    make(map[*client]struct{}),
	}
	d.feed = &feed{d: d}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.wbufs.New = func() any { return new([]byte) }
	d.batches.New = func() any {
		b := make([]*frame, 0, writeBatch)
		return &b
	}
	// A small read buffer (browsers send a few small frames; a larger one
	// is read in several calls) instead of the HTTP server's 4 KiB, lent
	// by rbufs only while the browser's frames are read (ReadBufferSize 0:
	// gorilla reads through the reader of the connection wspark hijacks),
	// and a write buffer taken from the pool only while gorilla writes
	// (control frames, compressed messages): an idle browser holds little.
	d.rbufs = wspark.NewBuffers(readBuffer)
	d.poller = wspark.NewPoller()
	d.upgrader = websocket.Upgrader{
		HandshakeTimeout:  10 * time.Second,
		WriteBufferPool:   &sync.Pool{},
		EnableCompression: true,
		CheckOrigin:       d.checkOrigin,
		Error:             d.handshakeError,
	}
	return d, nil
}

// Run subscribes to node.>, reads the stream, registers the micro service
// and serves browsers until ctx ends; then it closes every browser.
func (d *Dashboard) Run(ctx context.Context) error {
	defer d.cancel()
	defer d.runPoller(ctx)() // stops after closeAll
	stopFlush, flusherDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(flusherDone)
		d.hub.run(stopFlush)
	}()
	defer func() {
		close(stopFlush)
		<-flusherDone
	}()
	status := d.nc.StatusChanged(nats.CONNECTED)
	defer d.nc.RemoveStatusListener(status)
	d.feed.pause()
	// node.check is not shown: not subscribed to (every node beacons on it).
	sub, err := d.nc.Subscribe(bus.SubjectNodeEvents, d.feed.onMsg)
	if err != nil {
		return fmt.Errorf("dashboard: subscribe: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := sub.SetPendingLimits(1<<20, 256<<20); err != nil {
		return fmt.Errorf("dashboard: pending limits: %w", err)
	}
	stopSites, err := d.subscribeSites()
	if err != nil {
		return err
	}
	defer stopSites()
	svc, err := d.addService()
	if err != nil {
		return err
	}
	defer func() { _ = svc.Stop() }()
	if err := d.syncFeed(ctx); err != nil {
		d.log.Error("reading node state from the stream", "err", err)
	}
	close(d.ready)
	var sweep <-chan time.Time
	if d.cfg.ForgetAfter > 0 {
		t := time.NewTicker(min(d.cfg.ForgetAfter/10, time.Minute))
		defer t.Stop()
		sweep = t.C
	}
	for {
		select {
		case <-ctx.Done():
			d.closeAll()
			return nil
		case now := <-sweep:
			if n := d.hub.forget(now.Add(-d.cfg.ForgetAfter)); n > 0 {
				d.log.Info("forgot nodes offline for longer than the retention", "nodes", n, "forget_after", d.cfg.ForgetAfter)
			}
		case <-status:
			// Live events sent while disconnected are lost: read them back.
			d.log.Info("nats reconnected: reading node state again")
			if err := d.syncFeed(ctx); err != nil {
				d.log.Error("reading node state from the stream", "err", err)
			}
		}
	}
}

func (d *Dashboard) syncFeed(ctx context.Context) error {
	fctx, cancel := context.WithTimeout(ctx, d.cfg.LoadTimeout)
	defer cancel()
	if err := d.nc.FlushWithContext(fctx); err != nil {
		d.feed.resume() // not connected: the next reconnect syncs
		return fmt.Errorf("flush: %w", err)
	}
	return d.feed.sync(ctx)
}

// runPoller runs the poller where idle browsers wait until the returned
// func is called; that func waits for it to stop. If the poller fails,
// browsers wait with a goroutine each.
func (d *Dashboard) runPoller(ctx context.Context) (stop func()) {
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := d.poller.Run(pctx); err != nil {
			d.log.Warn("idle browsers wait with a goroutine each", "err", err)
		}
	}()
	<-d.poller.Ready()
	return func() {
		cancel()
		<-done
	}
}

// closeAll closes every browser (1001 going away) and waits for them.
func (d *Dashboard) closeAll() {
	d.cancel()
	d.mu.Lock()
	for c := range d.conns {
		c.cut(cutStopping)
	}
	d.mu.Unlock()
	d.clients.Wait()
}

// Route is an HTTP handler and the pattern to serve it at.
type Route struct {
	Pattern string
	Handler http.Handler
}

// Routes are the dashboard's HTTP handlers: /ws, /login, /logout,
// /healthz, /metrics and the web app at /.
func (d *Dashboard) Routes() []Route {
	return []Route{
		{"/ws", http.HandlerFunc(d.serveWS)},
		{"/login", http.HandlerFunc(d.serveLogin)},
		{"/logout", http.HandlerFunc(d.serveLogout)},
		{"/healthz", http.HandlerFunc(d.serveHealth)},
		{"/metrics", promhttp.HandlerFor(d.m.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelWarn)})},
		{"/", http.FileServerFS(d.cfg.WebApp)},
	}
}

// Handler serves Routes on a mux of its own (for tests and embedding).
func (d *Dashboard) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range d.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	return mux
}

// Health is the body of GET /healthz.
type Health struct {
	Status   string `json:"status"` // "ok", "starting" or "degraded"
	NATS     string `json:"nats"`   // the connection state, e.g. "CONNECTED"
	Browsers int64  `json:"browsers"`
	Nodes    int    `json:"nodes"`
	Online   int    `json:"online"`
	// Ready: every part of the process has bound its listeners and serves
	// (Config.Readiness); Addrs are the bound addresses by listener, as in
	// `aiot --ready-file` (package internal/readiness).
	Ready bool              `json:"ready"`
	Addrs map[string]string `json:"addrs,omitempty"`
}

// Ready is closed once Run has subscribed and read the stream: snapshots
// are complete from then on.
func (d *Dashboard) Ready() <-chan struct{} { return d.ready }

// readiness is the dashboard's own readiness and, with Config.Readiness,
// the process's.
func (d *Dashboard) readiness() (bool, map[string]string) {
	select {
	case <-d.ready:
	default:
		return false, nil
	}
	if d.cfg.Readiness == nil {
		return true, nil
	}
	return d.cfg.Readiness()
}

// serveHealth answers 200 once ready and while connected to NATS: 503
// "starting" before, "degraded" when the connection is down; the body
// always says why.
func (d *Dashboard) serveHealth(w http.ResponseWriter, _ *http.Request) {
	known, online := d.hub.stats()
	h := Health{Status: "ok", NATS: d.nc.Status().String(), Browsers: d.browsers.Load(), Nodes: known, Online: online}
	h.Ready, h.Addrs = d.readiness()
	code := http.StatusOK
	switch {
	case !d.nc.IsConnected():
		h.Status, code = "degraded", http.StatusServiceUnavailable
	case !h.Ready:
		h.Status, code = "starting", http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(h)
}

// Stats is what `nats micro stats aiot-dashboard` shows.
type Stats struct {
	Browsers int64 `json:"browsers"`
	Nodes    int   `json:"nodes"`
	Online   int   `json:"online"`
}

func (d *Dashboard) stats() Stats {
	known, online := d.hub.stats()
	return Stats{Browsers: d.browsers.Load(), Nodes: known, Online: online}
}

// addService registers the NATS micro service, with an endpoint "stats" on
// aiot.aiot-dashboard.stats that answers Stats.
func (d *Dashboard) addService() (micro.Service, error) {
	svc, err := micro.AddService(d.nc, micro.Config{
		Name:         ServiceName,
		Version:      version.Version,
		Description:  "goaiot dashboard: websocket fan-out to browsers (" + d.cfg.Version + ")",
		Metadata:     map[string]string{"version": d.cfg.Version},
		StatsHandler: func(*micro.Endpoint) any { return d.stats() },
	})
	if err != nil {
		return nil, fmt.Errorf("micro service %s: %w", ServiceName, err)
	}
	err = svc.AddEndpoint("stats", micro.HandlerFunc(func(r micro.Request) {
		_ = r.RespondJSON(d.stats())
	}), micro.WithEndpointSubject("aiot."+ServiceName+".stats"), micro.WithEndpointQueueGroupDisabled())
	if err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("micro service %s: %w", ServiceName, err)
	}
	return svc, nil
}
