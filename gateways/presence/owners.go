package presence

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/internal/shrink"
)

// ErrOwnedElsewhere is returned by Seen for an id another gateway owns.
var ErrOwnedElsewhere = errors.New("owned by another gateway")

// maxForeign bounds the ids owned elsewhere that one tracker remembers;
// claims silent for longer than the timeout are pruned (owners.prune).
const maxForeign = 1 << 20

// owners is a tracker's view of the ids other gateways own: an id belongs
// to the gateway whose $state said online (or reset) first, for as long as
// that gateway says so and the node keeps beaconing (node.check); an id
// silent for longer than the tracker's timeout is free again, so that a
// crashed gateway does not hold its ids forever.
type owners struct {
	self    string // "<protocol>/<gateway>"
	gateway string
	ttl     time.Duration
	now     func() time.Time

	mu      sync.Mutex
	foreign map[string]claim
	peak    shrink.Peak       // of foreign (see prune)
	max     int               // bound of foreign (maxForeign)
	pruned  time.Time         // last prune
	names   map[string]string // owner names, interned (at most maxNames)
}

// maxNames bounds the interned owner names: gateways are few.
const maxNames = 1024

// claim is another gateway's claim on an id. It is small, for a tracker
// holds one for every node the other gateways own: the owner's name is
// shared by all its claims, and the times are Unix nanoseconds.
type claim struct {
	owner       string // "<protocol>/<gateway>"
	since, seen int64  // when the owner claimed the id; when it last said so
}

// gateway is the owner's gateway name.
func (c claim) gateway() string { return c.owner[strings.IndexByte(c.owner, '/')+1:] }

// intern returns the one copy of owner name kept for every claim of that
// owner. o.mu is held.
func (o *owners) intern(name string) string {
	if n, ok := o.names[name]; ok {
		return n
	}
	if len(o.names) < maxNames {
		o.names[name] = name
	}
	return name
}

// stale reports whether c was not refreshed within the timeout, at now.
func (o *owners) stale(c claim, now time.Time) bool { return now.UnixNano()-c.seen > int64(o.ttl) }

func ownerName(protocol, gateway string) string { return protocol + "/" + gateway }

func newOwners(cfg Config) *owners {
	return &owners{self: ownerName(cfg.Protocol, cfg.Gateway), gateway: cfg.Gateway, ttl: cfg.Timeout, now: cfg.Now,
		foreign: make(map[string]claim), max: maxForeign, names: make(map[string]string)}
}

// prune forgets the claims nobody refreshed for longer than the timeout (an
// owner that crashed, or ids that came and went), at most once a timeout.
func (o *owners) prune() {
	now := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if now.Sub(o.pruned) < o.ttl {
		return
	}
	o.pruned = now
	for id, c := range o.foreign {
		if o.stale(c, now) {
			delete(o.foreign, id)
		}
	}
	o.foreign = shrink.Map(o.foreign, &o.peak)
}

// owner returns who else owns id now, if anyone.
func (o *owners) owner(id string) (claim, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c, ok := o.foreign[id]
	if !ok {
		return claim{}, false
	}
	if o.stale(c, o.now()) {
		delete(o.foreign, id)
		return claim{}, false
	}
	return c, true
}

