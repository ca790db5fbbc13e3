package mqttsn

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
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/goaiot/goaiot/gateways/mqttsn/packet"
	"github.com/goaiot/goaiot/gateways/persist"
	"github.com/goaiot/goaiot/internal/loglimit"
	"github.com/goaiot/goaiot/internal/shrink"
)

// Gateway is an MQTT-SN 1.2 gateway onto NATS.
type Gateway struct {
	cfg Config
	log *slog.Logger
	nc  *nats.Conn

	predefByName map[string]uint16

	inbox  chan *nats.Msg // every client subscription delivers here
	outbox chan datagram  // what send queues under mu; writeLoop writes it
	ready  chan struct{}  // closed once Run has bound its socket

	mu     sync.Mutex // guards everything below
	conn   *net.UDPConn
	byAddr map[netip.AddrPort]*client
	byID   map[string]*client
	// peaks of the maps keyed by client ids and addresses, so that they
	// give memory back after id churn (see release and sweep)
	peaks    struct{ byID, byAddr, peers, sources shrink.Peak }
	subs     map[*nats.Subscription]*subscription
	peers    map[netip.AddrPort]*peer // rate limits, by address
	stranger *rate.Limiter            // shared by addresses beyond the peers cap
	bad      *loglimit.Limit          // log lines about bad input

	sources     map[netip.Addr]*source // new client ids, by source address
	strangerIDs *rate.Limiter          // shared by addresses beyond the sources cap
	refusals    map[string]int64       // by reason (Reason…)

	table *persist.Table[sessionEntry] // nil: sessions not persisted

	stats counters
}

// peer is the rate limit and log budget of one source address.
type peer struct {
	lim     *rate.Limiter
	last    time.Time
	dropped int
}

// Stats counts what a gateway did.
type Stats struct {
	Clients   int   // sessions held now
	Published int64 // client PUBLISHes relayed onto NATS (wills included)
	Delivered int64 // PUBLISHes sent to clients
	Rejected  int64 // messages answered with an error return code
	Dropped   int64 // datagrams and messages dropped (malformed, rate limited, queue full)
	Lost      int64 // clients lost (keep-alive, sleep, retries, eviction)
	// Refused counts what a client was not allowed to do, by reason
	// (ReasonClientID, ReasonPublish, …); each is also in Rejected (when
	// answered with a return code) or Dropped (QoS 0 and −1).
	Refused map[string]int64
	// Table counts the sessions kept in NODE_TABLES (see doc.go).
	Table persist.Stats
}

type counters struct {
	published, delivered, rejected, dropped, lost atomic.Int64
}

// New validates cfg and prepares a gateway; Run starts it.
func New(cfg Config) (*Gateway, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	byName := make(map[string]uint16, len(cfg.Predefined))
	for id, name := range cfg.Predefined {
		byName[name] = id
	}
	g := &Gateway{
		cfg:          cfg,
		log:          cfg.Logger,
		nc:           cfg.Conn,
		predefByName: byName,
		inbox:        make(chan *nats.Msg, 8192),
		outbox:       make(chan datagram, outboxDepth),
		ready:        make(chan struct{}),
		byAddr:       map[netip.AddrPort]*client{},
		byID:         map[string]*client{},
		subs:         map[*nats.Subscription]*subscription{},
		peers:        map[netip.AddrPort]*peer{},
		stranger:     rate.NewLimiter(rate.Limit(cfg.Rate), cfg.Burst),
		bad:          loglimit.New(cfg.Logger, badLogsPerSecond, "bad mqtt-sn datagrams"),
		sources:      map[netip.Addr]*source{},
		strangerIDs:  newIDLimiter(max(cfg.NewNodesPerSource, 1)),
		refusals:     map[string]int64{},
	}
	if cfg.PersistDelay >= 0 {
		var err error
		if g.table, err = g.newTable(); err != nil {
			return nil, fmt.Errorf("mqttsn: %w", err)
		}
	}
	return g, nil
}

// Ready is closed once Run listens; Addr then tells where.
func (g *Gateway) Ready() <-chan struct{} { return g.ready }

