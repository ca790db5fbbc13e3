package coap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/plgd-dev/go-coap/v3/mux"

	"github.com/goaiot/goaiot/gateways/presence"
	"github.com/goaiot/goaiot/internal/shrink"
)

// node is one incarnation of a node: a reset, a move or an expiry ends it
// (gone is set and the requests it has in flight are cancelled).
type node struct {
	uid    string
	src    source
	addr   netip.AddrPort // the node's own CoAP server
	secure mux.Conn       // the DTLS session, nil over plain UDP (or not back since a restart)
	since  time.Time      // when this incarnation began
	gone   atomic.Bool    // the incarnation has ended: publish nothing more for it
	// inflight counts the gateway's requests to the node in flight;
	// watched is set once it is observed: either keeps its peer (peerHold).
	inflight atomic.Int32
	watched  atomic.Bool

	// guarded by Gateway.mu
	restored    bool // from NODE_TABLES, not heard from since (persist.go)
	discovering bool
	discovered  bool
	observed    map[string]*observation // made on the first observation
	// work is there while requests to the node are in flight (see begin).
	work *nodeWork
}

// nodeWork is the context of the requests in flight to a node, cancelled
// when the last of them ends or the node does: a held node with nothing in
// flight has no context (a context costs a few hundred bytes).
type nodeWork struct {
	ctx  context.Context
	stop context.CancelFunc
	busy int
}

// begin returns the context of a request to n, false once n has ended;
// end must follow. g.mu not held.
func (g *Gateway) begin(n *node) (context.Context, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n.gone.Load() {
		return nil, false
	}
	if n.work == nil {
		ctx, stop := context.WithCancel(g.runCtx)
		n.work = &nodeWork{ctx: ctx, stop: stop}
	}
	n.work.busy++
	n.inflight.Add(1)
	return n.work.ctx, true
}

// end ends what begin began.
func (g *Gateway) end(n *node) {
	n.inflight.Add(-1)
	g.mu.Lock()
	defer g.mu.Unlock()
	if w := n.work; w != nil { // nil: the node has ended meanwhile
		if w.busy--; w.busy == 0 {
			w.stop()
			n.work = nil
		}
	}
}

type observation struct {
	conn mux.Conn
	obs  mux.Observation
}

func (o *observation) alive() bool {
	return o.obs != nil && !o.obs.Canceled() && o.conn.Context().Err() == nil
}

// errSecured refuses a plain CoAP beacon for a node known over DTLS: an
// unauthenticated peer cannot take a secured node over.
var errSecured = errors.New("known over DTLS: plain CoAP refused")

// errUnknownNode is returned for values from a source with no node.
var errUnknownNode = errors.New("unknown node: POST alive:<uid> to /alive first")

// beacon handles an /alive from src: a new node goes online and is
// discovered; a reset or a move rediscovers it; a beacon from a known node
// only refreshes it (and retries a discovery that failed, and observations
// that ended). It reports whether the node is new to the tracker.
func (g *Gateway) beacon(src source, cc mux.Conn, b Beacon) (bool, error) {
	addr := g.nodeAddr(src)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.runCtx == nil || g.runCtx.Err() != nil {
		return false, errors.New("gateway stopping")
	}
	if n := g.nodes[b.UID]; n != nil && n.src.secure && !src.secure {
		return false, fmt.Errorf("node %s: %w", b.UID, errSecured)
	}
	if err := g.tracker.PublishCheck(b.UID); err != nil {
		g.log.Error("publish check", "node", b.UID, "err", err)
	}
	isNew, err := g.tracker.Seen(b.UID, addr.String())
	if err != nil {
		return false, fmt.Errorf("node %s: %w", b.UID, err)
	}
	n := g.nodes[b.UID]
	var secure mux.Conn
	if src.secure {
		secure = cc
	}
	switch {
	case n == nil || isNew || n.addr != addr || n.src.key != src.key:
		if n != nil {
			g.log.Info("node moved or came back", "node", b.UID, "address", addr)
		}
		g.replace(b.UID, src, addr, secure)
	case b.Kind == KindReset:
		g.tracker.Reset(b.UID)
		g.replace(b.UID, src, addr, secure)
	default:
		if secure != nil {
			n.secure = secure // a new DTLS session of the same peer
		}
		g.heal(n)
	}
	return isNew, nil
}

