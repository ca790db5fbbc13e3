package snsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/gateways/mqttsn/packet"
)

// Config configures one simulated node. Zero values take the defaults
// given beside each field.
type Config struct {
	// Gateway is the MQTT-SN gateway's UDP address, host:port. Required.
	Gateway string
	// NodeID names the node in its topics (node/<id>/…). Required; it must
	// be a valid node id (bus.ValidateNodeID). It is also the MQTT-SN
	// client id: the gateway lets a client speak only for the node id it
	// connected with.
	NodeID string
	// Local is the UDP address to send from. Default "" (any address, an
	// ephemeral port). RIOT's emcute sends from port 1883.
	Local string
	// Logger receives the node's log lines. Required.
	Logger *slog.Logger

	// SensorInterval is the period of temperature, pressure and humidity.
	// Default 5 s.
	SensorInterval time.Duration
	// CheckInterval is the period of node/check. Default 30 s.
	CheckInterval time.Duration
	// KeepAlive is sent in CONNECT. Default 360 s (RIOT's value).
	KeepAlive time.Duration
	// RetryInterval is how long to wait for an answer before sending
	// again; Retries how often to send again. Defaults 5 s and 3.
	RetryInterval time.Duration
	Retries       int
	// ReconnectDelay is the pause before connecting again. Default 5 s.
	ReconnectDelay time.Duration

	// Commands subscribes to commands, discover and gateway/check, and
	// adds the "led" resource (like Pyaiot's pycom and test nodes).
	Commands bool
	// SayNo makes a bad led command ("5") answered by a publish of the
	// LED's current value, as a node that says no; by default it is
	// ignored.
	SayNo bool

	// Board, MCU, OS and Name are the node's constant values. Defaults
	// "native64", "native", "riot", "Node BME280 MQTT-SN".
	Board, MCU, OS, Name string
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.SensorInterval, 5*time.Second)
	def(&c.CheckInterval, 30*time.Second)
	def(&c.KeepAlive, 360*time.Second)
	def(&c.RetryInterval, 5*time.Second)
	def(&c.ReconnectDelay, 5*time.Second)
	if c.Retries <= 0 {
		c.Retries = 3
	}
	str := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	str(&c.Board, "native64")
	str(&c.MCU, "native")
	str(&c.OS, "riot")
	str(&c.Name, "Node BME280 MQTT-SN")
}

// Node is one simulated MQTT-SN node.
type Node struct {
	cfg Config
	log *slog.Logger
	gw  *net.UDPAddr

	led       atomic.Value // string "0" or "1"
	published atomic.Int64
	connected atomic.Bool

	// owned by Run
	conn     *net.UDPConn
	in       chan packet.Packet
	done     chan struct{} // closed when Run returns
	msgID    uint16
	topics   map[uint16]string // ids the gateway registered or granted
	commands []command
	curve    curve
}

// command is a message the gateway delivered, waiting to be acted on.
type command struct {
	topic string
	data  string
}

// New validates cfg.
func New(cfg Config) (*Node, error) {
	cfg.setDefaults()
	if cfg.Logger == nil {
		return nil, errors.New("snsim: no logger")
	}
	if err := bus.ValidateNodeID(cfg.NodeID); err != nil {
		return nil, fmt.Errorf("snsim: %w", err)
	}
	gw, err := net.ResolveUDPAddr("udp", cfg.Gateway)
	if err != nil {
		return nil, fmt.Errorf("snsim: gateway %q: %w", cfg.Gateway, err)
	}
	if cfg.Local != "" {
		if _, err := net.ResolveUDPAddr("udp", cfg.Local); err != nil {
			return nil, fmt.Errorf("snsim: local %q: %w", cfg.Local, err)
		}
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("node", cfg.NodeID), gw: gw, curve: newCurve(cfg.NodeID)}
	n.led.Store("0")
	return n, nil
}

// LED is the LED state, "0" or "1".
func (n *Node) LED() string { return n.led.Load().(string) }

// Published counts the PUBLISHes the gateway acknowledged.
func (n *Node) Published() int64 { return n.published.Load() }

// Connected reports whether the node has a session with the gateway.
func (n *Node) Connected() bool { return n.connected.Load() }

// errLost means the gateway stopped answering or sent DISCONNECT.
var errLost = errors.New("gateway lost")

