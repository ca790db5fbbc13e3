package mqttsn

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/internal/config"
)

// Config configures a Gateway. Zero durations and limits take the defaults
// given beside each field.
type Config struct {
	// Conn is the bus connection. Required.
	Conn *nats.Conn
	// Logger receives the gateway's log lines. Required.
	Logger *slog.Logger
	// Listen is the UDP address to listen on, e.g. ":1885". Required unless
	// PacketConn is set.
	Listen string
	// PacketConn, when set, is used instead of listening on Listen (tests
	// bind their own loopback socket). Run closes it when it returns.
	PacketConn *net.UDPConn
	// Name is this gateway instance's name (e.g. "mqttsn@host") and Site
	// its site, shown by `nats micro ls`. Default "mqttsn".
	Name, Site string
	// GatewayID is sent in GWINFO and ADVERTISE. Default 1.
	GatewayID uint8
	// Predefined maps predefined topic ids to topic names, the same for
	// every client (see ParseTopics).
	Predefined map[uint16]string

	// MaxClients caps the sessions held. At the cap, a CONNECT evicts the
	// longest-silent client if it has been silent for EvictAfter, and is
	// refused with "rejected: congestion" otherwise. Default 10 000.
	MaxClients int
	// EvictAfter: see MaxClients. Default 1 min.
	EvictAfter time.Duration
	// MaxTopics caps the topic ids registered per client (by the client and
	// by the gateway). Default 256.
	MaxTopics int
	// MaxSubscriptions caps the subscriptions per client. Default 32.
	MaxSubscriptions int
	// MaxQueue caps the messages waiting for one client (asleep, or behind
	// a QoS 1/2 message in flight); the oldest is dropped first. Default 100.
	MaxQueue int
	// IdleTimeout evicts a client that asked for no keep-alive (duration 0)
	// after this much silence. Default 1 h.
	IdleTimeout time.Duration

	// RetryInterval (T_retry) is how long the gateway waits for REGACK,
	// PUBACK, PUBREC or PUBCOMP before sending again. Default 10 s.
	RetryInterval time.Duration
	// Retries (N_retry) is how often it sends again before it takes the
	// client for lost. Default 3.
	Retries int

	// Rate is the datagrams per second accepted from one address; more
	// are dropped (with a log line). Default 100; -1: unlimited.
	Rate float64
	// Burst is how many datagrams above Rate one address may send at once.
	// Default 2×Rate.
	Burst int

	// MaxValueBytes bounds one PUBLISH payload (and a will message);
	// larger ones are refused. Default bus.DefaultMaxValueBytes; -1: no
	// limit.
	MaxValueBytes int
	// MaxResources bounds the distinct resources (node/<id>/<res>) one
	// client registers or publishes. Default bus.DefaultMaxResources;
	// -1: no limit.
	MaxResources int
	// NodeValueRate is the messages per second one client may publish,
	// NodeValueBurst how many above it at once. Defaults
	// bus.DefaultNodeValueRate and bus.DefaultNodeValueBurst; rate -1:
	// unlimited.
	NodeValueRate  float64
	NodeValueBurst int
	// NewNodesPerSource is how many new client ids one source address (IP,
	// any port) may connect per second, in bursts of as many. Default
	// bus.DefaultNewNodesPerSource; -1: unlimited.
	NewNodesPerSource float64

	// AdvertiseAddr, when set, receives an ADVERTISE every
	// AdvertiseInterval (e.g. a broadcast or multicast address).
	AdvertiseAddr string
	// AdvertiseInterval defaults to 15 min.
	AdvertiseInterval time.Duration
	// Tick is how often timers (keep-alive, sleep, retries) are checked.
	// Default 1 s.
	Tick time.Duration
	// PersistDelay is how soon a change of a session (a CONNECT, a topic
	// id, a subscription, a will, a sleep) reaches the NODE_TABLES bucket
	// (see doc.go, "Restarts"). Default 100 ms; negative: sessions are not
	// persisted.
	PersistDelay time.Duration
}

// setDefaults fills the zero fields (package internal/config: defaults,
// then validate).
func (c *Config) setDefaults() {
	config.Default(&c.Name, "mqttsn")
	config.Default(&c.GatewayID, 1)
	config.Default(&c.MaxClients, 10000)
	config.Default(&c.MaxTopics, 256)
	config.Default(&c.MaxSubscriptions, 32)
	config.Default(&c.MaxQueue, 100)
	config.Default(&c.Retries, 3)
	config.Default(&c.EvictAfter, time.Minute)
	config.Default(&c.IdleTimeout, time.Hour)
	config.Default(&c.RetryInterval, 10*time.Second)
	config.Default(&c.AdvertiseInterval, 15*time.Minute)
	config.Default(&c.Tick, time.Second)
	if c.Rate == 0 {
		c.Rate = 100
	}
	if c.Burst == 0 {
		c.Burst = int(2 * c.Rate)
	}
	if c.Burst < 1 {
		c.Burst = 1
	}
	c.setQuotaDefaults()
}

// setQuotaDefaults fills the per-client quotas from bus's shared defaults.
func (c *Config) setQuotaDefaults() {
	if c.MaxValueBytes == 0 {
		c.MaxValueBytes = bus.DefaultMaxValueBytes
	}
	if c.MaxResources == 0 {
		c.MaxResources = bus.DefaultMaxResources
	}
	if c.NodeValueRate == 0 {
		c.NodeValueRate = bus.DefaultNodeValueRate
	}
	if c.NodeValueBurst <= 0 {
		c.NodeValueBurst = bus.DefaultNodeValueBurst
	}
	if c.NewNodesPerSource == 0 {
		c.NewNodesPerSource = bus.DefaultNewNodesPerSource
	}
}

func (c *Config) validate() error {
	switch {
	case c.Conn == nil:
		return errors.New("mqttsn: config: no nats connection")
	case c.Logger == nil:
		return errors.New("mqttsn: config: no logger")
	case c.Listen == "" && c.PacketConn == nil:
		return errors.New("mqttsn: config: no listen address")
	case c.MaxClients < 0 || c.MaxTopics < 0 || c.MaxSubscriptions < 0 || c.MaxQueue < 0 || c.Retries < 0:
		return errors.New("mqttsn: config: negative limit")
	case c.Rate < 0 && c.Rate != config.Unlimited, c.NodeValueRate < 0 && c.NodeValueRate != config.Unlimited,
		c.NewNodesPerSource < 0 && c.NewNodesPerSource != config.Unlimited,
		c.MaxValueBytes < 0 && c.MaxValueBytes != config.Unlimited, c.MaxResources < 0 && c.MaxResources != config.Unlimited:
		return errors.New("mqttsn: config: negative limit: want -1 (no limit), 0 (default) or more")
	}
	if c.Listen != "" && c.PacketConn == nil {
		if _, err := net.ResolveUDPAddr("udp", c.Listen); err != nil {
			return fmt.Errorf("mqttsn: listen %q: %w", c.Listen, err)
		}
	}
	if c.AdvertiseAddr != "" {
		if _, err := net.ResolveUDPAddr("udp", c.AdvertiseAddr); err != nil {
			return fmt.Errorf("mqttsn: advertise address %q: %w", c.AdvertiseAddr, err)
		}
	}
	return checkPredefined(c.Predefined)
}
