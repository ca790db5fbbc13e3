package mqttsn

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/gateways/mqttsn/packet"
	"github.com/goaiot/goaiot/gateways/persist"
)

// persistKind is the first token of the MQTT-SN gateway's keys in
// NODE_TABLES.
const persistKind = "mqttsn"

// sessionVersion is the version of sessionEntry written; others are skipped.
const sessionVersion = 1

// sessionEntry is what NODE_TABLES keeps of one session (see doc.go,
// "Restarts"): enough for the client to go on publishing, registering and
// receiving without a new CONNECT. Messages queued or in flight are not
// kept.
type sessionEntry struct {
	V         int          `json:"v"`
	ID        string       `json:"id"`
	Addr      string       `json:"addr"`
	Clean     bool         `json:"clean,omitempty"`
	KeepAlive uint16       `json:"keepalive"`       // seconds
	Sleep     uint16       `json:"sleep,omitempty"` // seconds; set: asleep
	Will      *willEntry   `json:"will,omitempty"`
	Topics    []topicEntry `json:"topics,omitempty"`
	NextTopic uint16       `json:"next_topic,omitempty"`
	Subs      []subEntry   `json:"subs,omitempty"`
	Resources []string     `json:"resources,omitempty"`
	Check     string       `json:"check,omitempty"` // the node its last node/check announced
}

type willEntry struct {
	Subject string `json:"subject"`
	Data    []byte `json:"data,omitempty"`
}

type topicEntry struct {
	ID   uint16 `json:"id"`
	Name string `json:"name"`
}

type subEntry struct {
	Filter  string             `json:"filter"`
	QoS     int                `json:"qos"`
	Type    packet.TopicIDType `json:"type"` // 0 normal, 1 predefined, 2 short
	TopicID uint16             `json:"topic_id,omitempty"`
	Seq     uint64             `json:"seq"`
}

// entry is what NODE_TABLES keeps of c. g.mu held.
func (c *client) entry() sessionEntry {
	e := sessionEntry{V: sessionVersion, ID: c.id, Addr: c.addr.String(), Clean: c.clean,
		KeepAlive: uint16(c.keepAlive / time.Second), NextTopic: c.nextTopicID, Check: c.check}
	if c.state == stateAsleep || c.state == stateAwake {
		e.Sleep = uint16(c.sleep / time.Second)
	}
	if c.will != nil && c.will.subject != "" {
		e.Will = &willEntry{Subject: c.will.subject, Data: c.will.data}
	}
	for id, t := range c.ids {
		e.Topics = append(e.Topics, topicEntry{ID: id, Name: t.name})
	}
	slices.SortFunc(e.Topics, func(a, b topicEntry) int { return cmp.Compare(a.ID, b.ID) })
	for _, s := range c.subs {
		e.Subs = append(e.Subs, subEntry{Filter: s.filter, QoS: s.qos, Type: s.idType, TopicID: s.topicID, Seq: s.seq})
	}
	slices.SortFunc(e.Subs, func(a, b subEntry) int { return cmp.Compare(a.Seq, b.Seq) })
	for r := range c.resources {
		e.Resources = append(e.Resources, r)
	}
	slices.Sort(e.Resources)
	return e
}

func (g *Gateway) newTable() (*persist.Table[sessionEntry], error) {
	return persist.New(persist.Config[sessionEntry]{
		Conn: g.cfg.Conn, Logger: g.log, Kind: persistKind, Gateway: g.cfg.Name,
		Entries: g.entries, Decode: g.decodeSession, Delay: g.cfg.PersistDelay,
		MaxEntries: g.cfg.MaxClients, MaxPending: 2 * g.cfg.MaxClients,
	})
}

// changed marks c's session to be written to NODE_TABLES. g.mu held.
func (g *Gateway) changed(c *client) { g.table.Changed(c.id) }

// entries returns the accepted sessions of ids (all when ids is nil).
func (g *Gateway) entries(ids []string) map[string]sessionEntry {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ids == nil {
		ids = slices.Collect(maps.Keys(g.byID))
	}
	out := make(map[string]sessionEntry, len(ids))
	for _, id := range ids {
		if c := g.byID[id]; c != nil && c.accepted {
			out[id] = c.entry()
		}
	}
	return out
}

var errEntry = errors.New("mqttsn session entry")

