package coap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/pkg/runner/periodic"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpServer "github.com/plgd-dev/go-coap/v3/udp/server"
	"golang.org/x/sync/errgroup"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/gateways/persist"
	"github.com/goaiot/goaiot/gateways/presence"
	"github.com/goaiot/goaiot/internal/config"
	"github.com/goaiot/goaiot/internal/loglimit"
	"github.com/goaiot/goaiot/internal/shrink"
	"github.com/goaiot/goaiot/internal/sourcelimit"
)

// DefaultNodePort is where RIOT's gcoap server listens on every node.
const DefaultNodePort = 5683

// SourcePort as Config.NodePort makes the gateway reach each node at the
// source port of its last /alive (NAT, several nodes on one address, tests).
const SourcePort = -1

// ServiceName is the NATS micro service name of CoAP gateways.
const ServiceName = "aiot-coap"

// Config configures a Gateway. Conn, Logger, Gateway and one of Listen or
// DTLSListen are required.
type Config struct {
	Conn   *nats.Conn
	Logger *slog.Logger
	// Listen is the plain CoAP UDP address ("[::]:5683", "127.0.0.1:0");
	// empty disables plain CoAP.
	Listen string
	// DTLSListen is the CoAP over DTLS (PSK) address; empty disables it.
	DTLSListen string
	// DTLSKeys are the pre-shared keys by identity (see LoadPSKFile).
	// Required with DTLSListen.
	DTLSKeys PSKeys
	// NodePort is the port of the nodes' own CoAP servers; 0 means
	// DefaultNodePort, SourcePort the source port of their /alive.
	NodePort int
	// Gateway is this gateway's name in $state; Site its site.
	Gateway, Site string
	// NodeTimeout: a node silent for longer goes offline. Default 120 s.
	NodeTimeout time.Duration
	// CommandTimeout bounds one PUT to a node. Default 5 s.
	CommandTimeout time.Duration
	// RequestTimeout bounds each discovery GET. Default 5 s.
	RequestTimeout time.Duration
	// SourceRate caps the POSTs accepted per second from one source IP
	// address (bursts of twice that); more are answered 4.29. Default
	// 1 000; -1: no limit.
	SourceRate float64
	// PeerIdle evicts go-coap's per-peer state after this much silence.
	// Default 10 s (shorter than RIOT's 30 s beacon).
	PeerIdle time.Duration
	// QuietPeerIdle evicts it sooner for a plain CoAP peer that only sent
	// NON requests and was sent none (see doc.go, "Memory per peer").
	// Default 500 ms (a node sending faster keeps its peer); negative:
	// PeerIdle.
	QuietPeerIdle time.Duration
	// Handlers caps the peers' first messages handled at once (see doc.go,
	// "Memory per peer"). Default 64; negative: every message on go-coap's
	// goroutine of its peer (a deeper stack per peer).
	Handlers int
	// MaxNodes caps the nodes owned. Default 100 000.
	MaxNodes int
	// Claims is the table of node ownership shared by the trackers of
	// one process (presence.NewClaims); nil: a table of the gateway's own.
	Claims *presence.Claims
	// MaxDiscoveries caps discoveries running at once. Default 32.
	MaxDiscoveries int
	// DiscoveryRate caps the discoveries started per second toward one
	// address (IPv4, or IPv6 /64), bursts of twice that, so that spoofed
	// /alive beacons cannot turn the gateway into a reflector; a deferred
	// discovery is tried at the node's next beacon. Default 10; negative:
	// no limit.
	DiscoveryRate float64
	// PersistDelay is how soon a change of the node table (source ↔ uid)
	// reaches the NODE_TABLES bucket (see doc.go, "Restarts"). Default
	// 100 ms; negative: the table is not persisted.
	PersistDelay time.Duration
}

func (c *Config) validate() error {
	switch {
	case c.Conn == nil:
		return errors.New("coap: no nats connection")
	case c.Logger == nil:
		return errors.New("coap: no logger")
	case c.Gateway == "":
		return errors.New("coap: no gateway name")
	case c.Listen == "" && c.DTLSListen == "":
		return errors.New("coap: neither a listen nor a dtls listen address")
	case c.DTLSListen != "" && len(c.DTLSKeys) == 0:
		return errors.New("coap: dtls listen address without pre-shared keys")
	case c.NodePort < SourcePort || c.NodePort > 65535:
		return fmt.Errorf("coap: node port %d: want 1-65535, 0 (default) or SourcePort", c.NodePort)
	case c.NodeTimeout < 0 || c.CommandTimeout < 0 || c.RequestTimeout < 0 || c.PeerIdle < 0:
		return errors.New("coap: negative duration")
	case c.SourceRate < 0 && c.SourceRate != config.Unlimited:
		return errors.New("coap: negative source rate: want -1 (no limit), 0 (default) or more")
	}
	for _, a := range []string{c.Listen, c.DTLSListen} {
		if a == "" {
			continue
		}
		if _, err := net.ResolveUDPAddr("udp", a); err != nil {
			return fmt.Errorf("coap: listen address %q: %w", a, err)
		}
	}
	return nil
}

