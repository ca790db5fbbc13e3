package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"golang.org/x/sync/errgroup"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/gateways/mqtt/bridge"
	"github.com/goaiot/goaiot/gateways/mqtt/internal/drops"
	"github.com/goaiot/goaiot/gateways/presence"
	"github.com/goaiot/goaiot/internal/config"
	"github.com/goaiot/goaiot/internal/shrink"
)

// Defaults of Config.
const (
	DefaultNodeTimeout    = 120 * time.Second
	DefaultCheckInterval  = 30 * time.Second
	DefaultCommandTimeout = 5 * time.Second
	DefaultRediscover     = 5 * time.Second
)

// Config configures a Gateway.
type Config struct {
	// Conn is the NATS connection. Required.
	Conn *nats.Conn
	// Logger is required.
	Logger *slog.Logger
	// Gateway is this gateway's name in $state and `nats micro ls`. Required.
	Gateway string
	// Site is carried in $state.
	Site string
	// NodeTimeout: a node silent for longer goes offline. Default 120 s.
	NodeTimeout time.Duration
	// CheckInterval is the period of gateway.check. Default 30 s.
	CheckInterval time.Duration
	// CommandTimeout bounds a command: the node must republish the resource
	// within it. Default 5 s.
	CommandTimeout time.Duration
	// RediscoverInterval: a node that has not sent its resource list yet is
	// asked again at its next node.check, at most this often. Default 5 s.
	RediscoverInterval time.Duration
	// Bridge, when set, relays an external MQTT broker; the gateway runs it
	// and owns the nodes it brings (see the bridge package).
	Bridge *bridge.Bridge
	// MaxNodes caps the nodes owned per transport. Default 100 000.
	MaxNodes int
	// Claims is the table of node ownership shared by the trackers of
	// one process (presence.NewClaims); nil: a table of the gateway's own.
	Claims *presence.Claims
}

// Service names the gateway registers (`nats micro ls`).
const (
	ServiceMQTT   = "aiot-mqtt"
	ServiceMQTTSN = "aiot-mqttsn-nodes"
)

// Gateway is the node logic of MQTT and MQTT-SN nodes on the subject tree,
// plus the optional bridge to an external broker.
type Gateway struct {
	cfg   Config
	log   *slog.Logger
	drops *drops.Counter
	mqtt  *presence.Tracker // MQTT nodes: embedded listener and bridge
	sn    *presence.Tracker // MQTT-SN nodes, relayed by the MQTT-SN gateway
	// confirms holds the commands waiting for their node's report.
	confirms *presence.Confirmations

	lanes *lanes // node subscriptions deliver here (lanes.go)

	mu       sync.Mutex
	nodes    map[string]*node
	unproven map[string]*unproven // listener claims awaiting their proof
	// peaks of nodes and unproven, so that they give memory back after id
	// churn (see removeLocked and forgetUnprovenLocked)
	nodesPeak, unprovenPeak shrink.Peak
	// claimOrder lists unproven claims oldest first (ids already proven
	// or dropped are skipped when met).
	claimOrder []string

	ready chan struct{} // closed once Run has subscribed

	ownedElsewhere, checks, values atomic.Int64
}

// setDefaults fills the zero fields (package internal/config: defaults,
// then validate).
func (c *Config) setDefaults() {
	config.Default(&c.NodeTimeout, DefaultNodeTimeout)
	config.Default(&c.CheckInterval, DefaultCheckInterval)
	config.Default(&c.CommandTimeout, DefaultCommandTimeout)
	config.Default(&c.RediscoverInterval, DefaultRediscover)
}

// validate checks the filled config.
func (c *Config) validate() error {
	switch {
	case c.Conn == nil:
		return errors.New("mqtt gateway: no nats connection")
	case c.Logger == nil:
		return errors.New("mqtt gateway: no logger")
	case c.Gateway == "":
		return errors.New("mqtt gateway: no gateway name")
	case c.NodeTimeout < 0 || c.CheckInterval < 0 || c.CommandTimeout < 0 || c.RediscoverInterval < 0:
		return errors.New("mqtt gateway: negative duration")
	}
	return nil
}

