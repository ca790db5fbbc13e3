package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/gateways/coap/coapsim"
	"github.com/goaiot/goaiot/gateways/mqtt/mqttsim"
	"github.com/goaiot/goaiot/gateways/mqttsn/snsim"
	"github.com/goaiot/goaiot/gateways/ws/wssim"
)

// simPart runs simulated nodes of every protocol: `aiot sim` points them at
// a running system, `aiot run --demo` at the process's own listeners.
func simPart() part {
	return part{
		name:     "sim",
		summary:  "simulated nodes of every protocol (CoAP, MQTT, MQTT-SN, websocket) pointed at a running system",
		register: registerSim,
	}
}

// simFlags are the sim's own flags.
type simFlags struct {
	coapNodes, mqttNodes, snNodes int
	wsNodes, widgetNodes          int
	coapNodePort                  int
	targets                       simTargets
	coapFrom                      string
	interval                      time.Duration
	prefix                        string
}

func registerSim(fs *flag.FlagSet) func(*system) (runner, error) {
	var f simFlags
	fs.IntVar(&f.coapNodes, "coap-nodes", 3, "simulated CoAP nodes (aiot sim, aiot run --demo)")
	fs.IntVar(&f.mqttNodes, "mqtt-nodes", 3, "simulated MQTT nodes (aiot sim, aiot run --demo)")
	fs.IntVar(&f.snNodes, "mqttsn-nodes", 3, "simulated MQTT-SN nodes (aiot sim, aiot run --demo)")
	fs.IntVar(&f.wsNodes, "ws-nodes", 3, "simulated websocket nodes (aiot sim, aiot run --demo)")
	fs.IntVar(&f.widgetNodes, "widget-nodes", 1, "simulated websocket nodes of each widget kind: robot, ribot, js and camera (aiot sim, aiot run --demo)")
	fs.StringVar(&f.targets.coap, "sim-coap", "127.0.0.1:5683", "aiot sim: the CoAP gateway's address")
	fs.StringVar(&f.coapFrom, "sim-coap-from", "127.0.0.2", "aiot sim, --demo: the first CoAP node's own address; the others take the next ones (all of 127/8 is loopback on Linux)")
	fs.IntVar(&f.coapNodePort, "sim-coap-node-port", 5683, "aiot sim, --demo: the CoAP nodes' server port (0: any, for a gateway that answers the source port)")
	fs.StringVar(&f.targets.mqtt, "sim-mqtt", "tcp://127.0.0.1:1883", "aiot sim: the MQTT broker URL")
	fs.StringVar(&f.targets.mqttsn, "sim-mqttsn", "127.0.0.1:1885", "aiot sim: the MQTT-SN gateway's UDP address")
	fs.StringVar(&f.targets.wsURL, "sim-ws-url", "ws://127.0.0.1:8080/node", "aiot sim: the websocket gateway's node URL")
	fs.DurationVar(&f.interval, "sim-interval", 5*time.Second, "aiot sim, --demo: sensor period of the simulated nodes")
	fs.StringVar(&f.prefix, "sim-prefix", "sim", "aiot sim, --demo: simulated node ids are <prefix>-<protocol>-<n>")
	return func(sys *system) (runner, error) {
		if sys.all && !sys.opts.demo {
			return noSim{}, nil
		}
		if sys.all {
			f.coapNodePort = demoCoAPNodePort(fs, sys, f.coapNodePort)
		}
		if min(f.coapNodes, f.mqttNodes, f.snNodes, f.wsNodes, f.widgetNodes) < 0 {
			return nil, errors.New("negative node count")
		}
		if f.coapNodePort < 0 || f.coapNodePort > 65535 {
			return nil, fmt.Errorf("--sim-coap-node-port %d: want 0-65535", f.coapNodePort)
		}
		if _, err := netip.ParseAddr(f.coapFrom); err != nil {
			return nil, fmt.Errorf("--sim-coap-from: %w", err)
		}
		if err := bus.ValidateNodeID(f.prefix + "-ws-1"); err != nil {
			return nil, fmt.Errorf("--sim-prefix: %w", err)
		}
		nc, err := sys.connect("sim")
		if err != nil {
			return nil, err
		}
		return &simFleet{flags: f, sys: sys, nc: nc, log: sys.log.With("part", "sim")}, nil
	}
}