// setDefaults fills the zero fields (package internal/config: defaults,
// then validate).
func (c *Config) setDefaults() {
	if c.NodePort == 0 {
		c.NodePort = DefaultNodePort
	}
	if c.NodeTimeout == 0 {
		c.NodeTimeout = 120 * time.Second
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = 5 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.PeerIdle == 0 {
		// Shorter than RIOT's 30 s beacon: a held peer costs a goroutine and
		// its state, and beacons come from a fresh port anyway.
		c.PeerIdle = 10 * time.Second
	}
	switch {
	case c.QuietPeerIdle == 0:
		c.QuietPeerIdle = min(500*time.Millisecond, c.PeerIdle)
	case c.QuietPeerIdle < 0 || c.QuietPeerIdle > c.PeerIdle:
		c.QuietPeerIdle = c.PeerIdle
	}
	if c.Handlers == 0 {
		c.Handlers = 64
	}
	if c.SourceRate == 0 {
		c.SourceRate = 1000
	}
	if c.DiscoveryRate == 0 {
		c.DiscoveryRate = 10
	}
	if c.MaxDiscoveries == 0 {
		c.MaxDiscoveries = 32
	}
}

// Stats counts what a gateway did.
type Stats struct {
	presence.Stats
	Beacons, Values, Rejected, Discovered, DiscoveryFailures, Notifications int64
	// Limited counts POSTs refused because their source was over SourceRate.
	Limited int64
	// DiscoveriesDeferred counts discoveries put off because their
	// destination was over DiscoveryRate.
	DiscoveriesDeferred int64
	// Table counts the node table kept in NODE_TABLES (see doc.go).
	Table persist.Stats
	// Peers is how many peers go-coap holds state for now (see doc.go,
	// "Memory per peer").
	Peers int64
}

// Gateway is the CoAP gateway: it serves /alive and /server, discovers and
// observes nodes, and carries out commands on them.
type Gateway struct {
	cfg     Config
	log     *slog.Logger
	bad     *loglimit.Limit // lines about bad input
	limiter *sourcelimit.Limiter
	// toward bounds the discoveries started per destination (DiscoveryRate).
	toward  *sourcelimit.Limiter
	tracker *presence.Tracker
	table   *persist.Table[nodeEntry] // nil: not persisted

	ready    chan struct{}
	work     *handlers // runs go-coap's handlers (peers.go)
	udpSrv   *udpServer.Server
	addr     net.Addr
	dtlsAddr net.Addr

	mu       sync.Mutex
	runCtx   context.Context
	nodes    map[string]*node  // by uid
	bySource map[string]string // source key → uid
	// peaks of nodes and bySource, so that they give memory back after id
	// churn (see dropLocked)
	nodesPeak, sourcesPeak shrink.Peak
	// waiting are the nodes whose discovery waits for one of the
	// MaxDiscoveries slots (from head on), discoverers the slots taken
	waiting     []*node
	head        int
	discoverers int

	beacons, values, rejected, discovered, discoveryFailures, notifications, limited, deferred, peers atomic.Int64
}

// New validates cfg and builds the gateway; Run starts it.
func New(cfg Config) (*Gateway, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	g := &Gateway{
		cfg:      cfg,
		log:      cfg.Logger,
		bad:      loglimit.New(cfg.Logger, 20, "bad coap requests"),
		limiter:  sourcelimit.New(cfg.SourceRate, int(2*cfg.SourceRate)),
		toward:   sourcelimit.New(cfg.DiscoveryRate, int(2*cfg.DiscoveryRate)),
		ready:    make(chan struct{}),
		work:     newHandlers(),
		nodes:    make(map[string]*node),
		bySource: make(map[string]string),
	}
	t, err := presence.New(presence.Config{
		Conn: cfg.Conn, Logger: cfg.Logger, Protocol: bus.ProtocolCoAP, Gateway: cfg.Gateway, Site: cfg.Site,
		Timeout: cfg.NodeTimeout, Commands: g.command, CommandTimeout: cfg.CommandTimeout,
		OnExpire: g.expired, MaxNodes: cfg.MaxNodes, Claims: cfg.Claims,
	})
	if err != nil {
		return nil, fmt.Errorf("coap: %w", err)
	}
	g.tracker = t
	if cfg.PersistDelay >= 0 {
		if g.table, err = g.newTable(); err != nil {
			return nil, fmt.Errorf("coap: %w", err)
		}
	}
	return g, nil
}

// Ready is closed once the listeners are bound (Addr and DTLSAddr are set).
func (g *Gateway) Ready() <-chan struct{} { return g.ready }

// Addr is the bound plain CoAP address, nil before Ready or when disabled.
func (g *Gateway) Addr() net.Addr {
	select {
	case <-g.ready:
		return g.addr
	default:
		return nil
	}
}

// DTLSAddr is the bound DTLS address, nil before Ready or when disabled.
func (g *Gateway) DTLSAddr() net.Addr {
	select {
	case <-g.ready:
		return g.dtlsAddr
	default:
		return nil
	}
}

// Nodes lists the nodes this gateway owns.
func (g *Gateway) Nodes() []presence.Node { return g.tracker.Nodes() }

// Stats returns the gateway's counters.
func (g *Gateway) Stats() Stats {
	return Stats{Stats: g.tracker.Stats(), Beacons: g.beacons.Load(), Values: g.values.Load(),
		Rejected: g.rejected.Load(), Discovered: g.discovered.Load(), DiscoveryFailures: g.discoveryFailures.Load(),
		Notifications: g.notifications.Load(), Limited: g.limited.Load(), DiscoveriesDeferred: g.deferred.Load(),
		Table: g.table.Stats(), Peers: g.peers.Load()}
}

// Run binds the listeners and serves until ctx ends; then every owned node
// is published offline.
func (g *Gateway) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g.mu.Lock()
	g.runCtx = ctx
	g.mu.Unlock()
	restored := g.restore(ctx)

	grp, gctx := errgroup.WithContext(ctx)
	workers := g.work.run(gctx, max(g.cfg.Handlers, 0))
	defer func() { cancel(); workers.Wait() }() // an early return has no grp.Wait to end gctx
	var stops []func()
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	if g.cfg.Listen != "" {
		stop, err := g.serveUDP(gctx, grp)
		if err != nil {
			return err
		}
		stops = append(stops, stop)
	}
	if g.cfg.DTLSListen != "" {
		stop, err := g.serveDTLS(gctx, grp)
		if err != nil {
			return err
		}
		stops = append(stops, stop)
	}
	sub, err := g.cfg.Conn.Subscribe(bus.GatewayDiscover("*"), g.handleDiscover)
	if err != nil {
		return fmt.Errorf("coap: subscribe discover: %w", err)
	}
	stops = append(stops, func() { _ = sub.Unsubscribe() })
	svc, err := g.tracker.AddService(ServiceName)
	if err != nil {
		return fmt.Errorf("coap: %w", err)
	}
	stops = append(stops, func() { _ = svc.Stop() })
	close(g.ready)
	g.log.Info("coap gateway listening", "udp", g.addr, "dtls", g.dtlsAddr, "node_port", g.nodePortText())
	grp.Go(func() error { return g.tracker.Run(gctx) })
	grp.Go(func() error { return g.table.Run(gctx) })
	if restored > 0 {
		grp.Go(func() error { g.forgetSilentRestored(gctx); return nil })
	}
	grp.Go(func() error {
		<-gctx.Done()
		for _, stop := range stops {
			stop()
		}
		stops = nil
		return nil
	})
	err = grp.Wait()
	g.flushTable()
	return err
}