// Addr is the UDP address the gateway listens on, nil before Ready.
func (g *Gateway) Addr() net.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn == nil {
		return nil
	}
	return g.conn.LocalAddr()
}

// Stats returns the gateway's counters.
func (g *Gateway) Stats() Stats {
	g.mu.Lock()
	n := len(g.byID)
	refused := make(map[string]int64, len(g.refusals))
	for r, v := range g.refusals {
		refused[r] = v
	}
	g.mu.Unlock()
	return Stats{
		Clients: n, Published: g.stats.published.Load(), Delivered: g.stats.delivered.Load(),
		Rejected: g.stats.rejected.Load(), Dropped: g.stats.dropped.Load(), Lost: g.stats.lost.Load(),
		Refused: refused, Table: g.table.Stats(),
	}
}

// Run serves MQTT-SN until ctx ends.
func (g *Gateway) Run(ctx context.Context) error {
	conn := g.cfg.PacketConn
	if conn == nil {
		addr, err := net.ResolveUDPAddr("udp", g.cfg.Listen)
		if err != nil {
			return fmt.Errorf("mqttsn: listen: %w", err)
		}
		if conn, err = net.ListenUDP("udp", addr); err != nil {
			return fmt.Errorf("mqttsn: listen: %w", err)
		}
	}
	_ = conn.SetReadBuffer(4 << 20)
	g.mu.Lock()
	g.conn = conn
	g.mu.Unlock()
	wctx, stopWriting := context.WithCancel(context.Background())
	written := make(chan struct{})
	go func() { defer close(written); g.writeLoop(wctx, conn) }()
	defer func() { stopWriting(); <-written }()
	g.restore(ctx)
	svc, err := g.addService()
	if err != nil {
		conn.Close()
		return err
	}
	defer func() { _ = svc.Stop() }()
	g.log.Info("listening", "what", "mqtt-sn", "addr", conn.LocalAddr().String(), "gateway_id", g.cfg.GatewayID)
	close(g.ready)

	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return g.readLoop(conn) })
	eg.Go(func() error { g.deliverLoop(ctx); return nil })
	eg.Go(func() error { g.timerLoop(ctx); return nil })
	eg.Go(func() error { return g.table.Run(ctx) })
	if g.cfg.AdvertiseAddr != "" {
		eg.Go(func() error { return g.advertiseLoop(ctx) })
	}
	eg.Go(func() error {
		<-ctx.Done()
		return conn.Close() // ends readLoop
	})
	err = eg.Wait()
	g.flushTable() // before closeAll: a stopping gateway forgets no session
	g.closeAll()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// readLoop handles datagrams one by one until the socket closes.
func (g *Gateway) readLoop(conn *net.UDPConn) error {
	buf := make([]byte, 65536)
	for {
		n, addr, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			g.log.Warn("mqtt-sn read", "err", err)
			continue
		}
		g.handleDatagram(addr, buf[:n])
	}
}

// handleDatagram rate-limits, decodes and dispatches one datagram.
func (g *Gateway) handleDatagram(addr netip.AddrPort, b []byte) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	p := g.peer(addr, now)
	if !g.allow(p, now) {
		g.stats.dropped.Add(1)
		if p != nil {
			if p.dropped == 0 {
				g.log.Warn("rate limit: dropping datagrams", "addr", addr.String(), "rate", g.cfg.Rate)
			}
			p.dropped++
		}
		return
	}
	pkt, err := packet.Unmarshal(b)
	if err != nil {
		g.stats.dropped.Add(1)
		g.badInput("dropped malformed datagram", "addr", addr.String(), "len", len(b), "err", err)
		return
	}
	g.dispatch(addr, p, pkt, now)
}

// peer returns the rate state of addr, creating it while under the cap.
func (g *Gateway) peer(addr netip.AddrPort, now time.Time) *peer {
	p := g.peers[addr]
	if p == nil && len(g.peers) < 2*g.cfg.MaxClients {
		p = &peer{}
		if g.cfg.Rate > 0 {
			p.lim = rate.NewLimiter(rate.Limit(g.cfg.Rate), g.cfg.Burst)
		}
		g.peers[addr] = p
	}
	if p != nil {
		p.last = now
	}
	return p
}

