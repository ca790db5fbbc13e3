package ws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/gateways/presence"
	"github.com/goaiot/goaiot/internal/config"
	"github.com/goaiot/goaiot/internal/loglimit"
	"github.com/goaiot/goaiot/internal/origin"
	"github.com/goaiot/goaiot/internal/shrink"
	"github.com/goaiot/goaiot/internal/sourcelimit"
	"github.com/goaiot/goaiot/internal/wspark"
)

// ServiceName is the NATS micro service the gateway registers.
const ServiceName = "aiot-ws"

// Config configures a Gateway. Zero durations and limits take the defaults
// given beside each field.
type Config struct {
	Conn    *nats.Conn
	Logger  *slog.Logger
	Gateway string // this gateway's name in $state
	Site    string
	// NodeTimeout: a node that sends nothing and answers no ping for longer
	// goes offline. Default 120 s.
	NodeTimeout time.Duration
	// PingInterval between pings to each node. Default NodeTimeout/3, at most 30 s.
	PingInterval time.Duration
	// CommandTimeout bounds a command's wait for the node's update. Default 5 s.
	CommandTimeout time.Duration
	// MaxFrameBytes is the largest frame accepted. Default 64 KiB.
	MaxFrameBytes int64
	// FrameRate is the sustained frames per second allowed per node, with
	// bursts of FrameBurst. Defaults 50/s and 200.
	FrameRate  float64
	FrameBurst int
	// MaxResources caps the resources of one node. Default
	// bus.DefaultMaxResources (256).
	MaxResources int
	// MaxValueBytes caps one value as published on the bus (its text
	// wrapped in bus.Value); larger values are skipped. Default
	// bus.DefaultMaxValueBytes (4096).
	MaxValueBytes int
	// ValueRate is the sustained values per second one node may publish,
	// with bursts of ValueBurst; values past it are skipped. Defaults
	// bus.DefaultNodeValueRate and bus.DefaultNodeValueBurst; ValueRate -1: no limit.
	ValueRate  float64
	ValueBurst int
	// NewIDsPerSource caps the handshakes per second, from one source IP
	// address, of ids not connected here (generated ids included); past it
	// the handshake gets 429. Token-proven ids are not counted. Default
	// bus.DefaultNewNodesPerSource; -1: no limit.
	NewIDsPerSource float64
	// AllowOrigins are browser origins (scheme://host[:port], or "*" for
	// any) let in besides the request's own host; requests without an
	// Origin always pass. See origin.Policy (without loopback pages).
	AllowOrigins []string
	// Tokens lists the ids that may connect only with their token.
	Tokens Tokens
	// TakeoverWait bounds the ping that decides whether a connected id's
	// socket is dead when a newer connection claims the id. Default 2 s.
	TakeoverWait time.Duration
	// MaxNodes caps the nodes connected at once. Default presence's (100 000).
	MaxNodes int
	// Claims is the table of node ownership shared by the trackers of
	// one process (presence.NewClaims); nil: a table of the gateway's own.
	Claims *presence.Claims
	// SendQueue is the number of frames queued to one node. Default 64.
	SendQueue int
}

// setDefaults fills the zero fields (package internal/config: defaults,
// then validate).
func (c *Config) setDefaults() {
	config.Default(&c.NodeTimeout, 120*time.Second)
	config.Default(&c.PingInterval, min(c.NodeTimeout/3, 30*time.Second))
	config.Default(&c.CommandTimeout, 5*time.Second)
	config.Default(&c.MaxFrameBytes, 64<<10)
	config.Default(&c.FrameRate, 50)
	config.Default(&c.FrameBurst, 200)
	config.Default(&c.MaxResources, bus.DefaultMaxResources)
	config.Default(&c.MaxValueBytes, bus.DefaultMaxValueBytes)
	config.Default(&c.ValueRate, bus.DefaultNodeValueRate)
	config.Default(&c.ValueBurst, bus.DefaultNodeValueBurst)
	config.Default(&c.NewIDsPerSource, bus.DefaultNewNodesPerSource)
	config.Default(&c.TakeoverWait, 2*time.Second)
	config.Default(&c.SendQueue, 64)
}