func (g *Gateway) nodePortText() string {
	if g.cfg.NodePort == SourcePort {
		return "source"
	}
	return fmt.Sprint(g.cfg.NodePort)
}

// coapErrors logs what go-coap drops before any handler runs: malformed or
// oversized datagrams, failed sends.
func (g *Gateway) coapErrors(err error) {
	g.rejected.Add(1)
	g.bad.Warn("coap datagram dropped", "err", err)
}

func (g *Gateway) serveUDP(ctx context.Context, grp *errgroup.Group) (func(), error) {
	l, err := listenUDP(g.cfg.Listen)
	if err != nil {
		return nil, err
	}
	srv := udp.NewServer(
		options.WithMux(g.router(false)),
		options.WithContext(ctx),
		options.WithErrors(g.coapErrors),
		options.WithMaxMessageSize(MaxLinkFormat),
		peerIdle{idle: g.cfg.PeerIdle, quiet: g.cfg.QuietPeerIdle},
		options.WithPeriodicRunner(periodic.New(ctx.Done(), peerCheck(g.cfg.QuietPeerIdle))),
		options.WithOnNewConn(g.peerOpened),
		g.work,
	)
	g.udpSrv = srv
	g.addr = l.LocalAddr()
	grp.Go(func() error {
		if err := srv.Serve(l); err != nil {
			return fmt.Errorf("coap: serve udp: %w", err)
		}
		return nil
	})
	return srv.Stop, nil
}

