package presence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/time/rate"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/internal/config"
	"github.com/goaiot/goaiot/internal/shrink"
)

// CommandFunc carries out one command on a node the gateway owns. It returns
// nil once the node accepted it, or an error that is shown to the sender
// (e.g. "4.00 Bad Request"). ctx carries the command timeout.
type CommandFunc func(ctx context.Context, node, resource string, payload []byte) error

// ErrCommandTimeout is the error reported when a node does not answer a
// command in time.
var ErrCommandTimeout = errors.New("timeout: the node did not answer")

// Config configures a Tracker.
type Config struct {
	Conn     *nats.Conn
	Logger   *slog.Logger
	Protocol string // bus.ProtocolCoAP, …
	Gateway  string // this gateway instance's name
	Site     string
	// Timeout: a node silent for longer goes offline. Default 120 s.
	Timeout time.Duration
	// Commands carries out commands; nil means the gateway takes none.
	Commands CommandFunc
	// CommandTimeout bounds one command. Default 5 s.
	CommandTimeout time.Duration
	// OnExpire is called (outside the tracker's lock) when a node timed out,
	// before its offline $state is published.
	OnExpire func(id string)
	// MaxNodes caps the nodes owned; beyond it Seen refuses new nodes. 0 = 100 000.
	MaxNodes int
	// Now is the clock; tests may replace it. Default time.Now.
	Now func() time.Time
	// SharedChecks: the gateway subscribes to node.check itself and hands
	// every message to [Tracker.HandleCheck]; the tracker makes no
	// node.check subscription of its own. A gateway with several trackers
	// on one connection then receives each beacon once, not once per
	// tracker.
	SharedChecks bool
	// Claims is the table of the ids gateways own, shared by the trackers
	// of one process (NewClaims), so that a node's claim is kept once, not
	// once per gateway. Nil: the tracker keeps a table of its own.
	Claims *Claims
}

// Node is what the tracker knows of one node.
type Node struct {
	ID       string    `json:"id"`
	Address  string    `json:"address"`
	LastSeen time.Time `json:"last_seen"`
	Since    time.Time `json:"since"`
}

type entry struct {
	Node
	reset  bool      // the last $state published was reset
	stated time.Time // when its online $state was last published
}

// StateRefresh is how often a node online for that long has its online
// $state published again (at its next sign of life, with its first time),
// so that the NODES stream, whose --history-age is longer, always holds the
// last $state of every online node: the queue and the dashboard read it at
// start to know who owns what (gateways/queue, "Replies").
const StateRefresh = 24 * time.Hour

// Stats counts what a tracker did.
type Stats struct {
	Online, Added, Expired, Refused   int64
	Commands, CommandsOK, CommandsErr int64
	// OwnedElsewhere counts claims refused because another gateway owns
	// the id; Conflicts, ids two gateways claimed at once (see owners).
	OwnedElsewhere, Conflicts int64
}

// Tracker owns the presence of one gateway's nodes.
type Tracker struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	nodes map[string]*entry
	peak  shrink.Peak // of nodes (see sweep)
	due   *deadlines  // the nodes by when they may time out (see sweep)

	// inbox receives every gateway.*.*.set on the bus (one subscription,
	// made by follow); handleCommand keeps those of the nodes owned here.
	inbox chan *nats.Msg

	added, expired, refused       atomic.Int64
	commands, commandsOK, cmdErrs atomic.Int64
	pool                          *commandPool

	owners                    *owners
	followOnce                sync.Once
	unfollow                  func() // ends the owners' and the commands' subscriptions
	followErr                 error
	ownedElsewhere, conflicts atomic.Int64
	claimLog, claimReports    *rate.Limiter
	// checkHeader is the header of every node.check published (shared,
	// never changed: PublishMsg only reads it).
	checkHeader nats.Header
}

// ErrTooManyNodes is returned by Seen when MaxNodes is reached.
var ErrTooManyNodes = errors.New("node limit reached")

// setDefaults fills the zero fields (package internal/config: defaults,
// then validate).
func (c *Config) setDefaults() {
	config.Default(&c.Timeout, 120*time.Second)
	config.Default(&c.CommandTimeout, 5*time.Second)
	config.Default(&c.MaxNodes, 100_000)
	if c.Now == nil {
		c.Now = time.Now
	}
}