// replace starts a new incarnation of node uid and discovers it. g.mu held.
func (g *Gateway) replace(uid string, src source, addr netip.AddrPort, secure mux.Conn) {
	g.dropLocked(uid)
	if old, ok := g.bySource[src.key]; ok && old != uid {
		g.log.Info("source now belongs to another node", "source", src.key, "was", old, "now", uid)
	}
	n := &node{uid: uid, src: src, addr: addr, secure: secure, since: time.Now()}
	g.nodes[uid] = n
	g.bySource[src.key] = uid
	g.table.Changed(uid)
	g.startDiscovery(n)
}

// heal retries a failed discovery and re-registers ended observations.
// g.mu held.
func (g *Gateway) heal(n *node) {
	if n.discovering {
		return
	}
	if !n.discovered {
		g.startDiscovery(n)
		return
	}
	for res, o := range n.observed {
		if !o.alive() {
			delete(n.observed, res)
			go g.observe(n, res)
		}
	}
}

// dropLocked ends the current incarnation of uid. g.mu held.
func (g *Gateway) dropLocked(uid string) {
	n, ok := g.nodes[uid]
	if !ok {
		return
	}
	delete(g.nodes, uid)
	if g.bySource[n.src.key] == uid {
		delete(g.bySource, n.src.key)
	}
	g.nodes, g.bySource = shrink.Map(g.nodes, &g.nodesPeak), shrink.Map(g.bySource, &g.sourcesPeak)
	g.table.Changed(uid)
	n.gone.Store(true)
	if n.work != nil {
		n.work.stop()
		n.work = nil
	}
	for _, o := range n.observed {
		go cancelObservation(o, g.cfg.RequestTimeout)
	}
	n.observed = nil
}

func cancelObservation(o *observation, timeout time.Duration) {
	if o.obs == nil || o.obs.Canceled() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_ = o.obs.Cancel(ctx) // best effort: the node forgets it anyway on a RST
}

// expired is the tracker's OnExpire: forget the node unless it came back.
func (g *Gateway) expired(uid string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, back := g.tracker.Lookup(uid); back {
		return
	}
	g.dropLocked(uid)
}

// update publishes a /server value from src.
func (g *Gateway) update(src source, u Update) error {
	g.mu.Lock()
	uid, ok := g.bySource[src.key]
	var n *node
	if ok {
		n = g.nodes[uid]
	}
	g.mu.Unlock()
	if n == nil {
		return fmt.Errorf("%s from %s: %w", u.Resource, src.key, errUnknownNode)
	}
	if _, err := g.tracker.Seen(uid, n.addr.String()); err != nil {
		if errors.Is(err, presence.ErrOwnedElsewhere) {
			// Another gateway owns the uid (e.g. a node restored from the
			// table that moved meanwhile): it is not this gateway's node.
			g.mu.Lock()
			if g.nodes[uid] == n {
				g.dropLocked(uid)
			}
			g.mu.Unlock()
		}
		return err
	}
	// Counted before it is published: whoever sees the value sees it counted.
	g.values.Add(1)
	if err := g.tracker.PublishValue(uid, u.Resource, u.Value); err != nil {
		g.values.Add(-1)
		return err
	}
	return nil
}

// lookup returns the current incarnation of uid.
func (g *Gateway) lookup(uid string) *node {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.nodes[uid]
}

// connTo is how the gateway talks to a node: its DTLS session, or over
// plain UDP a conn on the server's own socket (see doc.go).
func (g *Gateway) connTo(n *node) (mux.Conn, error) {
	if n.src.secure {
		if n.secure == nil || n.secure.Context().Err() != nil {
			return nil, errors.New("dtls session closed; waiting for the node to reconnect")
		}
		return n.secure, nil
	}
	if g.udpSrv == nil {
		return nil, errors.New("plain coap disabled")
	}
	// On a wildcard listener go-coap keys peers by remote and destination
	// address; without the destination the conn made here would differ
	// from the one the node's answers arrive on (in source-port mode, the
	// one its requests created), and the answers would go unmatched.
	var local []*net.UDPAddr
	if n.src.to != nil && !n.src.secure {
		if la, ok := g.addr.(*net.UDPAddr); ok {
			local = append(local, &net.UDPAddr{IP: n.src.to, Port: la.Port})
		}
	}
	cc, err := g.udpSrv.NewConn(net.UDPAddrFromAddrPort(n.addr), local...)
	if err != nil {
		return nil, fmt.Errorf("conn to %s: %w", n.addr, err)
	}
	if h := holdOf(cc); h != nil {
		h.node.Store(n) // kept while requests to n are in flight (peerHold)
	}
	return cc, nil
}