// Run runs the node until ctx ends, connecting again whenever the gateway
// is lost.
func (n *Node) Run(ctx context.Context) error {
	var local *net.UDPAddr
	if n.cfg.Local != "" {
		local, _ = net.ResolveUDPAddr("udp", n.cfg.Local)
	}
	conn, err := net.ListenUDP("udp", local)
	if err != nil {
		return fmt.Errorf("snsim %s: %w", n.cfg.NodeID, err)
	}
	n.conn = conn
	n.in = make(chan packet.Packet, 64)
	n.done = make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); n.readLoop() }()
	defer func() { close(n.done); conn.Close(); wg.Wait() }()

	for {
		err := n.session(ctx)
		if ctx.Err() != nil {
			n.bye()
			n.connected.Store(false)
			return nil
		}
		n.connected.Store(false)
		n.log.Warn("simulated node: connecting again", "err", err, "after", n.cfg.ReconnectDelay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(n.cfg.ReconnectDelay):
		}
	}
}

// readLoop decodes datagrams from the gateway into n.in.
func (n *Node) readLoop() {
	defer close(n.in)
	buf := make([]byte, 65536)
	for {
		k, _, err := n.conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p, err := packet.Unmarshal(buf[:k])
		if err != nil {
			n.log.Warn("simulated node: malformed datagram from the gateway", "err", err)
			continue
		}
		if pub, ok := p.(*packet.Publish); ok {
			pub.Data = append([]byte(nil), pub.Data...) // buf is reused
		}
		select {
		case n.in <- p:
		case <-n.done:
			return
		}
	}
}

// session connects, announces the node and runs its timers until the
// gateway is lost or ctx ends.
func (n *Node) session(ctx context.Context) error {
	n.topics = map[uint16]string{}
	n.commands = nil
	if err := n.connect(ctx); err != nil {
		return err
	}
	n.connected.Store(true)
	if n.cfg.Commands {
		if err := n.subscribeAll(ctx); err != nil {
			return err
		}
	}
	if err := n.boot(ctx); err != nil {
		return err
	}
	// Commands that came during the boot's exchanges are carried out now,
	// not at the next sensor tick (an hour away in some tests).
	if err := n.runCommands(ctx); err != nil {
		return err
	}
	sensors := time.NewTicker(n.cfg.SensorInterval)
	defer sensors.Stop()
	check := time.NewTicker(n.cfg.CheckInterval)
	defer check.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sensors.C:
			err = n.publishSensors(ctx)
		case <-check.C:
			err = n.publishCheck(ctx)
		case p, ok := <-n.in:
			if !ok {
				return net.ErrClosed
			}
			err = n.unsolicited(p)
		}
		if err == nil {
			err = n.runCommands(ctx)
		}
		if err != nil {
			return err
		}
	}
}

// bye ends the session politely when the node stops.
func (n *Node) bye() {
	if n.Connected() {
		n.send(&packet.Disconnect{})
	}
}

func (n *Node) send(p packet.Packet) {
	b, err := packet.Marshal(p)
	if err != nil {
		n.log.Error("simulated node: encode", "err", err)
		return
	}
	if _, err := n.conn.WriteToUDP(b, n.gw); err != nil {
		n.log.Debug("simulated node: send", "err", err)
	}
}

func (n *Node) nextMsgID() uint16 {
	n.msgID++
	if n.msgID == 0 {
		n.msgID = 1
	}
	return n.msgID
}

// exchange sends p and waits for the answer that match accepts, sending
// again every RetryInterval. Other messages that arrive meanwhile are
// handled as unsolicited.
func (n *Node) exchange(ctx context.Context, p packet.Packet, match func(packet.Packet) bool) (packet.Packet, error) {
	for try := 0; try <= n.cfg.Retries; try++ {
		if try > 0 {
			if pub, ok := p.(*packet.Publish); ok {
				pub.Flags |= packet.FlagDUP
			}
		}
		n.send(p)
		timeout := time.NewTimer(n.cfg.RetryInterval)
	wait:
		for {
			select {
			case <-ctx.Done():
				timeout.Stop()
				return nil, ctx.Err()
			case <-timeout.C:
				break wait
			case in, ok := <-n.in:
				if !ok {
					timeout.Stop()
					return nil, net.ErrClosed
				}
				if match(in) {
					timeout.Stop()
					return in, nil
				}
				if err := n.unsolicited(in); err != nil {
					timeout.Stop()
					return nil, err
				}
			}
		}
	}
	return nil, fmt.Errorf("%w: no answer to %s", errLost, p.Type())
}

