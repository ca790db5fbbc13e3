package mqtt

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/gateways/mqtt/bridge"
	"github.com/goaiot/goaiot/gateways/presence"
	"github.com/goaiot/goaiot/internal/shrink"
)

// Timing guards of the node logic.
const (
	// valuesEvery: a resource list asks for values at most this often, so
	// that a node flooding its list does not make the gateway flood it back.
	valuesEvery = time.Second
	// maxUnproven bounds the listener claims waiting for their proof.
	maxUnproven = 1024
)

// unproven is a listener node.check not yet proven by a message on the
// claimed id's own subjects, which only that node's connection may publish
// (bus.NodePermissions): any listener client may publish node.check naming
// any id, so the claim alone makes no node.
type unproven struct {
	addr  string
	sub   *nats.Subscription
	timer *time.Timer
	asked time.Time
}

// transport is how a node's messages reach the bus.
type transport int

const (
	viaListener transport = iota // nats-server's MQTT listener (or any plain publisher)
	viaBridge                    // this gateway's bridge to an external broker
	viaMQTTSN                    // the MQTT-SN gateway
)

func (t transport) String() string {
	return [...]string{"mqtt-listener", "mqtt-bridge", "mqtt-sn"}[t]
}

// node is what the node logic keeps of one node. Fields are guarded by
// Gateway.mu.
type node struct {
	id        string
	via       transport
	address   string
	tracker   *presence.Tracker
	sub       *nats.Subscription
	resources []string
	askedRes  time.Time
	askedVals time.Time
	recent    map[string]recentValue // nil until the first value
}

type recentValue struct {
	text string
	at   time.Time
}

// handleCheck takes node.check: a new node is claimed, published online and
// asked for its resources; a known one is refreshed.
func (g *Gateway) handleCheck(m *nats.Msg) {
	// The trackers follow the other gateways' claims (one subscription
	// for the three: presence.Config.SharedChecks).
	g.mqtt.HandleCheck(m)
	g.sn.HandleCheck(m)
	if m.Header.Get(bus.HeaderOwner) != "" {
		g.ownedElsewhere.Add(1)
		return
	}
	g.checks.Add(1)
	c, err := bus.ParseCheck(m.Data)
	if err != nil {
		g.drops.Drop("bad check", "err", err)
		return
	}
	via, addr, ok := g.classify(m)
	if !ok {
		return
	}
	g.seen(c.ID, via, addr)
}

// classify tells from the headers which transport carried m.
func (g *Gateway) classify(m *nats.Msg) (transport, string, bool) {
	if name := m.Header.Get(bridge.HeaderBridge); name != "" {
		if g.cfg.Bridge == nil || name != g.cfg.Bridge.Name() {
			g.log.Debug("node.check of another bridge: left to it", "bridge", name)
			return 0, "", false
		}
		return viaBridge, m.Header.Get(bus.HeaderAddress), true
	}
	switch t := m.Header.Get(bus.HeaderTransport); t {
	case "":
		return viaListener, m.Header.Get(bus.HeaderAddress), true
	case bus.ProtocolMQTTSN:
		return viaMQTTSN, m.Header.Get(bus.HeaderAddress), true
	default:
		g.drops.Drop("unknown transport", "transport", t)
		return 0, "", false
	}
}

func (g *Gateway) trackerOf(via transport) *presence.Tracker {
	if via == viaMQTTSN {
		return g.sn
	}
	return g.mqtt
}

// seen records a node.check of id that came via via from addr.
func (g *Gateway) seen(id string, via transport, addr string) {
	g.mu.Lock()
	n := g.nodes[id]
	if n != nil && n.via != via {
		g.log.Info("node changed transport", "node", id, "from", n.via, "to", via)
		g.removeLocked(n)
		n.tracker.Forget(id)
		n = nil
	}
	if n == nil && via == viaListener {
		g.awaitProofLocked(id, addr)
		g.mu.Unlock()
		return
	}
	if n == nil {
		g.claimLocked(id, via, addr, nil)
		g.mu.Unlock()
		return
	}
	isNew, err := n.tracker.Seen(id, addr)
	if err != nil {
		g.mu.Unlock()
		g.drops.Drop("node refused", "node", id, "err", err)
		return
	}
	now := time.Now()
	ask := isNew || (n.resources == nil && now.Sub(n.askedRes) >= g.cfg.RediscoverInterval)
	if ask {
		n.askedRes = now
	}
	g.mu.Unlock()
	if ask {
		g.discover(id, bus.DiscoverResources)
	}
}

