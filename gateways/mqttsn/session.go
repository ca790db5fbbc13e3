package mqttsn

import (
	"net/netip"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/time/rate"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/gateways/mqttsn/packet"
)

// state is where a client is in MQTT-SN's client state diagram (§6.14).
type state int

const (
	stateWillTopic state = iota // CONNECT with will: waiting for WILLTOPIC
	stateWillMsg                // waiting for WILLMSG
	stateActive
	stateAsleep
	stateAwake // woke with PINGREQ: buffered messages go out, then PINGRESP
)

func (s state) String() string {
	return [...]string{"will-topic", "will-msg", "active", "asleep", "awake"}[s]
}

// topic is one registered topic of a client.
type topic struct {
	name    string // MQTT topic name
	subject string // NATS subject
}

// will is a client's last will, published when the client is lost.
type will struct {
	subject string
	data    []byte
}

// subscription is one topic filter a client subscribed to.
type subscription struct {
	client  *client
	filter  string // MQTT topic filter
	subject string // NATS subject (may hold wildcards)
	qos     int
	seq     uint64 // order of creation: the oldest matching one delivers
	idType  packet.TopicIDType
	topicID uint16 // for predefined and short subscriptions
	sub     *nats.Subscription
}

// outMsg is a message waiting to go to a client.
type outMsg struct {
	topic string
	data  []byte
	qos   int
	// set once the topic id is known
	idType  packet.TopicIDType
	topicID uint16
}

// flightKind is what the gateway waits for from a client.
type flightKind int

const (
	awaitRegack flightKind = iota
	awaitPuback
	awaitPubrec
	awaitPubcomp
)

// flight is the one gateway→client exchange in progress.
type flight struct {
	kind   flightKind
	msgID  uint16
	msg    outMsg
	pkt    packet.Packet // sent again on timeout
	sentAt time.Time
	tries  int
}

// client is one MQTT-SN session.
type client struct {
	id        string
	addr      netip.AddrPort
	header    nats.Header // transport and address of this client, shared by its messages
	state     state
	clean     bool
	keepAlive time.Duration
	sleep     time.Duration // the duration of the last sleep request
	lastSeen  time.Time

	will        *will
	pendingWill *will // during the will exchange of CONNECT

	topics      map[string]uint16 // name → id, registered both ways
	ids         map[uint16]topic  // id → topic
	nextTopicID uint16

	subs   map[string]*subscription // by filter
	subSeq uint64

	qos2In map[uint16]bool // QoS 2 message ids received, waiting for PUBREL

	resources map[string]bool // resources published or registered, against MaxResources
	values    *rate.Limiter   // values per second; nil: unlimited

	accepted bool   // CONNACK accepted the session once: it is kept in NODE_TABLES
	restored bool   // from NODE_TABLES, not heard from since (persist.go)
	check    string // the node id its last node/check announced

	queue     []outMsg
	inflight  *flight
	nextMsgID uint16
}

func newClient(id string, addr netip.AddrPort, now time.Time) *client {
	c := &client{
		id:        id,
		lastSeen:  now,
		nextMsgID: gatewayMsgIDBase,
		topics:    map[string]uint16{},
		ids:       map[uint16]topic{},
		subs:      map[string]*subscription{},
		qos2In:    map[uint16]bool{},
		resources: map[string]bool{},
	}
	c.setAddr(addr)
	return c
}

func (c *client) setAddr(addr netip.AddrPort) {
	c.addr = addr
	c.header = nats.Header{
		bus.HeaderTransport: []string{bus.ProtocolMQTTSN},
		bus.HeaderAddress:   []string{addr.String()},
	}
}

// connected reports whether the client may publish, register and subscribe.
func (c *client) connected() bool { return c.state == stateActive || c.state == stateAwake }

// newTopicID picks an unused topic id (1..65534).
func (c *client) newTopicID() uint16 {
	for {
		c.nextTopicID++
		if c.nextTopicID == 0 || c.nextTopicID == 0xFFFF {
			c.nextTopicID = 1
		}
		if _, used := c.ids[c.nextTopicID]; !used {
			return c.nextTopicID
		}
	}
}

// addTopic registers name under id.
func (c *client) addTopic(id uint16, t topic) {
	c.topics[t.name] = id
	c.ids[id] = t
}

// gatewayMsgIDBase is where the gateway's message ids start. Clients count
// theirs from 1, and some (bisquitt) keep both directions in one table, so
// starting far away avoids clashes.
const gatewayMsgIDBase = 0x8000

// newMsgID is the next message id for a gateway→client exchange (never 0).
func (c *client) newMsgID() uint16 {
	c.nextMsgID++
	if c.nextMsgID == 0 {
		c.nextMsgID = 1
	}
	return c.nextMsgID
}

// expired reports whether the client has been silent for too long.
func (c *client) expired(now time.Time, idle time.Duration) bool {
	silent := now.Sub(c.lastSeen)
	switch c.state {
	case stateAsleep:
		return silent > c.sleep*3/2
	case stateWillTopic, stateWillMsg:
		return silent > time.Minute
	}
	if c.keepAlive == 0 {
		return silent > idle
	}
	return silent > c.keepAlive*3/2
}
