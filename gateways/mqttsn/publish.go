package mqttsn

import (
	"errors"
	"net/netip"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/gateways/mqttsn/packet"
)

var errWildcard = errors.New("wildcards are not allowed in a topic name")

// maxQoS2Pending caps the QoS 2 messages of one client waiting for PUBREL.
const maxQoS2Pending = 64

// resolve finds the subject a client's PUBLISH goes to.
func (g *Gateway) resolve(c *client, f packet.Flags, id uint16) (string, bool) {
	switch f.TopicIDType() {
	case packet.TopicNormal:
		if c == nil {
			return "", false
		}
		t, ok := c.ids[id]
		return t.subject, ok
	case packet.TopicPredefined:
		name, ok := g.cfg.Predefined[id]
		if !ok || isFilter(name) {
			return "", false
		}
		s, err := bus.TopicToSubject(name)
		return s, err == nil
	case packet.TopicShort:
		s, err := g.literalSubject(packet.ShortTopicName(id))
		return s, err == nil
	}
	return "", false
}

// relay publishes a client's message on NATS with its transport headers.
func (g *Gateway) relay(c *client, subject string, data []byte) error {
	err := g.nc.PublishMsg(&nats.Msg{Subject: subject, Data: data, Header: c.header})
	if err != nil {
		g.log.Warn("relay to nats failed", "client", c.id, "subject", subject, "err", err)
		return err
	}
	g.stats.published.Add(1)
	return nil
}

// publishQoSMinus1 relays a PUBLISH sent without CONNECT (predefined and
// short topic ids only, no answer) when the address has a session: the
// client speaks for the node id it connected with. Without a session there
// is no node id to speak for, and the message is dropped.
func (g *Gateway) publishQoSMinus1(addr netip.AddrPort, p *peer, m *packet.Publish) {
	c := g.byAddr[addr]
	if c == nil {
		g.stats.dropped.Add(1)
		g.refused(p, ReasonAnonymous, "dropped QoS -1 publish: no session, no node id", "addr", addr.String())
		return
	}
	subject, ok := "", false
	if m.Flags.TopicIDType() != packet.TopicNormal {
		subject, ok = g.resolve(c, m.Flags, m.TopicID)
	}
	if !ok {
		g.stats.dropped.Add(1)
		g.badInput("dropped QoS -1 publish: unknown topic id", "addr", addr.String(), "topic_id", m.TopicID, "type", m.Flags.TopicIDType())
		return
	}
	if g.admit(c, p, subject, m.Data) != packet.Accepted {
		g.stats.dropped.Add(1)
		return
	}
	_ = g.relay(c, subject, m.Data)
}

// publish relays a client's PUBLISH QoS 0, 1 or 2 and acknowledges it,
// once admit allowed it (a refused QoS 0 message is dropped).
func (g *Gateway) publish(c *client, p *peer, m *packet.Publish) {
	qos := m.Flags.QoS()
	ack := &packet.Puback{TopicID: m.TopicID, MsgID: m.MsgID}
	if !c.connected() {
		g.badInput("dropped publish of a client that is not active", "client", c.id, "state", c.state)
		g.stats.dropped.Add(1)
		return
	}
	subject, ok := g.resolve(c, m.Flags, m.TopicID)
	if !ok {
		g.stats.rejected.Add(1)
		g.badInput("publish refused: unknown topic id", "client", c.id, "topic_id", m.TopicID, "type", m.Flags.TopicIDType())
		ack.ReturnCode = packet.InvalidTopicID
		g.send(c.addr, ack)
		return
	}
	if qos == 2 && c.qos2In[m.MsgID] { // sent again before PUBREL: relayed already
		g.send(c.addr, &packet.MsgIDOnly{Kind: packet.TypePubrec, MsgID: m.MsgID})
		return
	}
	if code := g.admit(c, p, subject, m.Data); code != packet.Accepted {
		if qos == 0 {
			g.stats.dropped.Add(1)
			return
		}
		g.stats.rejected.Add(1)
		ack.ReturnCode = code
		g.send(c.addr, ack)
		return
	}
	if qos == 2 {
		g.publishQoS2(c, m, subject)
		return
	}
	if err := g.relay(c, subject, m.Data); err != nil && qos == 1 {
		ack.ReturnCode = packet.Congestion
	}
	if qos == 1 {
		g.send(c.addr, ack)
	}
}

// publishQoS2 relays a QoS 2 message once and answers PUBREC (publish
// answers a message sent again before PUBREL).
func (g *Gateway) publishQoS2(c *client, m *packet.Publish, subject string) {
	if len(c.qos2In) >= maxQoS2Pending {
		g.stats.rejected.Add(1)
		g.send(c.addr, &packet.Puback{TopicID: m.TopicID, MsgID: m.MsgID, ReturnCode: packet.Congestion})
		return
	}
	if err := g.relay(c, subject, m.Data); err != nil {
		g.send(c.addr, &packet.Puback{TopicID: m.TopicID, MsgID: m.MsgID, ReturnCode: packet.Congestion})
		return
	}
	c.qos2In[m.MsgID] = true
	g.send(c.addr, &packet.MsgIDOnly{Kind: packet.TypePubrec, MsgID: m.MsgID})
}
