package mqttsn

import (
	"context"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/gateways/mqttsn/packet"
)

func (g *Gateway) subscribe(c *client, p *peer, m *packet.Subscribe) {
	qos := min(max(m.Flags.QoS(), 0), 2)
	ack := &packet.Suback{Flags: packet.Flags(0).WithQoS(qos), MsgID: m.MsgID}
	refuse := func(code packet.ReturnCode, why string, args ...any) {
		g.stats.rejected.Add(1)
		g.badInput("subscribe refused: "+why, append([]any{"client", c.id}, args...)...)
		ack.ReturnCode = code
		g.send(c.addr, ack)
	}
	s := &subscription{client: c, qos: qos, idType: m.Flags.TopicIDType(), topicID: m.TopicID}
	switch s.idType {
	case packet.TopicNormal:
		s.filter = m.TopicName
	case packet.TopicPredefined:
		name, ok := g.cfg.Predefined[m.TopicID]
		if !ok {
			refuse(packet.InvalidTopicID, "unknown predefined topic id", "topic_id", m.TopicID)
			return
		}
		s.filter, ack.TopicID = name, m.TopicID
	case packet.TopicShort:
		s.filter = packet.ShortTopicName(m.TopicID)
	}
	subject, err := bus.TopicToSubject(s.filter)
	if err != nil {
		refuse(packet.InvalidTopicID, "topic unsafe as a subject", "topic", s.filter, "err", err)
		return
	}
	if err := subscribeRight(c.id, subject); err != nil {
		g.refusals[ReasonSubscribe]++
		refuse(packet.NotSupported, "not the client's own commands", "topic", s.filter, "reason", ReasonSubscribe)
		return
	}
	s.subject = subject
	if old := c.subs[s.filter]; old != nil {
		old.qos = qos
		ack.TopicID = g.subackTopicID(c, old)
		g.changed(c)
		g.send(c.addr, ack)
		return
	}
	if len(c.subs) >= g.cfg.MaxSubscriptions {
		refuse(packet.Congestion, "too many subscriptions", "max", g.cfg.MaxSubscriptions)
		return
	}
	if s.idType == packet.TopicNormal && !isFilter(s.filter) {
		if _, ok := c.topics[s.filter]; !ok && len(c.ids) >= g.cfg.MaxTopics {
			refuse(packet.Congestion, "too many topics", "max", g.cfg.MaxTopics)
			return
		}
	}
	sub, err := g.nc.ChanSubscribe(subject, g.inbox)
	if err != nil {
		refuse(packet.Congestion, "nats subscribe failed", "subject", subject, "err", err)
		return
	}
	// SUBACK promises delivery from now on: make sure the server has the
	// subscription before saying so.
	if err := g.nc.FlushTimeout(time.Second); err != nil {
		g.log.Warn("nats flush after subscribe", "subject", subject, "err", err)
	}
	c.subSeq++
	s.seq, s.sub = c.subSeq, sub
	c.subs[s.filter] = s
	g.subs[sub] = s
	ack.TopicID = g.subackTopicID(c, s)
	g.changed(c)
	g.send(c.addr, ack)
}

// subackTopicID is the topic id SUBACK hands back: the registered id of a
// plain topic name (registered now if new), the predefined id, or 0.
func (g *Gateway) subackTopicID(c *client, s *subscription) uint16 {
	switch {
	case s.idType == packet.TopicPredefined:
		return s.topicID
	case s.idType != packet.TopicNormal || isFilter(s.filter):
		return 0
	}
	if id, ok := c.topics[s.filter]; ok {
		return id
	}
	id := c.newTopicID()
	c.addTopic(id, topic{name: s.filter, subject: s.subject})
	return id
}

func (g *Gateway) unsubscribe(c *client, m *packet.Unsubscribe) {
	var filter string
	switch m.Flags.TopicIDType() {
	case packet.TopicNormal:
		filter = m.TopicName
	case packet.TopicPredefined:
		filter = g.cfg.Predefined[m.TopicID]
	case packet.TopicShort:
		filter = packet.ShortTopicName(m.TopicID)
	}
	if s := c.subs[filter]; s != nil {
		g.dropSubscription(s)
		g.changed(c)
	}
	g.send(c.addr, &packet.MsgIDOnly{Kind: packet.TypeUnsuback, MsgID: m.MsgID})
}