// decodeSession parses a stored session of client id and checks it as the
// gateway checks a client's messages: a valid client id, an address,
// topics that are subjects, subscriptions and a will within the client's
// rights, every count within the gateway's caps.
func (g *Gateway) decodeSession(id string, data []byte) (sessionEntry, error) {
	var e sessionEntry
	if err := json.Unmarshal(data, &e); err != nil {
		return sessionEntry{}, fmt.Errorf("%w: %w", errEntry, err)
	}
	if err := g.checkSession(id, &e); err != nil {
		return sessionEntry{}, fmt.Errorf("%w of %q: %w", errEntry, id, err)
	}
	return e, nil
}

func (g *Gateway) checkSession(id string, e *sessionEntry) error {
	switch {
	case e.V != sessionVersion:
		return fmt.Errorf("version %d, want %d", e.V, sessionVersion)
	case e.ID != id:
		return fmt.Errorf("session of %q under its key", e.ID)
	case !validClientID(e.ID) || len(bus.ClientNodeIDs(e.ID)) == 0:
		return errors.New("client id is not a node id")
	case e.Check != "" && !bus.SpeaksFor(e.ID, e.Check):
		return fmt.Errorf("check of %q", e.Check)
	}
	if _, err := sessionAddr(e.Addr); err != nil {
		return err
	}
	if err := g.checkWill(e); err != nil {
		return err
	}
	if err := g.checkTopics(e); err != nil {
		return err
	}
	if err := g.checkSubs(e); err != nil {
		return err
	}
	return g.checkResources(e)
}

// sessionAddr parses a session's client address.
func sessionAddr(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address: %w", err)
	}
	if ap.Port() == 0 || ap.Addr().IsUnspecified() {
		return netip.AddrPort{}, fmt.Errorf("address %s: no address or port", ap)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

func (g *Gateway) checkWill(e *sessionEntry) error {
	if e.Will == nil {
		return nil
	}
	if _, err := publishRight(e.ID, e.Will.Subject); err != nil {
		return fmt.Errorf("will on %q: %w", e.Will.Subject, err)
	}
	if g.cfg.MaxValueBytes > 0 && len(e.Will.Data) > g.cfg.MaxValueBytes {
		return fmt.Errorf("will of %d bytes", len(e.Will.Data))
	}
	return nil
}

func (g *Gateway) checkTopics(e *sessionEntry) error {
	if len(e.Topics) > g.cfg.MaxTopics {
		return fmt.Errorf("%d topics, max %d", len(e.Topics), g.cfg.MaxTopics)
	}
	ids, names := map[uint16]bool{}, map[string]bool{}
	for _, t := range e.Topics {
		if t.ID == 0 || t.ID == 0xFFFF || ids[t.ID] || names[t.Name] {
			return fmt.Errorf("topic id %d (%q): zero, reserved or twice", t.ID, t.Name)
		}
		if _, err := g.literalSubject(t.Name); err != nil {
			return fmt.Errorf("topic %q: %w", t.Name, err)
		}
		ids[t.ID], names[t.Name] = true, true
	}
	return nil
}

func (g *Gateway) checkSubs(e *sessionEntry) error {
	if len(e.Subs) > g.cfg.MaxSubscriptions {
		return fmt.Errorf("%d subscriptions, max %d", len(e.Subs), g.cfg.MaxSubscriptions)
	}
	seen := map[string]bool{}
	for _, s := range e.Subs {
		if s.QoS < 0 || s.QoS > 2 || seen[s.Filter] {
			return fmt.Errorf("subscription %q: qos %d or twice", s.Filter, s.QoS)
		}
		seen[s.Filter] = true
		switch s.Type {
		case packet.TopicNormal, packet.TopicPredefined:
		case packet.TopicShort:
			if packet.ShortTopicName(s.TopicID) != s.Filter {
				return fmt.Errorf("short subscription %q: id %d", s.Filter, s.TopicID)
			}
		default:
			return fmt.Errorf("subscription %q: topic id type %d", s.Filter, s.Type)
		}
		subject, err := bus.TopicToSubject(s.Filter)
		if err != nil {
			return fmt.Errorf("subscription %q: %w", s.Filter, err)
		}
		if err := subscribeRight(e.ID, subject); err != nil {
			return fmt.Errorf("subscription %q: %w", s.Filter, err)
		}
	}
	return nil
}

func (g *Gateway) checkResources(e *sessionEntry) error {
	if g.cfg.MaxResources > 0 && len(e.Resources) > g.cfg.MaxResources {
		return fmt.Errorf("%d resources, max %d", len(e.Resources), g.cfg.MaxResources)
	}
	for _, r := range e.Resources {
		if err := bus.ValidateResource(r); err != nil {
			return err
		}
	}
	return nil
}

// restore loads the sessions kept in NODE_TABLES, before the first
// datagram is read. Without the bucket the gateway runs unpersisted.
func (g *Gateway) restore(ctx context.Context) {
	if g.table == nil {
		return
	}
	stored, err := g.table.Load(ctx)
	if err != nil {
		g.log.Error("sessions not persisted: after a restart clients must connect again", "err", err)
		return
	}
	ids := slices.Sorted(maps.Keys(stored))
	now := time.Now()
	g.mu.Lock()
	n := 0
	for _, id := range ids {
		if err := g.restoreSession(stored[id], now); err != nil {
			g.log.Warn("session not restored", "client", id, "err", err)
			continue
		}
		n++
	}
	g.mu.Unlock()
	if n == 0 {
		return
	}
	if err := g.nc.FlushTimeout(g.cfg.RetryInterval); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		g.log.Warn("nats flush after restoring subscriptions", "err", err)
	}
	g.log.Info("sessions restored from the node table: clients go on without a new CONNECT", "clients", n)
}