// validate checks the filled config.
func (c *Config) validate() error {
	switch {
	case c.Conn == nil:
		return errors.New("presence: no nats connection")
	case c.Logger == nil:
		return errors.New("presence: no logger")
	case c.Protocol == "":
		return errors.New("presence: no protocol")
	case c.Gateway == "":
		return errors.New("presence: no gateway name")
	case c.Timeout < 0 || c.CommandTimeout < 0:
		return errors.New("presence: negative timeout")
	}
	return nil
}

// New fills and validates cfg.
func New(cfg Config) (*Tracker, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Tracker{
		cfg:   cfg,
		log:   cfg.Logger,
		nodes: make(map[string]*entry),
		due:   newDeadlines(sweepEvery(cfg.Timeout)),
		inbox: make(chan *nats.Msg, 4096),
		pool:  newCommandPool(DefaultCommandWorkers, DefaultCommandsPerNode, DefaultCommandsQueued),

		owners:       newOwners(cfg),
		claimLog:     rate.NewLimiter(1, 1),
		claimReports: rate.NewLimiter(10, 20),
		checkHeader:  nats.Header{bus.HeaderOwner: []string{cfg.Gateway}},
	}, nil
}

// Run times nodes out and dispatches commands until ctx ends, then marks
// every owned node offline.
func (t *Tracker) Run(ctx context.Context) error {
	if err := t.follow(); err != nil {
		return err
	}
	defer t.unfollow()
	tick := time.NewTicker(sweepEvery(t.cfg.Timeout))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			t.forgetAll()
			return nil
		case m := <-t.inbox:
			t.handleCommand(m)
		case <-tick.C:
			t.sweep()
		}
	}
}

func sweepEvery(timeout time.Duration) time.Duration {
	return min(max(timeout/10, 10*time.Millisecond), time.Second)
}

// Seen records a sign of life from node id at address. A new node is
// published online and its commands are served; a known node is refreshed
// (and republished online if its address changed). It returns whether the
// node was new. Seen makes no round trip to the server (after the first
// call, see follow), so a gateway may call it under its own lock.
func (t *Tracker) Seen(id, address string) (bool, error) {
	if err := bus.ValidateNodeID(id); err != nil {
		return false, err
	}
	if err := t.follow(); err != nil {
		return false, err
	}
	now := t.cfg.Now()
	t.mu.Lock()
	e, ok := t.nodes[id]
	if ok {
		e.LastSeen = now
		moved := e.Address != address
		back := e.reset // a sign of life after a reboot: online again
		stale := now.Sub(e.stated) >= StateRefresh
		e.Address, e.reset = address, false
		if moved || back || stale {
			e.stated = now
		}
		since := e.Since
		t.mu.Unlock()
		if moved {
			t.log.Info("node moved", "node", id, "address", address)
		}
		switch {
		case moved || back:
			t.publishState(id, bus.StateOnline, address)
		case stale:
			t.publishStateAt(id, bus.StateOnline, address, since)
		}
		return false, nil
	}
	if c, owned := t.owners.owner(id); owned {
		t.mu.Unlock()
		return false, t.refuseClaim(id, address, c)
	}
	if len(t.nodes) >= t.cfg.MaxNodes {
		t.mu.Unlock()
		t.refused.Add(1)
		return false, fmt.Errorf("node %s: %w (%d)", id, ErrTooManyNodes, t.cfg.MaxNodes)
	}
	// Once the node is seen online it must take commands: the tracker's
	// one command subscription (gateway.*.*.set) is on the server since
	// follow, and the node is owned here before its $state leaves.
	e = &entry{Node: Node{ID: id, Address: address, LastSeen: now, Since: now}, stated: now}
	t.nodes[id] = e
	t.due.file(e, now.Add(t.cfg.Timeout))
	t.peak.Note(len(t.nodes))
	t.mu.Unlock()
	t.added.Add(1)
	t.log.Info("node online", "node", id, "address", address)
	t.publishState(id, bus.StateOnline, address)
	return true, nil
}

// follow makes sure the tracker follows the other gateways' claims (see
// owners.go) and every command (gateway.*.*.set) before it makes its first
// claim: once, from Run or from the first Seen, whichever comes first, and
// flushed, so that the server has the subscriptions before any claim of
// this tracker is published: whoever sees one of its nodes online can
// command it.
func (t *Tracker) follow() error {
	t.followOnce.Do(func() {
		t.unfollow, t.followErr = t.subscribeClaims()
		if t.followErr == nil {
			t.flush()
		}
	})
	return t.followErr
}