// validate checks the filled config.
func (c *Config) validate() error {
	switch {
	case c.Conn == nil:
		return errors.New("ws: no nats connection")
	case c.Logger == nil:
		return errors.New("ws: no logger")
	case c.Gateway == "":
		return errors.New("ws: no gateway name")
	case c.NodeTimeout < 0 || c.PingInterval < 0 || c.CommandTimeout < 0 || c.TakeoverWait < 0:
		return errors.New("ws: negative duration")
	case c.MaxFrameBytes < 0 || c.FrameRate < 0 || c.FrameBurst < 0 || c.MaxResources < 0 || c.MaxNodes < 0 || c.SendQueue < 0,
		c.MaxValueBytes < 0 || c.ValueBurst < 0:
		return errors.New("ws: negative limit")
	case c.ValueRate < 0 && c.ValueRate != config.Unlimited, c.NewIDsPerSource < 0 && c.NewIDsPerSource != config.Unlimited:
		return errors.New("ws: negative rate: want -1 (no limit), 0 (default) or more")
	case c.PingInterval >= c.NodeTimeout:
		return fmt.Errorf("ws: ping interval %s must be shorter than the node timeout %s", c.PingInterval, c.NodeTimeout)
	}
	if _, err := origin.New(c.AllowOrigins, false); err != nil {
		return fmt.Errorf("ws: %w", err)
	}
	return nil
}

// Stats counts what the gateway did; `nats micro stats aiot-ws` shows it.
type Stats struct {
	presence.Stats
	Connections, Frames, Values, Skipped, BadFrames int64
	// Takeovers counts connections that replaced an older one of their id.
	Takeovers int64
	// Refusals counts refused handshakes and skipped values by reason:
	// origin, bad_id, token, new_ids_rate, id_in_use, value_too_large,
	// value_rate, too_many_resources, bad_resource.
	Refusals map[string]int64
}

// Gateway serves websocket nodes. It is an http.Handler for /node.
type Gateway struct {
	cfg      Config
	log      *slog.Logger
	tracker  *presence.Tracker
	upgrader websocket.Upgrader
	bufs     *wspark.Buffers // read buffers, lent while a node's frames are read
	poller   *wspark.Poller  // where idle nodes wait, while Run runs
	origins  *origin.Policy
	newIDs   *sourcelimit.Limiter
	lines    *loglimit.Limit // refusal lines, bounded
	ready    chan struct{}   // closed once Run has subscribed

	mu       sync.Mutex
	sessions map[string]*session
	// sessionsPeak lets sessions give memory back after id churn (detach)
	sessionsPeak shrink.Peak
	closed       bool
	wg           sync.WaitGroup

	conns, frames, values, skipped, bad, takeovers atomic.Int64
	refused                                        refusals
}

// New validates cfg.
func New(cfg Config) (*Gateway, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, sessions: make(map[string]*session), ready: make(chan struct{}),
		newIDs: sourcelimit.New(cfg.NewIDsPerSource, int(cfg.NewIDsPerSource)), lines: loglimit.New(cfg.Logger, 10, "websocket node refusals")}
	g.origins, _ = origin.New(cfg.AllowOrigins, false) // validated by validate
	tr, err := presence.New(presence.Config{
		Conn: cfg.Conn, Logger: cfg.Logger, Protocol: bus.ProtocolWebSocket,
		Gateway: cfg.Gateway, Site: cfg.Site, Timeout: cfg.NodeTimeout,
		Commands: g.command, CommandTimeout: cfg.CommandTimeout,
		OnExpire: g.expired, MaxNodes: cfg.MaxNodes, Claims: cfg.Claims,
	})
	if err != nil {
		return nil, fmt.Errorf("ws: %w", err)
	}
	g.tracker = tr
	g.bufs = wspark.NewBuffers(readBufferSize)
	g.poller = wspark.NewPoller()
	g.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// A node's frames are read through a small buffer, whatever their
		// size (MaxFrameBytes bounds them), lent by g.bufs only while they
		// are read (ReadBufferSize 0: gorilla reads through the reader of
		// the connection wspark hijacks). The write buffer is taken from a
		// pool for each frame sent. So idle nodes hold neither (see doc.go,
		// "Memory per node").
		WriteBufferSize: writeBufferSize,
		WriteBufferPool: &sync.Pool{},
		// ServeHTTP checked the origin already, with a reason and a counter.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return g, nil
}

// The websocket buffers: read per connection, write per frame being sent.
const (
	readBufferSize  = 512
	writeBufferSize = 4096
)

