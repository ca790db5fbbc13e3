package coap

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/mux"

	"github.com/goaiot/goaiot/bus"
)

// startDiscovery queues n for a discovery in the background, unless its
// address had its share of discoveries (DiscoveryRate): then the next
// beacon tries again. At most MaxDiscoveries run at once, in the order they
// were asked for; a waiting one is a pointer in a queue, not a goroutine.
// g.mu held.
func (g *Gateway) startDiscovery(n *node) {
	if n.secure == nil && !g.toward.Allow(n.addr.Addr()) { // a DTLS peer cannot be spoofed
		g.deferred.Add(1)
		g.bad.Warn("discovery deferred: too many toward this address (a spoofed /alive?)", "node", n.uid, "address", n.addr.String())
		return
	}
	n.discovering = true
	if g.head > len(g.waiting)/2 { // the queue never drained: reuse its front
		k := copy(g.waiting, g.waiting[g.head:])
		clear(g.waiting[k:])
		g.waiting, g.head = g.waiting[:k], 0
	}
	g.waiting = append(g.waiting, n)
	if g.discoverers < g.cfg.MaxDiscoveries {
		g.discoverers++
		go g.discoverWaiting()
	}
}

// discoverWaiting discovers the waiting nodes one after another until none
// is left (one of the MaxDiscoveries slots).
func (g *Gateway) discoverWaiting() {
	for {
		g.mu.Lock()
		if g.head == len(g.waiting) || g.runCtx.Err() != nil {
			g.discoverers--
			if g.discoverers == 0 {
				g.waiting, g.head = nil, 0 // the queue's array goes too
			}
			g.mu.Unlock()
			return
		}
		n := g.waiting[g.head]
		g.waiting[g.head] = nil
		if g.head++; g.head == len(g.waiting) {
			g.waiting, g.head = g.waiting[:0], 0
		}
		g.mu.Unlock()
		ok := g.discoverNode(n)
		g.mu.Lock()
		n.discovering = false
		n.discovered = ok
		g.mu.Unlock()
	}
}

// discoveryBudget bounds one discovery to this many request timeouts, so
// that a node whose resources never answer does not hold a discovery slot
// for long (requests are sent one after another, as constrained nodes
// prefer).
const discoveryBudget = 6

// resource is one discovered resource of a node.
type resource struct {
	name       string
	observable bool
}

// discoverNode reads the node's /.well-known/core, publishes its resource
// names, then reads (or observes) each. It reports whether the node
// answered; a node that did not is tried again at its next beacon.
func (g *Gateway) discoverNode(n *node) bool {
	ctx, ok := g.begin(n)
	if !ok {
		return false
	}
	defer g.end(n)
	log := g.log.With("node", n.uid, "address", n.addr)
	body, err := g.get(ctx, n, WellKnownCore, MaxLinkFormat)
	if err != nil {
		if !n.gone.Load() {
			g.discoveryFailures.Add(1)
			log.Warn("discovery failed; retrying at the next beacon", "err", err)
		}
		return false
	}
	links, err := ParseLinkFormat(string(body))
	if err != nil {
		log.Warn("discovery: bad link-format", "err", err)
		return true // it answered: asking again gets the same document
	}
	res := resources(links, func(target string, err error) {
		g.bad.Warn("discovery: resource skipped", "node", n.uid, "target", target, "err", err)
	})
	names := make([]string, len(res))
	for i, r := range res {
		names[i] = r.name
	}
	if n.gone.Load() {
		return false
	}
	if err := g.tracker.PublishResources(n.uid, names); err != nil {
		log.Error("publish resources", "err", err)
	}
	g.discovered.Add(1)
	log.Info("node discovered", "resources", names)
	budget := time.Now().Add(discoveryBudget * g.cfg.RequestTimeout)
	for i, r := range res {
		if n.gone.Load() {
			return false
		}
		if time.Now().After(budget) {
			log.Warn("discovery: out of time, resources left unread", "unread", names[i:])
			break
		}
		if r.observable {
			if !g.observing(n, r.name) {
				g.observe(n, r.name)
			}
			continue
		}
		g.fetch(ctx, n, r.name)
	}
	return true
}

// resources turns links into safe, distinct resource names; skipped reports
// each link left out and why.
func resources(links []Link, skipped func(target string, err error)) []resource {
	var out []resource
	for _, l := range links {
		if l.Target == WellKnownCore {
			continue
		}
		name, err := ResourceName(l.Target)
		if err != nil {
			skipped(l.Target, err)
			continue
		}
		if slices.ContainsFunc(out, func(r resource) bool { return r.name == name }) {
			continue
		}
		out = append(out, resource{name: name, observable: l.Observable()})
	}
	return out
}

