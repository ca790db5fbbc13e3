package presence

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/internal/shrink"
)

// ErrOwnedElsewhere is returned by Seen for an id another gateway owns.
var ErrOwnedElsewhere = errors.New("owned by another gateway")

// maxForeign bounds the claims a Claims table remembers; claims silent
// for longer than the timeout are pruned (Claims.prune).
const maxForeign = 1 << 20

// Claims is the table of the ids gateways own, as their $state says: an
// id belongs to the gateway whose $state said online (or reset) first, for
// as long as that gateway says so and the node keeps beaconing
// (node.check); an id silent for longer than a tracker's timeout is free
// again for that tracker, so that a crashed gateway does not hold its ids
// forever. The trackers of one process share one table
// (Config.Claims), so that each node's claim is kept once, not once per
// gateway: each tracker sees the claims of the other gateways only. An id
// holds one claim per gateway that says it is online, so that the trackers,
// each reading the bus on its own connection and at its own pace, never
// overwrite one gateway's claim with another's: a tracker that is behind
// replays an older owner's online and offline, which add and remove that
// owner's claim only. Make one with NewClaims.
type Claims struct {
	mu     sync.Mutex
	byID   map[string]claimSet
	peak   shrink.Peak       // of byID (see prune)
	max    int               // bound of byID (maxForeign)
	pruned time.Time         // last prune
	ttl    time.Duration     // the longest timeout of the trackers that use it: prune's
	names  map[string]string // owner names, interned (at most maxNames)
}

// NewClaims returns an empty table, for the trackers of one process to
// share (Config.Claims).
func NewClaims() *Claims {
	return &Claims{byID: make(map[string]claimSet), max: maxForeign, names: make(map[string]string)}
}

// maxNames bounds the interned owner names: gateways are few.
const maxNames = 1024

// claim is a gateway's claim on an id. It is small, for a table holds one
// for every node: the owner's name is shared by all its claims, and the
// times are Unix nanoseconds.
type claim struct {
	owner       string // "<protocol>/<gateway>"
	since, seen int64  // when the owner claimed the id; when it last said so
}

// gateway is the owner's gateway name.
func (c claim) gateway() string { return c.owner[strings.IndexByte(c.owner, '/')+1:] }

// claimSet is the claims on one id, one per owner: almost always one,
// kept inline; more while gateways dispute the id or the trackers catch up.
type claimSet struct {
	first claim
	more  []claim
}

// each calls f with a pointer to every claim in the set.
func (s *claimSet) each(f func(*claim)) {
	f(&s.first)
	for i := range s.more {
		f(&s.more[i])
	}
}

// find returns owner's claim in the set, nil if it has none.
func (s *claimSet) find(owner string) *claim {
	if s.first.owner == owner {
		return &s.first
	}
	for i := range s.more {
		if s.more[i].owner == owner {
			return &s.more[i]
		}
	}
	return nil
}

// remove drops the claims drop picks; false when none is left.
func (s *claimSet) remove(drop func(claim) bool) bool {
	s.more = slices.DeleteFunc(s.more, drop)
	if drop(s.first) {
		if len(s.more) == 0 {
			return false
		}
		s.first, s.more = s.more[0], s.more[1:]
	}
	if len(s.more) == 0 {
		s.more = nil
	}
	return true
}

// intern returns the one copy of owner name kept for every claim of that
// owner. c.mu is held.
func (c *Claims) intern(name string) string {
	if n, ok := c.names[name]; ok {
		return n
	}
	if len(c.names) < maxNames {
		c.names[name] = name
	}
	return name
}

// use notes a tracker's timeout: claims are kept for the longest.
func (c *Claims) use(ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ttl = max(c.ttl, ttl)
}

// prune forgets the claims nobody refreshed for longer than the longest
// timeout (an owner that crashed, or ids that came and went), at most once
// per that timeout.
func (c *Claims) prune(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.pruned) < c.ttl {
		return
	}
	c.pruned = now
	stale := func(cl claim) bool { return now.UnixNano()-cl.seen > int64(c.ttl) }
	for id, set := range c.byID {
		if set.remove(stale) {
			c.byID[id] = set
		} else {
			delete(c.byID, id)
		}
	}
	c.byID = shrink.Map(c.byID, &c.peak)
}

