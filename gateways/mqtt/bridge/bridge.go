// Package bridge relays an existing MQTT broker (mosquitto, RSMB, EMQX…) and
// the NATS bus, for sites that keep their broker: node topics published on
// the broker come onto the bus as subjects, and gateway.check and
// gateway.<id>.discover go back to the broker. Commands are not relayed from
// the bus; the gateway's node logic sends them with [Bridge.Command], once.
//
// Every message from the broker is checked before it reaches the bus: the
// topic must map onto a node subject of the tree (node/check,
// node/<id>/resources, node/<id>/<res>), its payload must be the JSON the
// tree expects, and each node is held to a message rate. Anything else is
// dropped with a log line and a counter. See the mqtt package's doc.go for
// the delivery guarantees.
package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"golang.org/x/time/rate"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/gateways/mqtt/internal/drops"
)

// HeaderBridge marks a message the bridge relayed from the broker onto the
// bus; its value is the bridge's [Config.Name]. The node logic that runs
// beside the bridge owns these nodes and sends their commands through it.
const HeaderBridge = "Aiot-Bridge"

// Topics the bridge exchanges with the broker.
const (
	// TopicNodes is what the bridge subscribes to on the broker.
	TopicNodes = "node/#"
	// QoS of every message the bridge exchanges with the broker.
	QoS = 1
)

// Config configures a Bridge.
type Config struct {
	// Conn is the NATS connection. Required.
	Conn *nats.Conn
	// Logger is required.
	Logger *slog.Logger
	// Broker is the broker's URL: tcp://host:1883, ssl:// (or tls://,
	// mqtts://) for TLS, ws:// or wss://. Required.
	Broker string
	// Username and Password log in to the broker, if set.
	Username, Password string
	// TLS configures ssl:// and wss:// connections (CA, client certificate).
	TLS *tls.Config
	// Name identifies this bridge in HeaderBridge, e.g. the gateway name.
	// Required.
	Name string
	// ClientID is the MQTT client id; default "aiot-bridge-<Name>". The
	// session is persistent (clean session off), so the broker keeps node
	// messages for the bridge while it reconnects: keep the id stable.
	ClientID string
	// NodeRate is how many messages per second one node may send through
	// the bridge, NodeBurst how many at once; beyond that they are dropped.
	// Defaults 50/s and 100.
	NodeRate  float64
	NodeBurst int
	// MaxPayload drops larger messages; default 64 KiB.
	MaxPayload int
	// MaxNodes bounds the node ids the bridge keeps a rate limit for: idle
	// ones make room for new ones; while all are busy, messages of further
	// nodes are dropped. Default 100 000.
	MaxNodes int
	// ConnectTimeout bounds one connection attempt; default 10 s.
	ConnectTimeout time.Duration
}

// Stats counts what a bridge relayed and dropped.
type Stats struct {
	ToBus    int64            `json:"to_bus"`
	ToBroker int64            `json:"to_broker"`
	Commands int64            `json:"commands"`
	Dropped  map[string]int64 `json:"dropped"`
}

// Bridge relays one MQTT broker and the bus.
type Bridge struct {
	cfg     Config
	log     *slog.Logger
	address string // the broker URL without credentials
	client  paho.Client
	store   *resumeStore
	drops   *drops.Counter
	dedup   dedup

	mu       sync.Mutex
	limiters map[string]*rate.Limiter

	toBus, toBroker, commands atomic.Int64
}

// New validates cfg and prepares the MQTT client; Run connects.
func New(cfg Config) (*Bridge, error) {
	switch {
	case cfg.Conn == nil:
		return nil, errors.New("mqtt bridge: no nats connection")
	case cfg.Logger == nil:
		return nil, errors.New("mqtt bridge: no logger")
	case cfg.Name == "":
		return nil, errors.New("mqtt bridge: no name")
	case cfg.NodeRate < 0 || cfg.NodeBurst < 0 || cfg.MaxPayload < 0 || cfg.MaxNodes < 0:
		return nil, errors.New("mqtt bridge: negative limit")
	}
	address, err := checkBroker(cfg.Broker)
	if err != nil {
		return nil, err
	}
	setDefaults(&cfg)
	b := &Bridge{
		cfg:      cfg,
		log:      cfg.Logger.With("broker", address),
		address:  address,
		drops:    drops.New(cfg.Logger.With("component", "mqtt-bridge", "broker", address), time.Second),
		dedup:    dedup{last: make(map[uint16]uint64)},
		limiters: make(map[string]*rate.Limiter),
	}
	b.store = &resumeStore{MemoryStore: paho.NewMemoryStore()}
	b.client = paho.NewClient(b.clientOptions())
	return b, nil
}

// resumeStore is paho's memory store, telling when the connection's resume
// has listed it. Once connected with a persistent session, paho resends the
// QoS 1 packets of its store (resume) and marks them as duplicates; a
// packet published meanwhile was in that list and on the wire at once: a
// data race on the packet, and the packet sent twice (paho.mqtt.golang
// issue 703, open in v1.5.1). The bridge publishes only once the list is
// taken: listed is cleared at every connection attempt and set by All,
// which paho calls only before connecting (reserving stored ids) and in
// resume.
type resumeStore struct {
	*paho.MemoryStore
	listed atomic.Bool
}