// unsolicited handles what the gateway sends on its own: messages for
// subscriptions, topic registrations, DISCONNECT.
func (n *Node) unsolicited(p packet.Packet) error {
	switch m := p.(type) {
	case *packet.Register:
		n.topics[m.TopicID] = m.TopicName
		n.send(&packet.Regack{TopicID: m.TopicID, MsgID: m.MsgID})
	case *packet.Publish:
		n.delivered(m)
	case *packet.MsgIDOnly:
		if m.Kind == packet.TypePubrel {
			n.send(&packet.MsgIDOnly{Kind: packet.TypePubcomp, MsgID: m.MsgID})
		}
	case *packet.Disconnect:
		return fmt.Errorf("%w: DISCONNECT", errLost)
	}
	return nil
}

// delivered acknowledges a message from the gateway and queues it.
func (n *Node) delivered(m *packet.Publish) {
	var topic string
	switch m.Flags.TopicIDType() {
	case packet.TopicShort:
		topic = packet.ShortTopicName(m.TopicID)
	default:
		topic = n.topics[m.TopicID]
	}
	code := packet.Accepted
	if topic == "" {
		code = packet.InvalidTopicID
	}
	switch m.Flags.QoS() {
	case 1:
		n.send(&packet.Puback{TopicID: m.TopicID, MsgID: m.MsgID, ReturnCode: code})
	case 2:
		n.send(&packet.MsgIDOnly{Kind: packet.TypePubrec, MsgID: m.MsgID})
	}
	if topic != "" && !(m.Flags.DUP() && n.seen(topic, m)) {
		n.commands = append(n.commands, command{topic: topic, data: string(m.Data)})
	}
}

// seen reports whether a re-sent message is already queued.
func (n *Node) seen(topic string, m *packet.Publish) bool {
	for _, c := range n.commands {
		if c.topic == topic && c.data == string(m.Data) {
			return true
		}
	}
	return false
}

func (n *Node) connect(ctx context.Context) error {
	conn := &packet.Connect{
		Flags:      packet.FlagCleanSession,
		ProtocolID: packet.ProtocolID,
		Duration:   uint16(min(n.cfg.KeepAlive/time.Second, 0xFFFF)),
		ClientID:   n.cfg.NodeID,
	}
	ans, err := n.exchange(ctx, conn, func(p packet.Packet) bool { _, ok := p.(*packet.Connack); return ok })
	if err != nil {
		return err
	}
	if code := ans.(*packet.Connack).ReturnCode; code != packet.Accepted {
		return fmt.Errorf("connect: %v", code)
	}
	n.log.Debug("simulated node connected", "gateway", n.cfg.Gateway)
	return nil
}

func (n *Node) subscribeAll(ctx context.Context) error {
	id := n.cfg.NodeID
	for _, filter := range []string{"gateway/" + id + "/+/set", "gateway/" + id + "/discover", "gateway/check"} {
		sub := &packet.Subscribe{Flags: packet.Flags(0).WithQoS(1), MsgID: n.nextMsgID(), TopicName: filter}
		ans, err := n.exchange(ctx, sub, func(p packet.Packet) bool {
			a, ok := p.(*packet.Suback)
			return ok && a.MsgID == sub.MsgID
		})
		if err != nil {
			return err
		}
		ack := ans.(*packet.Suback)
		if ack.ReturnCode != packet.Accepted {
			return fmt.Errorf("subscribe %s: %v", filter, ack.ReturnCode)
		}
		if ack.TopicID != 0 {
			n.topics[ack.TopicID] = filter
		}
	}
	return nil
}

// publish registers topic (as emcute does before every PUBLISH) and
// publishes data at QoS 1.
func (n *Node) publish(ctx context.Context, topic string, data []byte) error {
	reg := &packet.Register{MsgID: n.nextMsgID(), TopicName: topic}
	ans, err := n.exchange(ctx, reg, func(p packet.Packet) bool {
		a, ok := p.(*packet.Regack)
		return ok && a.MsgID == reg.MsgID
	})
	if err != nil {
		return err
	}
	regack := ans.(*packet.Regack)
	if regack.ReturnCode != packet.Accepted {
		return fmt.Errorf("register %s: %v", topic, regack.ReturnCode)
	}
	pub := &packet.Publish{Flags: packet.Flags(0).WithQoS(1), TopicID: regack.TopicID, MsgID: n.nextMsgID(), Data: data}
	ans, err = n.exchange(ctx, pub, func(p packet.Packet) bool {
		a, ok := p.(*packet.Puback)
		return ok && a.MsgID == pub.MsgID
	})
	if err != nil {
		return err
	}
	if code := ans.(*packet.Puback).ReturnCode; code != packet.Accepted {
		return fmt.Errorf("publish %s: %v", topic, code)
	}
	n.published.Add(1)
	return nil
}