// demoCoAPNodePort picks the simulated CoAP nodes' port for the demo. A
// gateway listening on every address of port 5683 (the default ":5683")
// holds that port on 127.0.0.N too, so the nodes cannot serve there: then,
// unless --coap-node-port was given, the demo switches the CoAP gateway to
// reach nodes at the source port of their /alive (--coap-node-port 0) and
// lets the nodes serve on any port and post from it. It runs before the
// coap part is built (simPart comes first in parts).
func demoCoAPNodePort(fs *flag.FlagSet, sys *system, port int) int {
	gwFlag := fs.Lookup("coap-node-port")
	host, gwPort, err := net.SplitHostPort(sys.opts.coapListen)
	if gwFlag == nil || err != nil || gwPort != strconv.Itoa(port) {
		return port
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return port
	}
	set := false
	fs.Visit(func(fl *flag.Flag) { set = set || fl.Name == "coap-node-port" })
	if set {
		return port // the user chose; a bind error will say what to change
	}
	if err := fs.Set("coap-node-port", "0"); err != nil {
		return port
	}
	sys.log.Info("demo: the CoAP gateway listens on every address of the nodes' port, so it reaches the simulated CoAP nodes at their source port (--coap-node-port 0)",
		"coap_listen", sys.opts.coapListen)
	return 0
}

// noSim is the sim part of `aiot run` without --demo.
type noSim struct{}

func (noSim) Run(context.Context) error { return nil }

// simFleet runs every simulated node until ctx ends.
type simFleet struct {
	flags simFlags
	sys   *system
	nc    *nats.Conn
	log   *slog.Logger
}

// simNode is one simulated node of any protocol.
type simNode struct {
	id       string
	protocol string
	run      func(ctx context.Context) error
}

// simTargets are the gateway addresses the nodes talk to; empty skips a
// protocol.
type simTargets struct {
	coap   string // host:port
	mqtt   string // broker URL
	mqttsn string // host:port
	wsURL  string
}

// Run builds the nodes once the gateways listen, runs them, and logs when
// they are all online.
func (f *simFleet) Run(ctx context.Context) error {
	t, err := f.targets(ctx)
	if err != nil || ctx.Err() != nil {
		return err
	}
	nodes, err := f.nodes(t)
	if err != nil {
		return err
	}
	if len(nodes) == 0 {
		f.log.Warn("no simulated nodes to run")
		return nil
	}
	stop := f.watch(nodes)
	defer stop()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			if err := n.run(ctx); err != nil {
				f.log.Error("simulated node stopped", "node", n.id, "protocol", n.protocol, "err", err)
				if errors.Is(err, syscall.EADDRINUSE) && n.protocol == bus.ProtocolCoAP {
					f.log.Error("a CoAP gateway listening on every address holds the nodes' port: " +
						"give it one address (--coap-listen 127.0.0.1:5683) or use --sim-coap-node-port 0 with a gateway that answers the source port")
				}
			}
		})
	}
	f.log.Info("simulated nodes started", "count", len(nodes), "coap", t.coap, "mqtt", t.mqtt, "mqttsn", t.mqttsn, "ws", t.wsURL)
	wg.Wait()
	return nil
}

// targets are the flags under `aiot sim`; under `aiot run --demo` they are
// the addresses this process's listeners are actually bound to (they may
// have been given as port 0).
func (f *simFleet) targets(ctx context.Context) (simTargets, error) {
	if !f.sys.all {
		return f.flags.targets, nil
	}
	var t simTargets
	select {
	case <-f.sys.httpBound:
	case <-ctx.Done():
		return t, nil
	}
	if _, ok := f.sys.built["ws"]; ok && f.sys.httpAddr != nil {
		t.wsURL = "ws://" + dialable(f.sys.httpAddr.String()) + wsPath
	}
	if _, ok := f.sys.built["mqtt"]; ok {
		t.mqtt = f.flags.targets.mqtt // an external NATS: its MQTT listener is not ours
		if f.sys.server != nil {
			t.mqtt = ""
			if a := f.sys.server.MQTTAddr(); a != "" {
				t.mqtt = "tcp://" + dialable(a)
			}
		}
	}
	t.coap = f.boundAddr(ctx, "coap")
	t.mqttsn = f.boundAddr(ctx, "mqttsn")
	if _, ok := f.sys.built["mqttsn"]; ok && t.mqttsn == "" {
		if _, port, _ := net.SplitHostPort(f.sys.opts.mqttsnListen); port != "0" {
			t.mqttsn = dialable(f.sys.opts.mqttsnListen)
		} else {
			f.log.Warn("the MQTT-SN gateway does not tell its bound port: no simulated MQTT-SN nodes with --mqttsn-listen port 0")
		}
	}
	return t, nil
}

// listener is a part that binds its socket in Run and tells where.
type listener interface {
	Ready() <-chan struct{}
	Addr() net.Addr
}

// boundAddr waits for part's listener and returns its address to dial, or
// "" when the part is not in this process or does not say.
func (f *simFleet) boundAddr(ctx context.Context, part string) string {
	l, ok := f.sys.built[part].(listener)
	if !ok {
		return ""
	}
	select {
	case <-l.Ready():
	case <-ctx.Done():
		return ""
	case <-time.After(10 * time.Second):
		f.log.Warn("no simulated nodes for a part whose listener is not up", "part", part)
		return ""
	}
	if a := l.Addr(); a != nil {
		return dialable(a.String())
	}
	return ""
}