// All lists the stored keys, as MemoryStore's, and records that it did.
func (s *resumeStore) All() []string {
	keys := s.MemoryStore.All()
	s.listed.Store(true)
	return keys
}

// connected reports whether the bridge may publish to the broker: the
// connection is up and paho's resume has taken its list of the store.
func (b *Bridge) connected() bool {
	return b.client.IsConnectionOpen() && b.store.listed.Load()
}

func setDefaults(cfg *Config) {
	if cfg.ClientID == "" {
		cfg.ClientID = "aiot-bridge-" + cfg.Name
	}
	if cfg.NodeRate == 0 {
		cfg.NodeRate = 50
	}
	if cfg.NodeBurst == 0 {
		cfg.NodeBurst = 100
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = 64 << 10
	}
	if cfg.MaxNodes == 0 {
		cfg.MaxNodes = 100_000
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
}

// checkBroker validates a broker URL and returns it without credentials.
func checkBroker(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("mqtt bridge: no broker url")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("mqtt broker url: %w", err)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
	default:
		return "", fmt.Errorf("mqtt broker url %q: scheme must be tcp, mqtt, ssl, tls, mqtts, ws or wss", u.Redacted())
	}
	if u.Hostname() == "" || u.Port() == "" {
		return "", fmt.Errorf("mqtt broker url %q: want scheme://host:port", u.Redacted())
	}
	u.User = nil
	return u.String(), nil
}

func (b *Bridge) clientOptions() *paho.ClientOptions {
	o := paho.NewClientOptions().
		AddBroker(b.cfg.Broker).
		SetClientID(b.cfg.ClientID).
		SetUsername(b.cfg.Username).
		SetPassword(b.cfg.Password).
		SetCleanSession(false).
		SetOrderMatters(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10 * time.Second).
		SetConnectTimeout(b.cfg.ConnectTimeout).
		SetKeepAlive(30 * time.Second).
		SetStore(b.store).
		SetConnectionAttemptHandler(func(_ *url.URL, c *tls.Config) *tls.Config {
			b.store.listed.Store(false) // until this connection's resume lists the store
			return c
		}).
		SetOnConnectHandler(b.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			b.log.Warn("mqtt broker connection lost", "err", err)
		})
	if b.cfg.TLS != nil {
		o.SetTLSConfig(b.cfg.TLS)
	}
	return o
}

// Address is the broker URL without credentials; the bridge sets it as
// bus.HeaderAddress of the messages it relays.
func (b *Bridge) Address() string { return b.address }

// Name is the bridge's name, the value of HeaderBridge.
func (b *Bridge) Name() string { return b.cfg.Name }

// Run connects to the broker (retrying until it answers) and relays until
// ctx ends.
func (b *Bridge) Run(ctx context.Context) error {
	var subs []*nats.Subscription
	for _, subject := range []string{bus.SubjectGatewayCheck, bus.GatewayDiscover("*")} {
		sub, err := b.cfg.Conn.Subscribe(subject, b.toBrokerMsg)
		if err != nil {
			unsubscribeAll(subs)
			return fmt.Errorf("mqtt bridge: subscribe %s: %w", subject, err)
		}
		subs = append(subs, sub)
	}
	defer unsubscribeAll(subs)
	b.log.Info("mqtt bridge connecting", "client_id", b.cfg.ClientID)
	b.client.Connect() // retries in the background (ConnectRetry)
	<-ctx.Done()
	b.client.Disconnect(250)
	return nil
}

func unsubscribeAll(subs []*nats.Subscription) {
	for _, s := range subs {
		_ = s.Unsubscribe()
	}
}

func (b *Bridge) onConnect(c paho.Client) {
	b.log.Info("mqtt broker connected")
	t := c.Subscribe(TopicNodes, QoS, b.onMessage)
	go func() {
		<-t.Done()
		if err := t.Error(); err != nil {
			b.log.Error("mqtt bridge: subscribe "+TopicNodes, "err", err)
		}
	}()
}