// awaitProofLocked subscribes to the claimed id's subjects and asks it for
// its resources; the first message there without a goaiot header (so from
// the node's own connection) makes the claim (see unproven). A claim
// without proof is forgotten after RediscoverInterval × 6.
func (g *Gateway) awaitProofLocked(id, addr string) {
	now := time.Now()
	if u := g.unproven[id]; u != nil {
		if now.Sub(u.asked) >= g.cfg.RediscoverInterval {
			u.asked = now
			g.discover(id, bus.DiscoverResources)
		}
		return
	}
	for len(g.unproven) >= maxUnproven && len(g.claimOrder) > 0 {
		// A flood of claims pushes out the oldest, never the newest: an
		// honest node answers its discover within milliseconds.
		oldest := g.claimOrder[0]
		g.claimOrder = g.claimOrder[1:]
		if u := g.unproven[oldest]; u != nil {
			g.dropUnprovenLocked(oldest, u, "claim pushed out by newer claims")
		}
	}
	sub, err := g.subscribeNode(id)
	if err != nil {
		g.log.Error("subscribe node", "node", id, "err", err)
		return
	}
	u := &unproven{addr: addr, sub: sub, asked: now}
	u.timer = time.AfterFunc(6*g.cfg.RediscoverInterval, func() { g.dropUnproven(id, u) })
	g.unproven[id] = u
	g.claimOrder = append(g.claimOrder, id)
	if len(g.claimOrder) > 2*maxUnproven { // proven ids linger: compact
		g.claimOrder = slices.DeleteFunc(g.claimOrder, func(id string) bool { return g.unproven[id] == nil })
	}
	g.discover(id, bus.DiscoverResources)
}

func (g *Gateway) dropUnproven(id string, u *unproven) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.unproven[id] == u {
		g.dropUnprovenLocked(id, u, "claim never proven")
	}
}

func (g *Gateway) dropUnprovenLocked(id string, u *unproven, why string) {
	g.forgetUnprovenLocked(id)
	u.timer.Stop()
	_ = u.sub.Unsubscribe()
	g.drops.Drop(why, "node", id)
	if len(g.unproven) == 0 {
		g.claimOrder = g.claimOrder[:0]
	}
}

// prove claims id if it awaits its proof and m came from a node's own
// connection (no goaiot header).
func (g *Gateway) prove(id string, m *nats.Msg) {
	if m.Header.Get(bus.HeaderTransport) != "" || m.Header.Get(bridge.HeaderBridge) != "" || m.Header.Get(bus.HeaderOwner) != "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	u := g.unproven[id]
	if u == nil {
		return
	}
	g.forgetUnprovenLocked(id)
	u.timer.Stop()
	g.claimLocked(id, viaListener, u.addr, u.sub)
}

// forgetUnprovenLocked deletes id's claim. g.mu held.
func (g *Gateway) forgetUnprovenLocked(id string) {
	delete(g.unproven, id)
	g.unproven = shrink.Map(g.unproven, &g.unprovenPeak)
}

// claimLocked makes id a node of this gateway and, unless sub is the
// subscription that already asked (a proven claim), asks for its resources.
func (g *Gateway) claimLocked(id string, via transport, addr string, sub *nats.Subscription) {
	t := g.trackerOf(via)
	if _, err := t.Seen(id, addr); err != nil {
		if sub != nil {
			_ = sub.Unsubscribe()
		}
		g.drops.Drop("node refused", "node", id, "err", err)
		return
	}
	n := &node{id: id, via: via, address: addr, tracker: t, askedRes: time.Now()}
	ask := sub == nil
	if sub == nil {
		var err error
		if sub, err = g.subscribeNode(id); err != nil {
			g.log.Error("subscribe node", "node", id, "err", err)
			t.Forget(id)
			return
		}
	}
	n.sub = sub
	g.nodes[id] = n
	g.log.Info("node claimed", "node", id, "via", via, "address", addr)
	if ask {
		g.discover(id, bus.DiscoverResources)
	}
}

func (g *Gateway) discover(id, what string) {
	if err := g.cfg.Conn.Publish(bus.GatewayDiscover(id), []byte(what)); err != nil {
		g.log.Error("publish discover", "node", id, "err", err)
	}
}