// get GETs path on node n (ctx from begin) and returns the body of a 2.05.
func (g *Gateway) get(ctx context.Context, n *node, path string, limit int) ([]byte, error) {
	cc, err := g.connTo(n)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.RequestTimeout)
	defer cancel()
	resp, err := cc.Get(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	defer cc.ReleaseMessage(resp)
	if resp.Code() != codes.Content {
		return nil, fmt.Errorf("GET %s: %s", path, CodeText(resp.Code()))
	}
	body, err := readBody(resp.Body(), limit)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	return body, nil
}

// fetch GETs one resource and publishes its value.
func (g *Gateway) fetch(ctx context.Context, n *node, name string) {
	body, err := g.get(ctx, n, "/"+name, MaxValue)
	if err != nil {
		if !n.gone.Load() {
			g.log.Warn("read resource", "node", n.uid, "resource", name, "err", err)
		}
		return
	}
	g.publishValue(n, name, body)
}

func (g *Gateway) publishValue(n *node, name string, body []byte) {
	if err := checkValue(body); err != nil {
		g.log.Warn("value dropped", "node", n.uid, "resource", name, "err", err)
		return
	}
	if n.gone.Load() {
		return // this incarnation has ended: never publish for a node gone offline
	}
	if err := g.tracker.PublishValue(n.uid, name, string(body)); err != nil {
		g.log.Warn("publish value", "node", n.uid, "resource", name, "err", err)
	}
}

// observe registers an observation of one resource (RFC 7641); each
// notification, the first answer included, is published as a value.
func (g *Gateway) observe(n *node, name string) {
	cc, err := g.connTo(n)
	if err != nil {
		g.log.Warn("observe", "node", n.uid, "resource", name, "err", err)
		return
	}
	work, ok := g.begin(n)
	if !ok {
		return
	}
	defer g.end(n)
	ctx, cancel := context.WithTimeout(work, g.cfg.RequestTimeout)
	defer cancel()
	obs, err := cc.Observe(ctx, "/"+name, func(m *pool.Message) { g.notified(n, name, m) })
	if err != nil {
		if !n.gone.Load() {
			g.log.Warn("observe", "node", n.uid, "resource", name, "err", err)
		}
		return
	}
	g.keepObservation(n, name, cc, obs)
}

func (g *Gateway) keepObservation(n *node, name string, cc mux.Conn, obs mux.Observation) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n.gone.Load() {
		go cancelObservation(&observation{conn: cc, obs: obs}, g.cfg.RequestTimeout)
		return
	}
	if n.observed == nil {
		n.observed = make(map[string]*observation)
	}
	n.watched.Store(true) // notifications arrive on its peer: keep it
	n.observed[name] = &observation{conn: cc, obs: obs}
}

func (g *Gateway) notified(n *node, name string, m *pool.Message) {
	if m.Code() != codes.Content {
		g.log.Warn("observation ended by the node", "node", n.uid, "resource", name, "code", CodeText(m.Code()))
		return
	}
	body, err := readBody(m.Body(), MaxValue)
	if err != nil {
		g.log.Warn("notification dropped", "node", n.uid, "resource", name, "err", err)
		return
	}
	g.notifications.Add(1)
	g.publishValue(n, name, body)
}

// observing tells whether an observation of name on n is alive.
func (g *Gateway) observing(n *node, name string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	o, ok := n.observed[name]
	return ok && o.alive()
}

// handleDiscover serves gateway.<uid>.discover for the nodes this gateway
// owns: "resources" or "values" reads the node again (its list and every
// value; live observations are kept). Requests for other nodes are left to
// their gateway.
func (g *Gateway) handleDiscover(m *nats.Msg) {
	s, err := bus.ParseSubject(m.Subject)
	if err != nil || s.Kind != bus.KindGatewayDiscover {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.nodes[s.Node]
	if n == nil {
		return
	}
	switch string(m.Data) {
	case bus.DiscoverResources, bus.DiscoverValues:
	default:
		g.log.Warn("discover: want resources or values", "node", s.Node, "payload", fmt.Sprintf("%.32q", m.Data))
		return
	}
	if !n.discovering {
		g.startDiscovery(n)
	}
	if m.Reply != "" {
		_ = m.Respond([]byte(`{"ok":true}`))
	}
}
