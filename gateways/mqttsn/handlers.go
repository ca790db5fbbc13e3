package mqttsn

import (
	"net/netip"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/gateways/mqttsn/packet"
	"github.com/goaiot/goaiot/internal/shrink"
)

// maxClientIDLen is the longest client id accepted (MQTT-SN says 23; RIOT
// and others send longer ones).
const maxClientIDLen = 64

// dispatch handles one decoded message from addr. g.mu is held.
func (g *Gateway) dispatch(addr netip.AddrPort, p *peer, pkt packet.Packet, now time.Time) {
	switch m := pkt.(type) {
	case *packet.SearchGW:
		g.send(addr, &packet.GWInfo{GatewayID: g.cfg.GatewayID})
		return
	case *packet.Advertise, *packet.GWInfo:
		g.log.Debug("ignored another gateway's message", "addr", addr.String(), "type", pkt.Type())
		return
	case *packet.Connect:
		g.connect(addr, p, m, now)
		return
	case *packet.Pingreq:
		if m.ClientID != "" {
			g.wake(addr, m.ClientID, now)
			return
		}
	case *packet.Publish:
		if m.Flags.QoS() == -1 {
			g.publishQoSMinus1(addr, p, m)
			return
		}
	}
	c := g.byAddr[addr]
	if c == nil {
		// Not connected (or forgotten, or not restored after a restart):
		// tell it so, which makes well-behaved clients connect again.
		g.badInput("message from a client that is not connected", "addr", addr.String(), "type", pkt.Type())
		g.stats.dropped.Add(1)
		g.send(addr, &packet.Disconnect{})
		return
	}
	c.lastSeen = now
	if c.restored {
		g.resumed(c, pkt)
	}
	g.handle(c, p, pkt, now)
}

// handle dispatches a message of a known client.
func (g *Gateway) handle(c *client, p *peer, pkt packet.Packet, now time.Time) {
	switch m := pkt.(type) {
	case *packet.WillTopic:
		g.willTopic(c, p, m)
	case *packet.WillMsg:
		g.willMsg(c, m)
	case *packet.Register:
		g.register(c, p, m)
	case *packet.Regack:
		g.regack(c, m)
	case *packet.Publish:
		g.publish(c, p, m)
	case *packet.Puback:
		g.puback(c, m)
	case *packet.MsgIDOnly:
		g.msgIDOnly(c, m, now)
	case *packet.Subscribe:
		g.subscribe(c, p, m)
	case *packet.Unsubscribe:
		g.unsubscribe(c, m)
	case *packet.Pingreq:
		g.send(c.addr, &packet.Pingresp{})
	case *packet.Disconnect:
		g.disconnect(c, m, now)
	case *packet.WillTopicUpd:
		g.willTopicUpd(c, p, m)
	case *packet.WillMsgUpd:
		if c.will != nil {
			c.will.data = append([]byte(nil), m.Message...)
			g.changed(c)
		}
		g.send(c.addr, &packet.WillMsgResp{ReturnCode: packet.Accepted})
	default:
		g.stats.dropped.Add(1)
		g.badInput("dropped unexpected message", "client", c.id, "type", pkt.Type())
	}
}

