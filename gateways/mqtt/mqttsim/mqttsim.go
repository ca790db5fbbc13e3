// Package mqttsim is a simulated MQTT node that behaves like Pyaiot's MQTT
// firmwares (pyaiot/riot-firmwares node_mqtt and the pycom/test nodes): it
// connects to an MQTT broker with paho — by default the embedded NATS MQTT
// listener of `aiot run` — and speaks the topic tree of Pyaiot at QoS 1.
//
//	at connect          node/check {"id":ID}, node/ID/resources, every node/ID/<res>
//	every CheckInterval node/check {"id":ID}
//	every SensorInterval node/ID/temperature, pressure, humidity  {"value":"21.5°C"}
//	gateway/check       → node/check
//	gateway/ID/discover → "resources": node/ID/resources; "values": every value
//	gateway/ID/led/set  → "0" or "1": the LED is set and node/ID/led republished;
//	                      anything else is ignored, like the firmware does
//
// Many nodes can run in one process: each is one MQTT connection.
//
//	n, err := mqttsim.New(mqttsim.Config{Broker: "tcp://127.0.0.1:1883", ID: "sim-1", Logger: log})
//	go n.Run(ctx)
//	n.LED() // "0" or "1"
package mqttsim

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/goaiot/goaiot/bus"
)

// Defaults of Config.
const (
	DefaultBroker         = "tcp://127.0.0.1:1883"
	DefaultCheckInterval  = 30 * time.Second
	DefaultSensorInterval = 5 * time.Second
)

// Config configures one simulated node. Only ID and Logger are required.
type Config struct {
	// Broker is the MQTT broker URL; default DefaultBroker, the embedded
	// NATS MQTT listener of `aiot run` (--mqtt-listen :1883).
	Broker string
	// ID is the node id: a single subject token (see bus.ValidateNodeID).
	ID string
	// ClientID is the MQTT client id; default "mqtt-<ID>" like the firmware.
	ClientID string
	// Username and Password log in to the broker, if set.
	Username, Password string
	// TLS for ssl:// and wss:// brokers.
	TLS *tls.Config
	// CheckInterval is the node/check beacon period; default 30 s.
	CheckInterval time.Duration
	// SensorInterval is the sensor publication period; default 5 s.
	SensorInterval time.Duration
	// QoS of subscriptions and publications; default 1, as in Pyaiot. Set
	// QoSZero to use QoS 0 instead.
	QoSZero bool
	// SayNo makes a bad led command ("5") answered by a republish of the
	// LED's current value, as a node that says no; by default it is
	// ignored, as by RIOT's firmware.
	SayNo bool
	// Logger is required.
	Logger *slog.Logger
}

// Resources lists the node's resources, in the order it publishes them.
func Resources() []string {
	return []string{"board", "mcu", "name", "os", "led", "temperature", "pressure", "humidity"}
}

// Stats counts what a node did.
type Stats struct {
	Published int64 // messages published
	Commands  int64 // led/set commands received (accepted or not)
	Connects  int64 // successful connections to the broker
}

// Node is one simulated MQTT node.
type Node struct {
	cfg    Config
	qos    byte
	log    *slog.Logger
	client paho.Client

	mu   sync.Mutex
	led  string
	temp float64
	rng  *rand.Rand

	published, commands, connects atomic.Int64
}

// New validates cfg; Run connects.
func New(cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		return nil, errors.New("mqttsim: no logger")
	}
	if err := bus.ValidateNodeID(cfg.ID); err != nil {
		return nil, fmt.Errorf("mqttsim: %w", err)
	}
	if cfg.CheckInterval < 0 || cfg.SensorInterval < 0 {
		return nil, errors.New("mqttsim: negative interval")
	}
	if cfg.Broker == "" {
		cfg.Broker = DefaultBroker
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "mqtt-" + cfg.ID
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	if cfg.SensorInterval == 0 {
		cfg.SensorInterval = DefaultSensorInterval
	}
	h := fnv.New64a()
	h.Write([]byte(cfg.ID))
	n := &Node{cfg: cfg, qos: 1, log: cfg.Logger.With("sim", cfg.ID), led: "0", temp: 21.5,
		rng: rand.New(rand.NewPCG(h.Sum64(), 42))}
	if cfg.QoSZero {
		n.qos = 0
	}
	n.client = paho.NewClient(n.options())
	return n, nil
}