// udpReadBuffer is the CoAP socket's receive buffer: a burst of beacons
// (every node of a site powered up at once) waits in the kernel while the
// read loop is busy, instead of being dropped at the default 208 KiB. Not
// more: under a flood, a deeper queue only makes a good node's datagrams
// wait longer behind the bad ones (4 MiB made a confirmable POST time out
// in faults.TestCoAPMalformedFlood). The kernel caps it at net.core.rmem_max.
const udpReadBuffer = 1 << 20

// listenUDP binds the CoAP socket with udpReadBuffer.
func listenUDP(addr string) (*coapNet.UDPConn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("coap: listen %s: %w", addr, err)
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("coap: listen %s: %w", addr, err)
	}
	_ = c.SetReadBuffer(udpReadBuffer) // best effort: the kernel may cap it
	return coapNet.NewUDPConn("udp", c), nil
}

func (g *Gateway) serveDTLS(ctx context.Context, grp *errgroup.Group) (func(), error) {
	l, err := coapNet.NewDTLSListener("udp", g.cfg.DTLSListen, g.cfg.DTLSKeys.serverOptions(g.log))
	if err != nil {
		return nil, fmt.Errorf("coap: dtls listen %s: %w", g.cfg.DTLSListen, err)
	}
	srv := dtls.NewServer(
		options.WithMux(g.router(true)),
		options.WithContext(ctx),
		options.WithErrors(g.coapErrors),
		options.WithMaxMessageSize(MaxLinkFormat),
		peerIdle{idle: g.cfg.PeerIdle, quiet: g.cfg.QuietPeerIdle},
		options.WithPeriodicRunner(periodic.New(ctx.Done(), peerCheck(g.cfg.QuietPeerIdle))),
		options.WithOnNewConn(g.peerOpened),
		g.work,
	)
	g.dtlsAddr = l.Addr()
	grp.Go(func() error {
		if err := srv.Serve(l); err != nil {
			return fmt.Errorf("coap: serve dtls: %w", err)
		}
		return nil
	})
	return func() { srv.Stop(); _ = l.Close() }, nil
}

// source is where a request came from, as the gateway keys nodes.
type source struct {
	from   netip.AddrPort // the request's source
	key    string         // bySource key
	secure bool           // over DTLS
	// to is the address the request was sent to, when the gateway listens
	// on every address: requests to the node must leave from it, or go-coap
	// files the node's answers under another conn (see connTo).
	to net.IP
}

// withDestination records the packet's destination address from its
// control message (set by go-coap on wildcard listeners).
func (s source) withDestination(r *mux.Message) source {
	if r == nil || r.ControlMessage() == nil {
		return s
	}
	if dst := r.ControlMessage().Dst; len(dst) > 0 && !dst.IsUnspecified() {
		s.to = dst
	}
	return s
}

func (g *Gateway) sourceOf(cc mux.Conn, secure bool) (source, error) {
	ap, err := remoteAddrPort(cc.RemoteAddr())
	if err != nil {
		return source{}, err
	}
	return g.sourceAt(ap, secure), nil
}

// sourceAt is the source of a request from ap.
func (g *Gateway) sourceAt(ap netip.AddrPort, secure bool) source {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	s := source{from: ap, secure: secure}
	switch {
	case secure:
		s.key = "dtls " + ap.String()
	case g.cfg.NodePort == SourcePort:
		s.key = ap.String()
	default:
		s.key = ap.Addr().String()
	}
	return s
}

// nodeAddr is where the node that sent from s serves CoAP.
func (g *Gateway) nodeAddr(s source) netip.AddrPort {
	if s.secure || g.cfg.NodePort == SourcePort {
		return s.from
	}
	return netip.AddrPortFrom(s.from.Addr(), uint16(g.cfg.NodePort))
}