// Reset publishes that node id rebooted; the gateway then rediscovers it.
// Its next sign of life (Seen) publishes it online again.
func (t *Tracker) Reset(id string) {
	t.mu.Lock()
	e, ok := t.nodes[id]
	var addr string
	if ok {
		e.LastSeen = t.cfg.Now()
		e.reset = true
		addr = e.Address
	}
	t.mu.Unlock()
	if !ok {
		return
	}
	t.log.Info("node reset", "node", id)
	t.publishState(id, bus.StateReset, addr)
}

// Sync waits (at most a second) until the server has what the tracker sent
// (the $state of nodes just seen). Commands need no Sync: a node takes
// them as soon as Seen returns, through the tracker's one subscription
// made before its first claim. A gateway may call Sync, outside its own
// locks, when it wants the bus to have heard of a node before it answers
// the node.
func (t *Tracker) Sync() { t.flush() }

// Forget publishes node id offline and stops serving its commands: once
// Forget returns, they are answered by whoever answers for nodes no
// gateway owns (gateways/queue; see the package doc, "Replies").
func (t *Tracker) Forget(id string) {
	t.mu.Lock()
	e, ok := t.nodes[id]
	delete(t.nodes, id)
	t.mu.Unlock()
	if ok {
		t.drop(e, "left")
	}
}

// flush waits until the server has processed what this connection sent
// (subscription changes included), bounded by a second.
func (t *Tracker) flush() {
	if err := t.cfg.Conn.FlushTimeout(time.Second); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		t.log.Debug("flush", "err", err)
	}
}

func (t *Tracker) drop(e *entry, why string) {
	t.log.Info("node offline", "node", e.ID, "why", why)
	t.publishState(e.ID, bus.StateOffline, e.Address)
}

// sweep times out the nodes silent for longer than the timeout. It looks
// only at the nodes whose deadline may have come (deadlines), not at every
// node.
func (t *Tracker) sweep() {
	t.owners.prune()
	now := t.cfg.Now()
	cutoff := now.Add(-t.cfg.Timeout)
	var gone []*entry
	t.mu.Lock()
	t.due.due(now, func(e *entry) (time.Time, bool) {
		switch {
		case t.nodes[e.ID] != e: // left (Forget, a yield) or replaced
			return time.Time{}, false
		case e.LastSeen.Before(cutoff):
			gone = append(gone, e)
			delete(t.nodes, e.ID)
			return time.Time{}, false
		}
		return e.LastSeen.Add(t.cfg.Timeout), true
	})
	t.nodes = shrink.Map(t.nodes, &t.peak) // after id churn, the memory comes back
	t.mu.Unlock()
	for _, e := range gone {
		t.expired.Add(1)
		// The gateway forgets the node before the bus hears it is offline.
		if t.cfg.OnExpire != nil {
			t.cfg.OnExpire(e.ID)
		}
		t.drop(e, "silent for "+t.cfg.Timeout.String())
	}
}

func (t *Tracker) forgetAll() {
	t.mu.Lock()
	all := t.nodes
	t.nodes = make(map[string]*entry)
	t.due.reset()
	t.mu.Unlock()
	for _, e := range all {
		t.drop(e, "gateway stopping")
	}
	t.flush()
}

// Lookup returns what is known of node id.
func (t *Tracker) Lookup(id string) (Node, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.nodes[id]; ok {
		return e.Node, true
	}
	return Node{}, false
}