// owners is a tracker's view of a Claims table: the ids the other
// gateways own.
type owners struct {
	*Claims
	self    string // "<protocol>/<gateway>"
	gateway string
	ttl     time.Duration
	now     func() time.Time
}

// stale reports whether c was not refreshed within the timeout, at now.
func (o *owners) stale(c claim, now time.Time) bool { return now.UnixNano()-c.seen > int64(o.ttl) }

func ownerName(protocol, gateway string) string { return protocol + "/" + gateway }

// newOwners returns the tracker's view of cfg.Claims, or of a table of its
// own when cfg has none.
func newOwners(cfg Config) *owners {
	table := cfg.Claims
	if table == nil {
		table = NewClaims()
	}
	table.use(cfg.Timeout)
	return &owners{Claims: table, self: ownerName(cfg.Protocol, cfg.Gateway), gateway: cfg.Gateway, ttl: cfg.Timeout, now: cfg.Now}
}

// prune prunes the table (see Claims.prune).
func (o *owners) prune() { o.Claims.prune(o.now()) }

// owner returns who else owns id now, if anyone: the earliest claim of
// another gateway that is not silent for longer than this tracker's
// timeout.
func (o *owners) owner(id string) (claim, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	set, ok := o.byID[id]
	if !ok {
		return claim{}, false
	}
	now := o.now()
	var first claim
	found := false
	set.each(func(c *claim) {
		if c.gateway() == o.gateway || o.stale(*c, now) {
			return
		}
		if !found || c.since < first.since || (c.since == first.since && c.owner < first.owner) {
			first, found = *c, true
		}
	})
	return first, found
}

// maxOwnersPerID bounds the claims kept on one id: gateways that dispute
// one id at once are few.
const maxOwnersPerID = 8

// onState records another gateway's $state of id; it returns the claim when
// that gateway says the node is online. The trackers sharing a table each
// record the same $state: the first records it, the others refresh it.
func (o *owners) onState(id string, s bus.State) (claim, bool) {
	name := ownerName(s.Protocol, s.Gateway)
	if s.Gateway == o.gateway {
		return claim{}, false // this gateway's own trackers (MQTT and MQTT-SN) settle moves themselves
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	set, ok := o.byID[id]
	if s.State == bus.StateOffline {
		if !ok {
			return claim{}, false
		}
		if set.remove(func(c claim) bool { return c.owner == name }) {
			o.byID[id] = set
		} else {
			delete(o.byID, id)
		}
		return claim{}, false
	}
	now := o.now()
	switch {
	case ok:
		if c := set.find(name); c != nil {
			c.seen = now.UnixNano()
			got := *c
			o.byID[id] = set
			return got, true
		}
		if len(set.more)+1 >= maxOwnersPerID {
			return claim{}, false
		}
	case len(o.byID) >= o.max:
		return claim{}, false
	default:
		id = strings.Clone(id) // not the subject it was cut from
	}
	since := s.Time
	if since.IsZero() {
		since = now
	}
	c := claim{owner: o.intern(name), since: since.UnixNano(), seen: now.UnixNano()}
	if ok {
		set.more = append(set.more, c)
	} else {
		set = claimSet{first: c}
	}
	o.byID[id] = set
	o.peak.Note(len(o.byID))
	return c, true
}

// onBeacon refreshes the other gateways' claims on id: those of the
// gateway that announced it, or all of them when the node itself did.
func (o *owners) onBeacon(id, gateway string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	set, ok := o.byID[id]
	if !ok {
		return
	}
	now := o.now().UnixNano()
	set.each(func(c *claim) {
		if c.gateway() != o.gateway && (gateway == "" || gateway == c.gateway()) {
			c.seen = now
		}
	})
	o.byID[id] = set
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