func (g *Gateway) allow(p *peer, now time.Time) bool {
	if g.cfg.Rate < 0 {
		return true
	}
	if p == nil {
		return g.stranger.AllowN(now, 1)
	}
	return p.lim.AllowN(now, 1)
}

// badInput logs a refused message within the gateway's log budget
// (package internal/loglimit): a flood from any number of addresses writes
// at most badLogsPerSecond lines a second.
func (g *Gateway) badInput(msg string, args ...any) { g.bad.Warn(msg, args...) }

// badLogsPerSecond bounds the log lines about bad input.
const badLogsPerSecond = 20

// outboxDepth bounds the datagrams waiting for writeLoop; past it send
// drops (and counts) them, as a full socket buffer would.
const outboxDepth = 4096

// datagram is one encoded packet for addr.
type datagram struct {
	addr netip.AddrPort
	b    []byte
}

// send encodes p for addr and queues it for writeLoop, so that no socket
// write happens under mu; one writer keeps the order of the datagrams.
func (g *Gateway) send(addr netip.AddrPort, p packet.Packet) {
	b, err := packet.Append(nil, p)
	if err != nil {
		g.log.Error("mqtt-sn encode", "type", p.Type(), "err", err)
		return
	}
	select {
	case g.outbox <- datagram{addr: addr, b: b}:
	default:
		g.stats.dropped.Add(1)
		g.log.Debug("mqtt-sn outbox full: datagram dropped", "addr", addr.String(), "type", p.Type())
	}
}

// writeLoop writes the queued datagrams, in order, until ctx ends.
func (g *Gateway) writeLoop(ctx context.Context, conn *net.UDPConn) {
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-g.outbox:
			if _, err := conn.WriteToUDPAddrPort(d.b, d.addr); err != nil {
				g.log.Debug("mqtt-sn write", "addr", d.addr.String(), "err", err)
			}
		}
	}
}

// timerLoop checks keep-alives, sleeps, retries and rate state every Tick.
func (g *Gateway) timerLoop(ctx context.Context) {
	t := time.NewTicker(g.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			g.sweep(now)
		}
	}
}

func (g *Gateway) sweep(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.byID {
		switch {
		case c.expired(now, g.cfg.IdleTimeout):
			g.lose(c, "silent for "+now.Sub(c.lastSeen).Round(time.Millisecond).String()+" in state "+c.state.String())
		case c.inflight != nil && c.connected() && now.Sub(c.inflight.sentAt) >= g.cfg.RetryInterval:
			g.retry(c, now)
		}
	}
	for addr, p := range g.peers {
		if p.dropped > 0 {
			g.log.Warn("rate limit: dropped datagrams", "addr", addr.String(), "count", p.dropped)
			p.dropped = 0
		}
		if now.Sub(p.last) > time.Minute && g.byAddr[addr] == nil {
			delete(g.peers, addr)
		}
	}
	g.sweepSources(now)
	g.peers, g.sources = shrink.Map(g.peers, &g.peaks.peers), shrink.Map(g.sources, &g.peaks.sources)
}

// advertiseLoop sends ADVERTISE every AdvertiseInterval.
func (g *Gateway) advertiseLoop(ctx context.Context) error {
	ua, err := net.ResolveUDPAddr("udp", g.cfg.AdvertiseAddr)
	if err != nil {
		return fmt.Errorf("mqttsn: advertise: %w", err)
	}
	addr := ua.AddrPort()
	secs := min(g.cfg.AdvertiseInterval/time.Second, 0xFFFF)
	adv := &packet.Advertise{GatewayID: g.cfg.GatewayID, Duration: uint16(secs)}
	t := time.NewTicker(g.cfg.AdvertiseInterval)
	defer t.Stop()
	for {
		g.mu.Lock()
		g.send(addr, adv)
		g.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// closeAll ends every session when the gateway stops (no wills: the
// gateway, not the clients, went away), keeping them in NODE_TABLES for
// the next start.
func (g *Gateway) closeAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.byID {
		g.release(c)
	}
}