// Nodes lists the owned nodes, sorted by id.
func (t *Tracker) Nodes() []Node {
	t.mu.Lock()
	out := make([]Node, 0, len(t.nodes))
	for _, e := range t.nodes {
		out = append(out, e.Node)
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Stats returns the counters.
func (t *Tracker) Stats() Stats {
	t.mu.Lock()
	online := int64(len(t.nodes))
	t.mu.Unlock()
	return Stats{
		Online: online, Added: t.added.Load(), Expired: t.expired.Load(), Refused: t.refused.Load(),
		Commands: t.commands.Load(), CommandsOK: t.commandsOK.Load(), CommandsErr: t.cmdErrs.Load(),
		OwnedElsewhere: t.ownedElsewhere.Load(), Conflicts: t.conflicts.Load(),
	}
}

func (t *Tracker) publishState(id, state, address string) {
	t.publishStateAt(id, state, address, t.cfg.Now())
}

// publishStateAt publishes a $state stamped at (a claim's time when it is
// said again, so that other gateways compare claims by when they were made).
func (t *Tracker) publishStateAt(id, state, address string, at time.Time) {
	s := bus.State{State: state, Protocol: t.cfg.Protocol, Gateway: t.cfg.Gateway,
		Site: t.cfg.Site, Address: address, Time: at.UTC()}
	t.publishJSON(bus.NodeState(id), s)
}

// PublishValue publishes a string value of a node's resource.
func (t *Tracker) PublishValue(id, res, value string) error {
	if err := bus.ValidateResource(res); err != nil {
		return err
	}
	return t.publishJSON(bus.NodeValue(id, res), bus.StringValue(value, t.cfg.Now().UTC()))
}

// PublishResources publishes a node's resource names.
func (t *Tracker) PublishResources(id string, names []string) error {
	return t.publishJSON(bus.NodeResources(id), names)
}

// PublishCheck publishes node.check for node id, for protocols whose nodes
// do not publish it themselves. It carries bus.HeaderOwner so that MQTT node
// logic does not claim the node.
func (t *Tracker) PublishCheck(id string) error {
	b, err := bus.AppendCheck(make([]byte, 0, 16+len(id)), id)
	if err != nil {
		return fmt.Errorf("publish check: %w", err)
	}
	m := &nats.Msg{Subject: bus.SubjectNodeCheck, Data: b, Header: t.checkHeader}
	if err := t.cfg.Conn.PublishMsg(m); err != nil {
		return fmt.Errorf("publish check: %w", err)
	}
	return nil
}

func (t *Tracker) publishJSON(subject string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	if err := t.cfg.Conn.Publish(subject, b); err != nil {
		t.log.Error("publish", "subject", subject, "err", err)
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	return nil
}

// handleCommand serves one gateway.<id>.<res>.set of the bus: a command to
// a node this tracker owns is carried out (or refused) and answered; any
// other is someone else's to answer (another gateway's, or the queue's) and
// is ignored without a word.
func (t *Tracker) handleCommand(m *nats.Msg) {
	node, ok := bus.CommandNode(m.Subject)
	if !ok {
		return
	}
	if _, owned := t.Lookup(node); !owned {
		return
	}
	if !bus.IsCommandRequest(m) { // delivered by a JetStream consumer, or no request
		t.log.Debug("command ignored: not a request", "subject", m.Subject, "reply", m.Reply)
		return
	}
	s, err := bus.ParseSubject(m.Subject)
	if err != nil || s.Kind != bus.KindGatewaySet {
		t.reply(m, node, "", fmt.Errorf("bad command subject: %w", errors.Join(errBadSubject, err)))
		return
	}
	t.commands.Add(1)
	if t.cfg.Commands == nil {
		t.reply(m, s.Node, s.Resource, fmt.Errorf("node %s: %w by gateway %s", s.Node, ErrNotServed, t.cfg.Gateway))
		return
	}
	c := command{msg: m, node: s.Node, res: s.Resource, payload: append([]byte(nil), m.Data...)}
	if err := t.pool.submit(c, t.runCommand); err != nil {
		t.reply(m, s.Node, s.Resource, err)
	}
}

func (t *Tracker) reply(m *nats.Msg, node, res string, err error) {
	r := bus.Reply{OK: err == nil, Code: replyCode(err)}
	if err != nil {
		r.Error = err.Error()
		t.cmdErrs.Add(1)
		t.log.Warn("command failed", "node", node, "resource", res, "err", err)
	} else {
		t.commandsOK.Add(1)
		t.log.Debug("command done", "node", node, "resource", res)
	}
	b, _ := json.Marshal(r) // a Reply always marshals
	if m.Reply == "" {
		return
	}
	if err := m.Respond(b); err != nil {
		t.log.Error("command reply", "node", node, "err", err)
	}
}

// errBadSubject marks a command on a subject that is not gateway.<id>.<res>.set.
var errBadSubject = errors.New("not gateway.<id>.<res>.set")

// replyCode is the bus.Reply code of a command's outcome (see doc.go).
func replyCode(err error) string {
	switch {
	case err == nil:
		return bus.CodeOK
	case errors.Is(err, ErrCommandTimeout), errors.Is(err, context.DeadlineExceeded):
		return bus.CodeTimeout
	case errors.Is(err, ErrCommandsBusy):
		return bus.CodeBusy
	case errors.Is(err, ErrNotServed):
		return bus.CodeNoGateway
	case errors.Is(err, errBadSubject):
		return bus.CodeBadRequest
	}
	return bus.CodeRefused
}