// restoreSession makes one stored session live again. g.mu held.
func (g *Gateway) restoreSession(e sessionEntry, now time.Time) error {
	addr, _ := sessionAddr(e.Addr) // checked by decodeSession
	switch {
	case g.byAddr[addr] != nil:
		return fmt.Errorf("address %s held by client %q", addr, g.byAddr[addr].id)
	case len(g.byID) >= g.cfg.MaxClients:
		return fmt.Errorf("%d clients held (max)", len(g.byID))
	}
	c := g.newSession(e.ID, addr, now, nil)
	c.clean, c.keepAlive, c.nextTopicID, c.check = e.Clean, time.Duration(e.KeepAlive)*time.Second, e.NextTopic, e.Check
	c.state, c.accepted, c.restored = stateActive, true, true
	if e.Sleep > 0 {
		c.state, c.sleep = stateAsleep, time.Duration(e.Sleep)*time.Second
	}
	if e.Will != nil {
		c.will = &will{subject: e.Will.Subject, data: e.Will.Data}
	}
	for _, t := range e.Topics {
		subject, _ := g.literalSubject(t.Name) // checked by decodeSession
		c.addTopic(t.ID, topic{name: t.Name, subject: subject})
	}
	for _, r := range e.Resources {
		c.resources[r] = true
	}
	g.byID[c.id], g.byAddr[addr] = c, c
	for _, s := range e.Subs {
		if err := g.restoreSub(c, s); err != nil {
			g.log.Warn("subscription not restored", "client", c.id, "filter", s.Filter, "err", err)
		}
	}
	return nil
}

// restoreSub subscribes on NATS for one stored subscription of c.
// Predefined ids are checked against today's --mqttsn-topics.
func (g *Gateway) restoreSub(c *client, e subEntry) error {
	if e.Type == packet.TopicPredefined && g.cfg.Predefined[e.TopicID] != e.Filter {
		return fmt.Errorf("predefined topic id %d is no longer %q", e.TopicID, e.Filter)
	}
	subject, _ := bus.TopicToSubject(e.Filter) // checked by decodeSession
	sub, err := g.nc.ChanSubscribe(subject, g.inbox)
	if err != nil {
		return fmt.Errorf("nats subscribe %s: %w", subject, err)
	}
	s := &subscription{client: c, filter: e.Filter, subject: subject, qos: e.QoS, seq: e.Seq,
		idType: e.Type, topicID: e.TopicID, sub: sub}
	c.subs[s.filter], g.subs[sub] = s, s
	c.subSeq = max(c.subSeq, e.Seq)
	return nil
}

// resumed is the first sign of life of a restored client (pkt, or a wake
// when nil): unless it connects again, the MQTT node logic hears from it
// the node/check it announced before the restart, so that the node is
// online at its first value rather than at its next beacon. g.mu held.
func (g *Gateway) resumed(c *client, pkt packet.Packet) {
	c.restored = false
	switch pkt.(type) {
	case nil, *packet.Publish, *packet.Register, *packet.Subscribe, *packet.Pingreq:
	default:
		return // DISCONNECT, an answer to the gateway: nothing to announce
	}
	if c.check == "" {
		return
	}
	data, _ := json.Marshal(bus.Check{ID: c.check}) // a Check always marshals
	if g.admit(c, g.peers[c.addr], bus.SubjectNodeCheck, data) == packet.Accepted {
		_ = g.relay(c, bus.SubjectNodeCheck, data)
	}
}

// flushTable writes the pending session changes once the gateway stopped.
func (g *Gateway) flushTable() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !g.table.Flush(ctx) {
		g.log.Warn("sessions: changes not written to the node table before stopping (bucket unreachable)")
	}
}