// Command publishes a command to node on the broker at QoS 1 and returns
// once the broker acknowledged it (PUBACK). It fails at once when the broker
// is not connected, rather than queueing a command that would arrive after
// its sender gave up.
func (b *Bridge) Command(ctx context.Context, node, resource string, payload []byte) error {
	if !b.connected() {
		return fmt.Errorf("mqtt broker %s: not connected", b.address)
	}
	topic, err := bus.SubjectToTopic(bus.GatewaySet(node, resource))
	if err != nil {
		return err
	}
	b.commands.Add(1)
	t := b.client.Publish(topic, QoS, false, payload)
	select {
	case <-t.Done():
		if err := t.Error(); err != nil {
			return fmt.Errorf("mqtt broker %s: publish %s: %w", b.address, topic, err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// toBrokerMsg forwards gateway.check and gateway.<id>.discover to the broker.
func (b *Bridge) toBrokerMsg(m *nats.Msg) {
	topic, err := bus.SubjectToTopic(m.Subject)
	if err != nil {
		b.drops.Drop("unmappable subject", "subject", m.Subject, "err", err)
		return
	}
	if !b.connected() {
		b.drops.Drop("broker not connected", "topic", topic)
		return
	}
	b.toBroker.Add(1)
	t := b.client.Publish(topic, QoS, false, append([]byte(nil), m.Data...))
	go func() {
		<-t.Done()
		if err := t.Error(); err != nil {
			b.drops.Drop("broker publish failed", "topic", topic, "err", err)
		}
	}()
}

// onMessage relays one message from the broker onto the bus, if it is a
// well-formed node message within its node's rate.
func (b *Bridge) onMessage(_ paho.Client, m paho.Message) {
	topic, payload := m.Topic(), m.Payload()
	if m.Qos() > 0 && b.dedup.duplicate(m.MessageID(), m.Duplicate(), topic, payload) {
		b.drops.Drop("duplicate", "topic", topic, "packet_id", m.MessageID())
		return
	}
	subject, node, err := b.check(topic, payload)
	if err != nil {
		b.drops.Drop(err.reason, "topic", topic, "err", err.err)
		return
	}
	if !b.allow(node) {
		b.drops.Drop("flood", "node", node, "limit_per_s", b.cfg.NodeRate)
		return
	}
	msg := &nats.Msg{Subject: subject, Data: payload, Header: nats.Header{
		HeaderBridge:      []string{b.cfg.Name},
		bus.HeaderAddress: []string{b.address},
	}}
	if err := b.cfg.Conn.PublishMsg(msg); err != nil {
		b.drops.Drop("nats publish failed", "subject", subject, "err", err)
		return
	}
	b.toBus.Add(1)
}

// rejection is why a message from the broker is dropped.
type rejection struct {
	reason string
	err    error
}

// check validates a broker message and returns its subject and node id.
func (b *Bridge) check(topic string, payload []byte) (string, string, *rejection) {
	if len(payload) > b.cfg.MaxPayload {
		return "", "", &rejection{"too large", fmt.Errorf("%d bytes, max %d", len(payload), b.cfg.MaxPayload)}
	}
	subject, err := bus.TopicToSubject(topic)
	if err != nil {
		return "", "", &rejection{"unsafe topic", err}
	}
	s, err := bus.ParseSubject(subject)
	if err != nil {
		return "", "", &rejection{"not a node topic", err}
	}
	switch s.Kind {
	case bus.KindNodeCheck:
		c, err := bus.ParseCheck(payload)
		if err != nil {
			return "", "", &rejection{"bad check", err}
		}
		return subject, c.ID, nil
	case bus.KindNodeResources:
		if _, err := bus.ParseResources(payload); err != nil {
			return "", "", &rejection{"bad resources", err}
		}
	case bus.KindNodeValue:
		if _, err := bus.ParseValue(payload); err != nil {
			return "", "", &rejection{"bad value", err}
		}
	default:
		return "", "", &rejection{"not a node topic", fmt.Errorf("%s is published by gateways only", s.Kind)}
	}
	return subject, s.Node, nil
}

// allow applies node's rate limit.
func (b *Bridge) allow(node string) bool { return b.allowAt(node, time.Now()) }

// allowAt is allow at time now. At MaxNodes, the limiters of idle nodes
// (bucket full again, the same as a fresh one) are dropped first; only
// when every tracked node is busy is a new node refused.
func (b *Bridge) allowAt(node string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	l, ok := b.limiters[node]
	if !ok {
		if len(b.limiters) >= b.cfg.MaxNodes {
			for id, idle := range b.limiters {
				if idle.TokensAt(now) >= float64(b.cfg.NodeBurst) {
					delete(b.limiters, id)
				}
			}
		}
		if len(b.limiters) >= b.cfg.MaxNodes {
			return false
		}
		l = rate.NewLimiter(rate.Limit(b.cfg.NodeRate), b.cfg.NodeBurst)
		b.limiters[node] = l
	}
	return l.AllowN(now, 1)
}

// Stats returns the bridge's counters.
func (b *Bridge) Stats() Stats {
	return Stats{ToBus: b.toBus.Load(), ToBroker: b.toBroker.Load(), Commands: b.commands.Load(),
		Dropped: b.drops.Snapshot()}
}

// dedup recognises a QoS 1 message the broker sends again (DUP flag, same
// packet id) after the bridge had already relayed it but its PUBACK was
// lost with the connection.
type dedup struct {
	mu   sync.Mutex
	last map[uint16]uint64 // packet id → hash of the last message relayed with it
}

// duplicate reports whether this message was already relayed, and
// remembers it otherwise.
func (d *dedup) duplicate(id uint16, dup bool, topic string, payload []byte) bool {
	h := fnv.New64a()
	h.Write([]byte(topic))
	h.Write([]byte{0})
	h.Write(payload)
	sum := h.Sum64()
	d.mu.Lock()
	defer d.mu.Unlock()
	if dup && d.last[id] == sum {
		return true
	}
	d.last[id] = sum
	return false
}