// validClientID accepts 1..64 printable UTF-8 characters.
func validClientID(id string) bool {
	if id == "" || len(id) > maxClientIDLen || !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func (g *Gateway) connect(addr netip.AddrPort, p *peer, m *packet.Connect, now time.Time) {
	refuse := func(code packet.ReturnCode, why string) {
		g.stats.rejected.Add(1)
		g.badInput("connect refused", "addr", addr.String(), "client", m.ClientID, "reason", why)
		g.send(addr, &packet.Connack{ReturnCode: code})
	}
	if m.ProtocolID != packet.ProtocolID {
		refuse(packet.NotSupported, "protocol id is not 1")
		return
	}
	if !validClientID(m.ClientID) {
		refuse(packet.NotSupported, "client id must be 1..64 printable characters")
		return
	}
	if len(bus.ClientNodeIDs(m.ClientID)) == 0 {
		g.refusals[ReasonClientID]++
		refuse(packet.NotSupported, "client id is not a node id (nor mqtt-<node id>)")
		return
	}
	if g.byID[m.ClientID] == nil && !g.allowNewID(addr.Addr(), now) {
		g.refusals[ReasonNewIDs]++
		refuse(packet.Congestion, "too many new client ids from this address")
		return
	}
	if old := g.byAddr[addr]; old != nil && old.id != m.ClientID {
		g.log.Info("client replaced at its address", "old", old.id, "new", m.ClientID, "addr", addr.String())
		g.remove(old)
	}
	c := g.byID[m.ClientID]
	var prev *client
	switch {
	case c != nil && m.Flags.CleanSession():
		g.remove(c)
		prev, c = c, nil
	case c != nil:
		delete(g.byAddr, c.addr)
		c.setAddr(addr)
		c.will, c.pendingWill = nil, nil
		c.restored = false // it connected: it announces itself
		requeueInflight(c)
	case len(g.byID) >= g.cfg.MaxClients && !g.evictIdle(now):
		refuse(packet.Congestion, "too many clients")
		return
	}
	if c == nil {
		c = g.newSession(m.ClientID, addr, now, prev)
		g.byID[c.id] = c
	}
	g.byAddr[addr] = c
	c.clean = m.Flags.CleanSession()
	c.keepAlive = time.Duration(m.Duration) * time.Second
	c.lastSeen = now
	if m.Flags.Will() {
		c.state = stateWillTopic
		g.send(addr, &packet.WillTopicReq{})
		return
	}
	g.accept(c)
}

// accept ends a CONNECT: the client is active and gets what waited for it.
func (g *Gateway) accept(c *client) {
	c.state = stateActive
	c.accepted = true
	g.changed(c)
	g.send(c.addr, &packet.Connack{ReturnCode: packet.Accepted})
	g.log.Debug("client connected", "client", c.id, "addr", c.addr.String(), "keepalive", c.keepAlive, "clean", c.clean)
	g.pump(c)
}

// evictIdle removes the longest-silent client if it has been silent for
// EvictAfter, making room for a new one.
func (g *Gateway) evictIdle(now time.Time) bool {
	var oldest *client
	for _, c := range g.byID {
		if oldest == nil || c.lastSeen.Before(oldest.lastSeen) {
			oldest = c
		}
	}
	if oldest == nil || now.Sub(oldest.lastSeen) < g.cfg.EvictAfter {
		return false
	}
	g.lose(oldest, "evicted to make room for a new client")
	return true
}

func (g *Gateway) willTopic(c *client, p *peer, m *packet.WillTopic) {
	if c.state != stateWillTopic {
		g.badInput("dropped WILLTOPIC outside CONNECT", "client", c.id)
		return
	}
	if m.Topic == "" {
		g.accept(c)
		return
	}
	subject, err := g.literalSubject(m.Topic)
	if err == nil {
		if _, err = publishRight(c.id, subject); err != nil {
			g.refusals[ReasonWill]++
		}
	}
	if err != nil {
		g.stats.rejected.Add(1)
		g.badInput("connect refused: will topic", "client", c.id, "topic", m.Topic, "err", err)
		g.send(c.addr, &packet.Connack{ReturnCode: packet.NotSupported})
		g.remove(c)
		return
	}
	c.pendingWill = &will{subject: subject}
	c.state = stateWillMsg
	g.send(c.addr, &packet.WillMsgReq{})
}

func (g *Gateway) willMsg(c *client, m *packet.WillMsg) {
	if c.state != stateWillMsg || c.pendingWill == nil {
		return
	}
	c.pendingWill.data = append([]byte(nil), m.Message...)
	c.will, c.pendingWill = c.pendingWill, nil
	g.accept(c)
}

func (g *Gateway) willTopicUpd(c *client, p *peer, m *packet.WillTopicUpd) {
	if m.Topic == "" {
		c.will = nil
		g.changed(c)
		g.send(c.addr, &packet.WillTopicResp{ReturnCode: packet.Accepted})
		return
	}
	subject, err := g.literalSubject(m.Topic)
	if err != nil {
		g.stats.rejected.Add(1)
		g.badInput("will topic refused: unsafe as a subject", "client", c.id, "err", err)
		g.send(c.addr, &packet.WillTopicResp{ReturnCode: packet.InvalidTopicID})
		return
	}
	if _, err := publishRight(c.id, subject); err != nil {
		g.stats.rejected.Add(1)
		g.refused(p, ReasonWill, "will topic refused", "client", c.id, "topic", m.Topic, "err", err)
		g.send(c.addr, &packet.WillTopicResp{ReturnCode: packet.NotSupported})
		return
	}
	if c.will == nil {
		c.will = &will{}
	}
	c.will.subject = subject
	g.changed(c)
	g.send(c.addr, &packet.WillTopicResp{ReturnCode: packet.Accepted})
}

// literalSubject maps a topic name (no wildcards) to its subject.
func (g *Gateway) literalSubject(name string) (string, error) {
	if isFilter(name) {
		return "", errWildcard
	}
	return bus.TopicToSubject(name)
}

// register hands back the topic id of a topic name the client may publish
// on (the same id for the same name every time), counting a new resource
// against MaxResources.
func (g *Gateway) register(c *client, p *peer, m *packet.Register) {
	ack := &packet.Regack{MsgID: m.MsgID}
	subject, err := g.literalSubject(m.TopicName)
	if err != nil {
		g.stats.rejected.Add(1)
		g.badInput("register refused: topic unsafe as a subject", "client", c.id, "topic", m.TopicName, "err", err)
		ack.ReturnCode = packet.InvalidTopicID
		g.send(c.addr, ack)
		return
	}
	res, err := publishRight(c.id, subject)
	if err != nil {
		g.stats.rejected.Add(1)
		g.refused(p, ReasonPublish, "register refused", "client", c.id, "subject", subject, "err", err)
		ack.ReturnCode = packet.NotSupported
		g.send(c.addr, ack)
		return
	}
	if id, ok := c.topics[m.TopicName]; ok {
		ack.TopicID = id
		g.send(c.addr, ack)
		return
	}
	switch {
	case len(c.ids) >= g.cfg.MaxTopics:
		ack.ReturnCode = packet.Congestion
		g.badInput("register refused: too many topics", "client", c.id, "max", g.cfg.MaxTopics)
	case res != "" && !g.claimResource(c, res):
		ack.ReturnCode = packet.NotSupported
		g.refused(p, ReasonResources, "register refused", "client", c.id, "resource", res, "max", g.cfg.MaxResources)
	default:
		ack.TopicID = c.newTopicID()
		c.addTopic(ack.TopicID, topic{name: m.TopicName, subject: subject})
		g.changed(c)
	}
	if ack.ReturnCode != packet.Accepted {
		g.stats.rejected.Add(1)
	}
	g.send(c.addr, ack)
}

func (g *Gateway) disconnect(c *client, m *packet.Disconnect, now time.Time) {
	g.send(c.addr, &packet.Disconnect{})
	if !m.HasDuration || m.Duration == 0 {
		g.log.Debug("client disconnected", "client", c.id, "addr", c.addr.String())
		g.remove(c)
		return
	}
	c.state = stateAsleep
	c.sleep = time.Duration(m.Duration) * time.Second
	c.lastSeen = now
	g.changed(c)
	g.log.Debug("client asleep", "client", c.id, "for", c.sleep)
}

// wake handles PINGREQ with a client id: a sleeping client is awake and
// gets its buffered messages, then PINGRESP.
func (g *Gateway) wake(addr netip.AddrPort, id string, now time.Time) {
	c := g.byID[id]
	if c == nil {
		g.send(addr, &packet.Disconnect{})
		return
	}
	if c.addr != addr {
		if other := g.byAddr[addr]; other != nil && other != c {
			g.remove(other)
		}
		delete(g.byAddr, c.addr)
		c.setAddr(addr)
		g.byAddr[addr] = c
		g.changed(c)
	}
	c.lastSeen = now
	if c.restored {
		g.resumed(c, nil)
	}
	if c.state != stateAsleep && c.state != stateAwake {
		g.send(addr, &packet.Pingresp{})
		return
	}
	c.state = stateAwake
	if c.inflight != nil {
		g.resend(c, now)
		return
	}
	g.pump(c)
}

// lose ends a session whose client went away without DISCONNECT, and
// publishes its will.
func (g *Gateway) lose(c *client, why string) {
	g.stats.lost.Add(1)
	g.log.Info("client lost", "client", c.id, "addr", c.addr.String(), "reason", why, "will", c.will != nil)
	if w := c.will; w != nil && w.subject != "" {
		if g.admit(c, g.peers[c.addr], w.subject, w.data) == packet.Accepted {
			_ = g.relay(c, w.subject, w.data)
		} else {
			g.stats.dropped.Add(1)
		}
	}
	g.remove(c)
}

// remove forgets a session and its subscriptions, in NODE_TABLES too.
func (g *Gateway) remove(c *client) {
	g.release(c)
	g.changed(c)
}

// release forgets a session and its subscriptions here (a stopping
// gateway keeps them in NODE_TABLES).
func (g *Gateway) release(c *client) {
	for _, s := range c.subs {
		g.dropSubscription(s)
	}
	if g.byID[c.id] == c {
		delete(g.byID, c.id)
	}
	if g.byAddr[c.addr] == c {
		delete(g.byAddr, c.addr)
	}
	g.byID, g.byAddr = shrink.Map(g.byID, &g.peaks.byID), shrink.Map(g.byAddr, &g.peaks.byAddr)
	c.queue, c.inflight = nil, nil
}

// requeueInflight puts the message in flight back at the head of the queue
// (unless it was already delivered and only PUBCOMP is missing), so that a
// resumed session sends it again.
func requeueInflight(c *client) {
	if f := c.inflight; f != nil && f.kind != awaitPubcomp {
		c.queue = append([]outMsg{f.msg}, c.queue...)
	}
	c.inflight = nil
}