func (n *Node) publishValue(ctx context.Context, res, value string) error {
	b, _ := json.Marshal(map[string]string{"value": value}) // cannot fail
	return n.publish(ctx, "node/"+n.cfg.NodeID+"/"+res, b)
}

func (n *Node) publishCheck(ctx context.Context) error {
	b, _ := json.Marshal(bus.Check{ID: n.cfg.NodeID})
	return n.publish(ctx, "node/check", b)
}

func (n *Node) resources() []string {
	r := []string{"board", "mcu", "os", "name", "temperature", "pressure", "humidity"}
	if n.cfg.Commands {
		r = append(r, "led")
	}
	return r
}

func (n *Node) publishResources(ctx context.Context) error {
	b, _ := json.Marshal(n.resources())
	return n.publish(ctx, "node/"+n.cfg.NodeID+"/resources", b)
}

// publishValues publishes every value, constants then sensors.
func (n *Node) publishValues(ctx context.Context) error {
	for _, kv := range [][2]string{{"board", n.cfg.Board}, {"mcu", n.cfg.MCU}, {"os", n.cfg.OS}, {"name", n.cfg.Name}} {
		if err := n.publishValue(ctx, kv[0], kv[1]); err != nil {
			return err
		}
	}
	if n.cfg.Commands {
		if err := n.publishValue(ctx, "led", n.LED()); err != nil {
			return err
		}
	}
	return n.publishSensors(ctx)
}

func (n *Node) publishSensors(ctx context.Context) error {
	t, p, h := n.curve.at(time.Now())
	for _, kv := range [][2]string{
		{"temperature", fmt.Sprintf("%.1f°C", t)},
		{"pressure", fmt.Sprintf("%.2fhPa", p)},
		{"humidity", fmt.Sprintf("%.2f%%", h)},
	} {
		if err := n.publishValue(ctx, kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// boot publishes what the firmware publishes after connecting.
func (n *Node) boot(ctx context.Context) error {
	if err := n.publishCheck(ctx); err != nil {
		return err
	}
	if err := n.publishResources(ctx); err != nil {
		return err
	}
	return n.publishValues(ctx)
}

// runCommands acts on queued messages from the gateway.
func (n *Node) runCommands(ctx context.Context) error {
	for len(n.commands) > 0 {
		c := n.commands[0]
		n.commands = n.commands[1:]
		if err := n.obey(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) obey(ctx context.Context, c command) error {
	prefix := "gateway/" + n.cfg.NodeID + "/"
	switch c.topic {
	case "gateway/check":
		return n.publishCheck(ctx)
	case prefix + "discover":
		switch c.data {
		case bus.DiscoverResources:
			return n.publishResources(ctx)
		case bus.DiscoverValues:
			return n.publishValues(ctx)
		}
	case prefix + "led/set":
		if c.data != "0" && c.data != "1" {
			n.log.Info("simulated node: led value ignored", "value", c.data)
			if n.cfg.SayNo {
				return n.publishValue(ctx, "led", n.LED())
			}
			return nil
		}
		n.led.Store(c.data)
		return n.publishValue(ctx, "led", c.data)
	default:
		n.log.Debug("simulated node: message ignored", "topic", c.topic)
	}
	return nil
}

// curve makes smooth sensor values: slow sines with a node's own phase and
// a little noise.
type curve struct {
	phase float64
	rnd   *rand.Rand
}

func newCurve(id string) curve {
	h := fnv.New64a()
	h.Write([]byte(id))
	seed := h.Sum64()
	return curve{phase: float64(seed%1000) / 1000 * 2 * math.Pi, rnd: rand.New(rand.NewPCG(seed, seed>>1))}
}

// at returns temperature (°C), pressure (hPa) and humidity (%) at t: a
// 10-minute cycle, so a demo shows movement.
func (c curve) at(t time.Time) (temp, press, hum float64) {
	x := 2*math.Pi*float64(t.UnixMilli()%600000)/600000 + c.phase
	noise := func(a float64) float64 { return (c.rnd.Float64()*2 - 1) * a }
	temp = 22 + 3*math.Sin(x) + noise(0.1)
	press = 1010 + 4*math.Sin(x/2+1) + noise(0.05)
	hum = 45 - 8*math.Sin(x) + noise(0.2)
	return temp, press, hum
}