func (n *Node) options() *paho.ClientOptions {
	o := paho.NewClientOptions().
		AddBroker(n.cfg.Broker).
		SetClientID(n.cfg.ClientID).
		SetUsername(n.cfg.Username).
		SetPassword(n.cfg.Password).
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(5 * time.Second).
		SetKeepAlive(60 * time.Second).
		SetOnConnectHandler(n.onConnect)
	if n.cfg.TLS != nil {
		o.SetTLSConfig(n.cfg.TLS)
	}
	return o
}

// ID is the node's id.
func (n *Node) ID() string { return n.cfg.ID }

// LED is the LED's state, "0" or "1".
func (n *Node) LED() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.led
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	return Stats{Published: n.published.Load(), Commands: n.commands.Load(), Connects: n.connects.Load()}
}

// Run connects (retrying until the broker answers), announces the node and
// publishes its beacons and sensors until ctx ends.
func (n *Node) Run(ctx context.Context) error {
	n.client.Connect()
	defer n.client.Disconnect(100)
	check := time.NewTicker(n.cfg.CheckInterval)
	defer check.Stop()
	sensors := time.NewTicker(n.cfg.SensorInterval)
	defer sensors.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-check.C:
			n.publishCheck()
		case <-sensors.C:
			n.publishSensors()
		}
	}
}

// onConnect subscribes and announces the node, like the firmware at boot.
func (n *Node) onConnect(c paho.Client) {
	n.connects.Add(1)
	prefix := "gateway/" + n.cfg.ID + "/"
	filters := map[string]byte{"gateway/check": n.qos, prefix + "discover": n.qos, prefix + "+/set": n.qos}
	if t := c.SubscribeMultiple(filters, n.onMessage); t.WaitTimeout(10*time.Second) && t.Error() != nil {
		n.log.Error("subscribe", "err", t.Error())
	}
	n.publishCheck()
	n.publishResources()
	n.publishValues()
}

func (n *Node) onMessage(_ paho.Client, m paho.Message) {
	topic, payload := m.Topic(), string(m.Payload())
	switch {
	case topic == "gateway/check":
		n.publishCheck()
	case topic == "gateway/"+n.cfg.ID+"/discover":
		switch payload {
		case bus.DiscoverResources:
			n.publishResources()
		case bus.DiscoverValues:
			n.publishValues()
		}
	case strings.HasSuffix(topic, "/set"):
		n.onSet(strings.TrimSuffix(strings.TrimPrefix(topic, "gateway/"+n.cfg.ID+"/"), "/set"), payload)
	}
}

func (n *Node) onSet(res, payload string) {
	if res != "led" {
		n.log.Debug("command for an unknown resource ignored", "resource", res)
		return
	}
	n.commands.Add(1)
	if payload != "0" && payload != "1" {
		n.log.Debug("led command ignored", "payload", payload)
		if n.cfg.SayNo {
			n.publishValue("led", n.LED())
		}
		return
	}
	n.mu.Lock()
	n.led = payload
	n.mu.Unlock()
	n.publishValue("led", payload)
}

func (n *Node) publish(topic string, payload []byte) {
	n.client.Publish(topic, n.qos, false, payload)
	n.published.Add(1)
}

func (n *Node) publishCheck() {
	b, _ := json.Marshal(bus.Check{ID: n.cfg.ID}) // always marshals
	n.publish("node/check", b)
}

func (n *Node) publishResources() {
	b, _ := json.Marshal(Resources()) // always marshals
	n.publish("node/"+n.cfg.ID+"/resources", b)
}

func (n *Node) publishValue(res, value string) {
	b, _ := json.Marshal(map[string]string{"value": value}) // always marshals
	n.publish("node/"+n.cfg.ID+"/"+res, b)
}

func (n *Node) publishValues() {
	n.publishValue("board", "native64")
	n.publishValue("mcu", "native")
	n.publishValue("name", "MQTT node "+n.cfg.ID)
	n.publishValue("os", "riot")
	n.publishValue("led", n.LED())
	n.publishSensors()
}

// publishSensors publishes the three sensors, drifting a little each time.
func (n *Node) publishSensors() {
	n.mu.Lock()
	n.temp = min(max(n.temp+(n.rng.Float64()-0.5)*0.4, 15), 30)
	temp := n.temp
	pressure := 1013.25 + (n.rng.Float64()-0.5)*4
	humidity := 45 + (n.rng.Float64()-0.5)*6
	n.mu.Unlock()
	n.publishValue("temperature", fmt.Sprintf("%.1f°C", temp))
	n.publishValue("pressure", fmt.Sprintf("%.2fhPa", pressure))
	n.publishValue("humidity", fmt.Sprintf("%.2f%%", humidity))
}
