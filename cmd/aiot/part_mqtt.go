package main

import (
	"flag"
	"fmt"
	"net"
	"net/url"

	"github.com/goaiot/goaiot/gateways/mqtt"
	"github.com/goaiot/goaiot/gateways/mqtt/bridge"
	"github.com/goaiot/goaiot/internal/tlsconfig"
)

// mqttFlags are the mqtt part's own flags.
type mqttFlags struct {
	gw  mqtt.Config
	br  bridge.Config
	tls tlsconfig.Files
}

func mqttPart() part {
	return part{
		name:    "mqtt",
		summary: "node logic of MQTT and MQTT-SN nodes; optional bridge to an existing MQTT broker (--mqtt-broker)",
		register: func(fs *flag.FlagSet) func(*system) (runner, error) {
			var f mqttFlags
			fs.DurationVar(&f.gw.CheckInterval, "mqtt-check-interval", mqtt.DefaultCheckInterval, "period of gateway.check (nodes re-announce themselves)")
			fs.DurationVar(&f.gw.CommandTimeout, "mqtt-command-timeout", mqtt.DefaultCommandTimeout, "how long a command waits for the MQTT node to republish the value")
			fs.StringVar(&f.br.Broker, "mqtt-broker", "", "bridge this existing MQTT broker: tcp://host:1883, ssl://host:8883, ws://… (empty: no bridge)")
			fs.StringVar(&f.br.Username, "mqtt-user", "", "bridge: MQTT user name")
			fs.StringVar(&f.br.Password, "mqtt-password", "", "bridge: MQTT password")
			fs.StringVar(&f.br.ClientID, "mqtt-client-id", "", "bridge: MQTT client id, kept stable for its persistent session (default aiot-bridge-<gateway name>)")
			fs.StringVar(&f.tls.CA, "mqtt-tls-ca", "", "bridge: PEM file of the CA that signed the broker's certificate (default: system roots)")
			fs.StringVar(&f.tls.Cert, "mqtt-tls-cert", "", "bridge: PEM client certificate, for brokers that require one")
			fs.StringVar(&f.tls.Key, "mqtt-tls-key", "", "bridge: PEM key of --mqtt-tls-cert")
			fs.Float64Var(&f.br.NodeRate, "mqtt-node-rate", 50, "bridge: messages per second one node may send (bursts of 2x); beyond, dropped")
			return func(sys *system) (runner, error) { return buildMQTT(sys, f) }
		},
	}
}

func buildMQTT(sys *system, f mqttFlags) (runner, error) {
	nc, err := sys.connect("mqtt")
	if err != nil {
		return nil, err
	}
	f.gw.Conn, f.gw.Logger = nc, sys.log.With("part", "mqtt")
	f.gw.Gateway, f.gw.Site, f.gw.NodeTimeout = sys.gatewayName("mqtt"), sys.opts.site, sys.opts.nodeTimeout
	f.gw.MaxNodes, f.gw.Claims = sys.opts.maxNodes, sys.claims
	if f.br.Broker != "" {
		if err := checkNotOwnListener(sys, f.br.Broker); err != nil {
			return nil, err
		}
		if f.br.TLS, err = tlsconfig.Client(f.tls); err != nil {
			return nil, fmt.Errorf("--mqtt-tls-*: %w", err)
		}
		f.br.Conn, f.br.Logger, f.br.Name = nc, sys.log.With("part", "mqtt-bridge"), f.gw.Gateway
		f.br.NodeBurst = int(2 * f.br.NodeRate)
		if f.gw.Bridge, err = bridge.New(f.br); err != nil {
			return nil, err
		}
	}
	return mqtt.New(f.gw)
}

// checkNotOwnListener refuses to bridge the embedded MQTT listener to
// itself, which would relay every node message onto the bus again, forever.
func checkNotOwnListener(sys *system, broker string) error {
	if sys.server == nil || sys.server.MQTTAddr() == "" {
		return nil
	}
	u, err := url.Parse(broker)
	if err != nil {
		return nil // bridge.New reports it
	}
	_, own, _ := net.SplitHostPort(sys.server.MQTTAddr())
	if u.Port() != own {
		return nil
	}
	ips, err := net.LookupIP(u.Hostname())
	if err != nil {
		return nil
	}
	for _, ip := range ips {
		if ip.IsLoopback() || isLocalIP(ip) {
			return fmt.Errorf("--mqtt-broker %s is this process's own MQTT listener (--mqtt-listen): bridge an external broker, or connect MQTT nodes to the listener directly", u.Redacted())
		}
	}
	return nil
}

func isLocalIP(ip net.IP) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}