func (g *Gateway) dropSubscription(s *subscription) {
	if err := s.sub.Unsubscribe(); err != nil {
		g.log.Debug("nats unsubscribe", "subject", s.subject, "err", err)
	}
	delete(g.subs, s.sub)
	if s.client.subs[s.filter] == s {
		delete(s.client.subs, s.filter)
	}
}

// maxPublishData is the largest payload a PUBLISH can carry: 65535 bytes
// minus the long header (3-byte length, type), flags, topic id, message id.
const maxPublishData = 0xFFFF - 9

// deliverLoop hands NATS messages to the subscribed clients.
func (g *Gateway) deliverLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-g.inbox:
			g.deliver(m)
		}
	}
}

// deliver queues one NATS message for the client whose subscription got
// it. When several subscriptions of one client match, each of them gets
// the message from NATS, and only the oldest one passes it on, with the
// highest QoS among them: a client never gets a message twice.
func (g *Gateway) deliver(m *nats.Msg) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.subs[m.Sub]
	if s == nil {
		return
	}
	c := s.client
	qos := s.qos
	for _, o := range c.subs {
		if o == s || !server.SubjectMatchesFilter(m.Subject, o.subject) {
			continue
		}
		if o.seq < s.seq {
			return
		}
		qos = max(qos, o.qos)
	}
	if len(m.Data) > maxPublishData {
		g.stats.dropped.Add(1)
		g.log.Warn("dropped message: too big for MQTT-SN", "client", c.id, "subject", m.Subject, "bytes", len(m.Data))
		return
	}
	msg := outMsg{data: m.Data, qos: qos}
	switch s.idType {
	case packet.TopicPredefined, packet.TopicShort:
		msg.topic, msg.idType, msg.topicID = s.filter, s.idType, s.topicID
	default:
		t, err := bus.SubjectToTopic(m.Subject)
		if err != nil {
			g.stats.dropped.Add(1)
			g.log.Warn("dropped message: subject has no MQTT topic", "client", c.id, "subject", m.Subject, "err", err)
			return
		}
		msg.topic = t
	}
	g.enqueue(c, msg)
}

// enqueue adds a message to a client's queue, dropping the oldest when full.
func (g *Gateway) enqueue(c *client, msg outMsg) {
	if len(c.queue) >= g.cfg.MaxQueue {
		g.stats.dropped.Add(1)
		g.log.Warn("client queue full: dropped oldest message", "client", c.id, "topic", c.queue[0].topic, "max", g.cfg.MaxQueue)
		c.queue = c.queue[1:]
	}
	c.queue = append(c.queue, msg)
	g.pump(c)
}

// pump sends queued messages while nothing is in flight. A woken client
// gets PINGRESP once its queue is empty, and sleeps again.
func (g *Gateway) pump(c *client) {
	if !c.connected() {
		return
	}
	for c.inflight == nil && len(c.queue) > 0 {
		msg := c.queue[0]
		c.queue = c.queue[1:]
		if len(c.queue) == 0 {
			c.queue = nil
		}
		g.sendMessage(c, msg)
	}
	if c.inflight == nil && c.state == stateAwake {
		g.send(c.addr, &packet.Pingresp{})
		c.state = stateAsleep
	}
}

// sendMessage sends one message, registering its topic with the client
// first when the client does not know it.
func (g *Gateway) sendMessage(c *client, msg outMsg) {
	if msg.idType == packet.TopicNormal {
		if id, ok := c.topics[msg.topic]; ok {
			msg.topicID = id
		} else if id, ok := g.predefByName[msg.topic]; ok {
			msg.idType, msg.topicID = packet.TopicPredefined, id
		} else if id, ok := packet.ShortTopicID(msg.topic); ok {
			msg.idType, msg.topicID = packet.TopicShort, id
		} else {
			g.registerWithClient(c, msg)
			return
		}
	}
	g.sendPublish(c, msg)
}

func (g *Gateway) registerWithClient(c *client, msg outMsg) {
	if len(c.ids) >= g.cfg.MaxTopics {
		g.stats.dropped.Add(1)
		g.log.Warn("dropped message: client has too many topics", "client", c.id, "topic", msg.topic, "max", g.cfg.MaxTopics)
		return
	}
	msg.topicID = c.newTopicID()
	reg := &packet.Register{TopicID: msg.topicID, MsgID: c.newMsgID(), TopicName: msg.topic}
	c.inflight = &flight{kind: awaitRegack, msgID: reg.MsgID, msg: msg, pkt: reg, sentAt: time.Now()}
	g.send(c.addr, reg)
}