// handleNodeMsg takes node.<id>.> of an owned node: its resource list and
// its values, each a sign of life.
func (g *Gateway) handleNodeMsg(m *nats.Msg) {
	if m.Header.Get(bus.HeaderOwner) != "" {
		return
	}
	s, err := bus.ParseSubject(m.Subject)
	if err != nil {
		g.drops.Drop("not a node subject", "subject", m.Subject, "err", err)
		return
	}
	if s.Kind == bus.KindNodeResources || s.Kind == bus.KindNodeValue {
		g.prove(s.Node, m)
	}
	switch s.Kind {
	case bus.KindNodeResources:
		names, err := bus.ParseResources(m.Data)
		if err != nil {
			g.drops.Drop("bad resources", "node", s.Node, "err", err)
			return
		}
		g.onResources(s.Node, names)
	case bus.KindNodeValue:
		v, err := bus.ParseValue(m.Data)
		if err != nil {
			g.drops.Drop("bad value", "node", s.Node, "resource", s.Resource, "err", err)
			return
		}
		g.values.Add(1)
		g.onValue(s.Node, s.Resource, v.Text())
	}
}

func (g *Gateway) onResources(id string, names []string) {
	now := time.Now()
	g.mu.Lock()
	n := g.nodes[id]
	if n == nil {
		g.mu.Unlock()
		return
	}
	n.resources = names
	ask := now.Sub(n.askedVals) >= valuesEvery
	if ask {
		n.askedVals = now
	}
	g.refreshLocked(n)
	g.mu.Unlock()
	if ask {
		g.discover(id, bus.DiscoverValues)
	} else {
		g.drops.Drop("resources too often", "node", id)
	}
}

func (g *Gateway) onValue(id, res, text string) {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.nodes[id]
	if n == nil {
		return
	}
	if _, known := n.recent[res]; known || len(n.recent) < bus.DefaultMaxResources {
		// Bounded: a node may name any number of resources; the latest
		// values of the first ones are enough to confirm commands.
		if n.recent == nil {
			n.recent = make(map[string]recentValue, 1)
		}
		n.recent[res] = recentValue{text: text, at: now}
	}
	g.confirms.Report(id, res, text)
	g.refreshLocked(n)
}

// refreshLocked keeps a node that sends values alive between its checks.
func (g *Gateway) refreshLocked(n *node) {
	if _, err := n.tracker.Seen(n.id, n.address); err != nil {
		g.drops.Drop("node refused", "node", n.id, "err", err)
	}
}

// expired forgets a node its tracker t timed out (unless it came back).
func (g *Gateway) expired(t *presence.Tracker, id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.nodes[id]
	if n == nil || n.tracker != t {
		return
	}
	if _, back := t.Lookup(id); back {
		return
	}
	g.removeLocked(n)
}

// removeLocked drops n from the gateway (not from its tracker).
func (g *Gateway) removeLocked(n *node) {
	if n.sub != nil {
		_ = n.sub.Unsubscribe()
	}
	delete(g.nodes, n.id)
	g.nodes = shrink.Map(g.nodes, &g.nodesPeak)
}

func (g *Gateway) unsubscribeAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, n := range g.nodes {
		g.removeLocked(n)
	}
	for id, u := range g.unproven {
		u.timer.Stop()
		_ = u.sub.Unsubscribe()
		delete(g.unproven, id)
	}
}

// command carries out gateway.<id>.<res>.set for an owned node and returns
// once the node confirmed it by the rule of package presence: it
// republished the resource with the commanded value. Only bridged nodes get
// the command from the gateway (through the bridge, QoS 1): the request
// itself already reaches listener and MQTT-SN nodes that subscribed to it,
// so sending it again would deliver it twice. See doc.go.
func (g *Gateway) command(ctx context.Context, id, res string, payload []byte) error {
	start := time.Now()
	g.mu.Lock()
	n := g.nodes[id]
	if n == nil {
		g.mu.Unlock()
		return fmt.Errorf("node %s: %w by gateway %s", id, presence.ErrNotServed, g.cfg.Gateway)
	}
	via := n.via
	if r, ok := n.recent[res]; ok && via != viaBridge && start.Sub(r.at) <= g.cfg.CommandTimeout && r.text == string(payload) {
		g.mu.Unlock()
		return nil
	}
	w := g.confirms.Expect(id, res, payload) // under g.mu: onValue reports under it too
	g.mu.Unlock()
	defer w.Done()

	if via == viaBridge {
		if err := g.cfg.Bridge.Command(ctx, id, res, payload); err != nil {
			return err
		}
	}
	return w.Wait(ctx)
}