// onState records another gateway's $state of id; it returns the claim when
// that gateway says the node is online.
func (o *owners) onState(id string, s bus.State) (claim, bool) {
	name := ownerName(s.Protocol, s.Gateway)
	if s.Gateway == o.gateway {
		return claim{}, false // this gateway's own trackers (MQTT and MQTT-SN) settle moves themselves
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if s.State == bus.StateOffline {
		if c, ok := o.foreign[id]; ok && c.owner == name {
			delete(o.foreign, id)
		}
		return claim{}, false
	}
	c, ok := o.foreign[id]
	if !ok || c.owner != name {
		if len(o.foreign) >= o.max {
			return claim{}, false
		}
		since := s.Time
		if since.IsZero() {
			since = o.now()
		}
		if !ok {
			id = strings.Clone(id) // not the subject it was cut from
		}
		c = claim{owner: o.intern(name), since: since.UnixNano()}
	}
	c.seen = o.now().UnixNano()
	o.foreign[id] = c
	o.peak.Note(len(o.foreign))
	return c, true
}

// onBeacon refreshes the claim on id: its owner's gateway announced it, or
// the node itself did.
func (o *owners) onBeacon(id, gateway string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c, ok := o.foreign[id]; ok && (gateway == "" || gateway == c.gateway()) {
		c.seen = o.now().UnixNano()
		o.foreign[id] = c
	}
}

// subscribeClaims subscribes to every $state and node.check, and to every
// command (gateway.*.*.set, into t.inbox: plain, no queue group, because
// replicas of a gateway own different nodes and only the owner answers).
func (t *Tracker) subscribeClaims() (stop func(), err error) {
	var subs []*nats.Subscription
	stop = func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}
	handlers := map[string]nats.MsgHandler{bus.NodeState("*"): t.onState}
	if !t.cfg.SharedChecks {
		handlers[bus.SubjectNodeCheck] = t.HandleCheck
	}
	for subject, h := range handlers {
		s, err := t.cfg.Conn.Subscribe(subject, h)
		if err != nil {
			stop()
			return nil, fmt.Errorf("presence: subscribe %s: %w", subject, err)
		}
		_ = s.SetPendingLimits(-1, 64<<20)
		subs = append(subs, s)
	}
	s, err := t.cfg.Conn.ChanSubscribe(bus.GatewaySetAll("*"), t.inbox)
	if err != nil {
		stop()
		return nil, fmt.Errorf("presence: subscribe %s: %w", bus.GatewaySetAll("*"), err)
	}
	subs = append(subs, s)
	return stop, nil
}

// HandleCheck refreshes the claim on the id a node.check announces (see
// Config.SharedChecks). A check of this tracker's own gateway is skipped
// unread: no claim of its own gateway is ever kept (owners.onState), and
// a CoAP gateway sends one per beacon.
func (t *Tracker) HandleCheck(m *nats.Msg) {
	owner := m.Header.Get(bus.HeaderOwner)
	if owner == t.cfg.Gateway {
		return
	}
	c, err := bus.ParseCheck(m.Data)
	if err != nil {
		return
	}
	t.owners.onBeacon(c.ID, owner)
}

// onState follows other gateways' claims. Two gateways that claimed one id
// at nearly the same time both see the other's online: the later claim
// (ties: the greater owner name) yields, silently, and the earlier one
// republishes its state so that the other surely sees it.
func (t *Tracker) onState(m *nats.Msg) {
	s, err := bus.ParseSubject(m.Subject)
	if err != nil || s.Kind != bus.KindNodeState {
		return
	}
	st, err := bus.ParseState(m.Data)
	if err != nil {
		return
	}
	other, online := t.owners.onState(s.Node, st)
	if !online {
		return
	}
	t.mu.Lock()
	e, mine := t.nodes[s.Node]
	if !mine {
		t.mu.Unlock()
		return
	}
	mineSince := e.Since.UnixNano()
	yield := other.since < mineSince || (other.since == mineSince && other.owner < t.owners.self)
	if yield {
		delete(t.nodes, s.Node)
	}
	addr, since := e.Address, e.Since
	t.mu.Unlock()
	t.conflicts.Add(1)
	if !yield {
		t.publishStateAt(s.Node, bus.StateOnline, addr, since)
		return
	}
	t.log.Warn("node claimed by another gateway first: yielded", "node", s.Node, "owner", other.owner)
	if t.cfg.OnExpire != nil {
		t.cfg.OnExpire(s.Node)
	}
}

// refuseClaim counts, logs (bounded) and reports a claim of an id owned by
// another gateway.
func (t *Tracker) refuseClaim(id, address string, c claim) error {
	t.ownedElsewhere.Add(1)
	if t.claimLog.Allow() {
		t.log.Warn("claim refused: id owned by another gateway", "node", id, "owner", c.owner, "address", address,
			"refused_total", t.ownedElsewhere.Load())
	}
	if t.claimReports.Allow() {
		b, _ := json.Marshal(bus.ClaimRefused{UID: id, Owner: c.owner, Claimant: t.owners.self, Address: address, Time: t.cfg.Now().UTC()})
		_ = t.cfg.Conn.Publish(bus.SubjectClaimRefused, b)
	}
	return fmt.Errorf("node %s: %w (%s)", id, ErrOwnedElsewhere, c.owner)
}