// New fills and validates cfg.
func New(cfg Config) (*Gateway, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	g := &Gateway{
		cfg:   cfg,
		log:   cfg.Logger,
		drops: drops.New(cfg.Logger.With("component", "mqtt-nodes"), time.Second),
		nodes: make(map[string]*node),
		lanes: newLanes(),

		confirms: presence.NewConfirmations(0),
		unproven: make(map[string]*unproven),
		ready:    make(chan struct{}),
	}
	var err error
	if g.mqtt, err = g.tracker(bus.ProtocolMQTT); err != nil {
		return nil, err
	}
	if g.sn, err = g.tracker(bus.ProtocolMQTTSN); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *Gateway) tracker(protocol string) (*presence.Tracker, error) {
	var t *presence.Tracker
	t, err := presence.New(presence.Config{
		Conn: g.cfg.Conn, Logger: g.log.With("protocol", protocol), Protocol: protocol,
		Gateway: g.cfg.Gateway, Site: g.cfg.Site, Timeout: g.cfg.NodeTimeout,
		Commands: g.command, CommandTimeout: g.cfg.CommandTimeout,
		OnExpire: func(id string) { g.expired(t, id) }, MaxNodes: g.cfg.MaxNodes, Claims: g.cfg.Claims,
		SharedChecks: true, // handleCheck hands them node.check
	})
	if err != nil {
		return nil, fmt.Errorf("mqtt gateway: %w", err)
	}
	return t, nil
}

// Ready is closed once Run has subscribed to node.check and registered its
// services: a node announcing itself from then on is seen.
func (g *Gateway) Ready() <-chan struct{} { return g.ready }

// Run serves the nodes until ctx ends; then every owned node goes offline.
func (g *Gateway) Run(ctx context.Context) error {
	lctx, stopLanes := context.WithCancel(context.Background())
	lanesDone := make(chan error, 1)
	go func() { lanesDone <- g.runLanes(lctx) }()
	defer func() { stopLanes(); <-lanesDone }()
	sub, err := g.cfg.Conn.Subscribe(bus.SubjectNodeCheck, g.handleCheck)
	if err != nil {
		return fmt.Errorf("mqtt gateway: subscribe %s: %w", bus.SubjectNodeCheck, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	var services []micro.Service
	for name, t := range map[string]*presence.Tracker{ServiceMQTT: g.mqtt, ServiceMQTTSN: g.sn} {
		svc, err := t.AddService(name)
		if err != nil {
			return err
		}
		services = append(services, svc)
	}
	defer func() {
		for _, s := range services {
			_ = s.Stop()
		}
	}()
	close(g.ready)
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return g.mqtt.Run(ctx) })
	eg.Go(func() error { return g.sn.Run(ctx) })
	eg.Go(func() error { return g.checkLoop(ctx) })
	if g.cfg.Bridge != nil {
		eg.Go(func() error { return g.cfg.Bridge.Run(ctx) })
	}
	err = eg.Wait()
	g.unsubscribeAll()
	return err
}

// checkLoop publishes gateway.check at start, so that nodes re-announce
// themselves to a restarted gateway, then every CheckInterval.
func (g *Gateway) checkLoop(ctx context.Context) error {
	tick := time.NewTicker(g.cfg.CheckInterval)
	defer tick.Stop()
	for {
		if err := g.cfg.Conn.Publish(bus.SubjectGatewayCheck, nil); err != nil {
			g.log.Error("publish gateway.check", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Stats counts what the gateway did.
type Stats struct {
	MQTT           presence.Stats   `json:"mqtt"`
	MQTTSN         presence.Stats   `json:"mqtt_sn"`
	Checks         int64            `json:"checks"`
	Values         int64            `json:"values"`
	OwnedElsewhere int64            `json:"owned_elsewhere"`
	Dropped        map[string]int64 `json:"dropped"`
	// Tracked and Claims are the entries of the gateway's own tables: nodes
	// it owns (subscribed), and listener claims awaiting their proof.
	Tracked int           `json:"tracked"`
	Claims  int           `json:"claims"`
	Bridge  *bridge.Stats `json:"bridge,omitempty"`
}

// Stats returns the gateway's counters.
func (g *Gateway) Stats() Stats {
	s := Stats{MQTT: g.mqtt.Stats(), MQTTSN: g.sn.Stats(), Checks: g.checks.Load(), Values: g.values.Load(),
		OwnedElsewhere: g.ownedElsewhere.Load(), Dropped: g.drops.Snapshot()}
	g.mu.Lock()
	s.Tracked, s.Claims = len(g.nodes), len(g.unproven)
	g.mu.Unlock()
	if g.cfg.Bridge != nil {
		bs := g.cfg.Bridge.Stats()
		s.Bridge = &bs
	}
	return s
}

// Nodes lists the MQTT and MQTT-SN nodes the gateway owns.
func (g *Gateway) Nodes() []presence.Node {
	return append(g.mqtt.Nodes(), g.sn.Nodes()...)
}