// Run serves the bus side (commands, gateway.check, discover requests) until
// ctx ends; then it closes every node's socket with 1001 and publishes the
// nodes offline.
func (g *Gateway) Run(ctx context.Context) error {
	svc, err := g.addService()
	if err != nil {
		return fmt.Errorf("ws: %w", err)
	}
	defer func() { _ = svc.Stop() }()
	var subs []*nats.Subscription
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	for subject, h := range map[string]nats.MsgHandler{
		bus.SubjectGatewayCheck:  g.onGatewayCheck,
		bus.GatewayDiscover("*"): g.onDiscover,
	} {
		sub, err := g.cfg.Conn.Subscribe(subject, h)
		if err != nil {
			return fmt.Errorf("ws: subscribe %s: %w", subject, err)
		}
		subs = append(subs, sub)
	}
	// The tracker outlives ctx a little: sessions closing below still Forget
	// their nodes through it.
	tctx, stopTracker := context.WithCancel(context.WithoutCancel(ctx))
	trackerDone := make(chan error, 1)
	go func() { trackerDone <- g.tracker.Run(tctx) }()
	stopPoller := g.runPoller(ctx)
	g.log.Info("ws gateway running", "gateway", g.cfg.Gateway, "node_timeout", g.cfg.NodeTimeout)
	close(g.ready)

	<-ctx.Done()
	g.closeAll()
	stopPoller()
	stopTracker()
	return <-trackerDone
}

// runPoller runs the poller where idle nodes wait until the returned func
// is called (after the sessions closed); it waits for it to stop. If the
// poller fails, nodes wait with a goroutine each.
func (g *Gateway) runPoller(ctx context.Context) (stop func()) {
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := g.poller.Run(pctx); err != nil {
			g.log.Warn("idle nodes wait with a goroutine each", "err", err)
		}
	}()
	<-g.poller.Ready()
	return func() {
		cancel()
		<-done
	}
}

// Ready is closed once Run has subscribed to discover and gateway.check
// requests and registered its service: nodes connecting from then on are
// served in full.
func (g *Gateway) Ready() <-chan struct{} { return g.ready }

// Stats returns the counters.
func (g *Gateway) Stats() Stats {
	return Stats{Stats: g.tracker.Stats(), Connections: g.conns.Load(), Frames: g.frames.Load(),
		Values: g.values.Load(), Skipped: g.skipped.Load(), BadFrames: g.bad.Load(),
		Takeovers: g.takeovers.Load(), Refusals: g.refused.snapshot()}
}

// Nodes lists the connected nodes.
func (g *Gateway) Nodes() []presence.Node { return g.tracker.Nodes() }

// detach unregisters s and reports whether it still owned its node.
func (g *Gateway) detach(s *session) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sessions[s.id] != s {
		return false
	}
	delete(g.sessions, s.id)
	g.sessions = shrink.Map(g.sessions, &g.sessionsPeak)
	return true
}

func (g *Gateway) session(id string) *session {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sessions[id]
}

func (g *Gateway) all() []*session {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*session, 0, len(g.sessions))
	for _, s := range g.sessions {
		out = append(out, s)
	}
	return out
}

func (g *Gateway) closeAll() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	for _, s := range g.all() {
		s.closeWith(websocket.CloseGoingAway, "gateway stopping")
	}
	g.wg.Wait()
}

// expired closes the socket of a node the tracker timed out.
func (g *Gateway) expired(id string) {
	if s := g.session(id); s != nil {
		s.closeWith(websocket.CloseGoingAway, "node timeout")
	}
}

func (g *Gateway) onGatewayCheck(*nats.Msg) {
	for _, s := range g.all() {
		_ = g.tracker.PublishCheck(s.id)
	}
}

func (g *Gateway) onDiscover(m *nats.Msg) {
	sub, err := bus.ParseSubject(m.Subject)
	if err != nil {
		return
	}
	s := g.session(sub.Node)
	if s == nil {
		return // another gateway's node
	}
	if string(m.Data) == bus.DiscoverResources {
		s.publishResources()
		return
	}
	s.discover()
}

// command carries out gateway.<node>.<res>.set: it sends the command and
// waits for the node's update of res.
func (g *Gateway) command(ctx context.Context, node, res string, payload []byte) error {
	s := g.session(node)
	if s == nil {
		return fmt.Errorf("node %s: not connected", node)
	}
	return s.command(ctx, res, string(payload))
}

// commandFrame is a command sent to a node.
type commandFrame struct {
	Endpoint string `json:"endpoint"`
	Payload  string `json:"payload"`
}

// discoverFrame asks a node for all its values.
var discoverFrame = mustJSON(map[string]string{"request": "discover"})

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