func (g *Gateway) sendPublish(c *client, msg outMsg) {
	pub := &packet.Publish{
		Flags:   packet.Flags(0).WithQoS(msg.qos).WithTopicIDType(msg.idType),
		TopicID: msg.topicID,
		Data:    msg.data,
	}
	if msg.qos > 0 {
		pub.MsgID = c.newMsgID()
		kind := awaitPuback
		if msg.qos == 2 {
			kind = awaitPubrec
		}
		c.inflight = &flight{kind: kind, msgID: pub.MsgID, msg: msg, pkt: pub, sentAt: time.Now()}
	}
	g.stats.delivered.Add(1)
	g.send(c.addr, pub)
}

// regack completes a gateway REGISTER and sends the message that needed it.
func (g *Gateway) regack(c *client, m *packet.Regack) {
	f := c.inflight
	if f == nil || f.kind != awaitRegack || f.msgID != m.MsgID {
		return
	}
	c.inflight = nil
	if m.ReturnCode != packet.Accepted {
		g.stats.dropped.Add(1)
		g.log.Warn("client refused topic registration: message dropped", "client", c.id, "topic", f.msg.topic, "code", m.ReturnCode)
	} else {
		subject, _ := bus.TopicToSubject(f.msg.topic)
		c.addTopic(f.msg.topicID, topic{name: f.msg.topic, subject: subject})
		g.changed(c)
		g.sendPublish(c, f.msg)
	}
	g.pump(c)
}

func (g *Gateway) puback(c *client, m *packet.Puback) {
	f := c.inflight
	if f == nil || f.msgID != m.MsgID || (f.kind != awaitPuback && f.kind != awaitPubrec) {
		return
	}
	c.inflight = nil
	if m.ReturnCode == packet.InvalidTopicID {
		// The client lost the registration: forget it, so the next
		// message registers the topic again.
		if t, ok := c.ids[m.TopicID]; ok && f.msg.idType == packet.TopicNormal {
			delete(c.ids, m.TopicID)
			delete(c.topics, t.name)
			g.changed(c)
		}
	}
	if m.ReturnCode != packet.Accepted {
		g.stats.dropped.Add(1)
		g.log.Warn("client refused message", "client", c.id, "topic", f.msg.topic, "code", m.ReturnCode)
	}
	g.pump(c)
}

// msgIDOnly handles PUBREL (of a client's QoS 2 message), and PUBREC and
// PUBCOMP (of the gateway's).
func (g *Gateway) msgIDOnly(c *client, m *packet.MsgIDOnly, now time.Time) {
	switch m.Kind {
	case packet.TypePubrel:
		delete(c.qos2In, m.MsgID)
		g.send(c.addr, &packet.MsgIDOnly{Kind: packet.TypePubcomp, MsgID: m.MsgID})
	case packet.TypePubrec:
		f := c.inflight
		if f == nil || f.msgID != m.MsgID || (f.kind != awaitPubrec && f.kind != awaitPubcomp) {
			return
		}
		f.kind, f.sentAt, f.tries = awaitPubcomp, now, 0
		f.pkt = &packet.MsgIDOnly{Kind: packet.TypePubrel, MsgID: m.MsgID}
		g.send(c.addr, f.pkt)
	case packet.TypePubcomp:
		if f := c.inflight; f != nil && f.kind == awaitPubcomp && f.msgID == m.MsgID {
			c.inflight = nil
			g.pump(c)
		}
	}
}

// retry sends the message in flight again, or takes the client for lost
// after Retries attempts.
func (g *Gateway) retry(c *client, now time.Time) {
	if c.inflight.tries >= g.cfg.Retries {
		g.lose(c, "no answer to "+c.inflight.pkt.Type().String()+" after retries")
		return
	}
	c.inflight.tries++
	g.resend(c, now)
}

// resend sends the packet in flight again, marked DUP if it is a PUBLISH.
func (g *Gateway) resend(c *client, now time.Time) {
	f := c.inflight
	if pub, ok := f.pkt.(*packet.Publish); ok {
		pub.Flags |= packet.FlagDUP
	}
	f.sentAt = now
	g.send(c.addr, f.pkt)
}