// dialable turns a listen address into one to dial: an unspecified host
// (":8080", "[::]:8080", "0.0.0.0:8080") becomes 127.0.0.1.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// nodes builds the simulated nodes for t.
func (f *simFleet) nodes(t simTargets) ([]simNode, error) {
	var out []simNode
	if t.coap != "" {
		ns, err := f.coapNodes(t.coap)
		if err != nil {
			return nil, err
		}
		out = append(out, ns...)
	}
	if t.mqtt != "" {
		for i := range f.flags.mqttNodes {
			id := fmt.Sprintf("%s-mqtt-%d", f.flags.prefix, i+1)
			n, err := mqttsim.New(mqttsim.Config{Broker: t.mqtt, ID: id, Logger: f.log, SensorInterval: f.flags.interval})
			if err != nil {
				return nil, err
			}
			out = append(out, simNode{id: id, protocol: bus.ProtocolMQTT, run: n.Run})
		}
	}
	if t.mqttsn != "" {
		for i := range f.flags.snNodes {
			id := fmt.Sprintf("%s-mqttsn-%d", f.flags.prefix, i+1)
			n, err := snsim.New(snsim.Config{Gateway: t.mqttsn, NodeID: id, Commands: true,
				Name: fmt.Sprintf("MQTT-SN node %d", i+1), SensorInterval: f.flags.interval, Logger: f.log})
			if err != nil {
				return nil, err
			}
			out = append(out, simNode{id: id, protocol: bus.ProtocolMQTTSN, run: n.Run})
		}
	}
	if t.wsURL != "" {
		ns, err := f.widgetNodes(t.wsURL)
		if err != nil {
			return nil, err
		}
		out = append(out, ns...)
		for i := range f.flags.wsNodes {
			id := fmt.Sprintf("%s-ws-%d", f.flags.prefix, i+1)
			n, err := wssim.New(wssim.Config{
				URL: t.wsURL, ID: id, Name: fmt.Sprintf("WebSocket node %d", i+1),
				Logger: f.log, SensorInterval: f.flags.interval,
			})
			if err != nil {
				return nil, err
			}
			out = append(out, simNode{id: id, protocol: bus.ProtocolWebSocket, run: n.Run})
		}
	}
	return out, nil
}

// widgetNodes are websocket nodes of the kinds the dashboard has a widget
// for (robot, ribot, js, camera), --widget-nodes of each, with ids
// <prefix>-<kind>-<n>.
func (f *simFleet) widgetNodes(url string) ([]simNode, error) {
	var out []simNode
	for i := range f.flags.widgetNodes {
		for _, k := range wssim.WidgetKinds() {
			id := fmt.Sprintf("%s-%s-%d", f.flags.prefix, k, i+1)
			n, err := wssim.New(wssim.Config{URL: url, ID: id, Kind: k, Logger: f.log})
			if err != nil {
				return nil, err
			}
			out = append(out, simNode{id: id, protocol: bus.ProtocolWebSocket, run: n.Run})
		}
	}
	return out, nil
}

// coapNodes are RIOT-like CoAP nodes, each serving on its own loopback
// address (--sim-coap-from and the next ones) at --sim-coap-node-port.
func (f *simFleet) coapNodes(gateway string) ([]simNode, error) {
	var out []simNode
	addr := netip.MustParseAddr(f.flags.coapFrom) // checked by the builder
	for i := range f.flags.coapNodes {
		id := fmt.Sprintf("%s-coap-%d", f.flags.prefix, i+1)
		n, err := coapsim.New(coapsim.Config{
			UID: id, Gateway: gateway, Name: fmt.Sprintf("CoAP node %d", i+1),
			Listen:           netip.AddrPortFrom(addr, uint16(f.flags.coapNodePort)).String(),
			PostFromListener: f.flags.coapNodePort == 0,
			Sensors:          true, IMU: i == 0, SensorInterval: f.flags.interval, Logger: f.log,
		})
		if err != nil {
			return nil, err
		}
		out = append(out, simNode{id: id, protocol: bus.ProtocolCoAP, run: n.Run})
		addr = addr.Next()
	}
	return out, nil
}

// watch logs once every simulated node has been seen online on the bus.
func (f *simFleet) watch(nodes []simNode) (stop func()) {
	want := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		want[n.id] = true
	}
	var mu sync.Mutex
	online := map[string]bool{}
	sub, err := f.nc.Subscribe("node.*.$state", func(m *nats.Msg) {
		id := strings.Split(m.Subject, ".")[1]
		st, err := bus.ParseState(m.Data)
		if !want[id] || err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		was := len(online) == len(want)
		if st.State == bus.StateOffline {
			delete(online, id)
		} else {
			online[id] = true
		}
		if now := len(online) == len(want); now && !was {
			f.log.Info("all simulated nodes online", "count", len(want))
		}
	})
	if err != nil {
		f.log.Warn("cannot watch the simulated nodes' state", "err", err)
		return func() {}
	}
	return func() { _ = sub.Unsubscribe() }
}
