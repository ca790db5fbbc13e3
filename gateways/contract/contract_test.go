package contract

import (
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/coap"
	"github.com/goaiot/goaiot/gateways/coap/coapsim"
	"github.com/goaiot/goaiot/gateways/mqtt"
	"github.com/goaiot/goaiot/gateways/mqtt/mqttsim"
	"github.com/goaiot/goaiot/gateways/mqttsn"
	"github.com/goaiot/goaiot/gateways/mqttsn/snsim"
	"github.com/goaiot/goaiot/gateways/queue/queuetest"
	"github.com/goaiot/goaiot/gateways/ws"
	"github.com/goaiot/goaiot/gateways/ws/wssim"
)

const (
	wait = 20 * time.Second // for a node to come online on a loaded machine
	// commandTimeout is long enough for a node to answer on a loaded
	// machine and longer than presence.DefaultConfirmGrace.
	commandTimeout = 4 * time.Second
)

// node is a simulated node online behind its gateway.
type node struct {
	id string
	// silence returns a command the node will not answer (it may stop
	// the node to get there).
	silence func() (res, payload string)
}

func TestCommandContract(t *testing.T) {
	setups := []struct {
		name  string
		start func(t *testing.T, srv *bus.Server) node
		// overtaken: the node gets the command straight from the bus, so
		// on a loaded machine its "no" can reach the gateway before the
		// gateway starts waiting, which then reads as a timeout (a known
		// limit of MQTT and MQTT-SN command confirmation, see
		// gateways/presence/doc.go).
		overtaken bool
	}{
		{"coap", startCoAP, false},
		{"mqtt", startMQTT, true},
		{"mqttsn", startMQTTSN, true},
		{"ws", startWS, false},
	}
	// In this order: the timeout case may stop the node.
	commands := []struct {
		name         string
		unknown      bool // to a node no gateway owns
		silent       bool // the node's silence command
		res, payload string
		code         string // the reply's (no_gateway: the queue's)
	}{
		{name: "ok", res: "led", payload: "1", code: bus.CodeOK},
		{name: "refused by the node", res: "led", payload: "5", code: bus.CodeRefused},
		{name: "unknown node", unknown: true, res: "led", payload: "1", code: bus.CodeNoGateway},
		{name: "timeout", silent: true, code: bus.CodeTimeout},
	}
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			srv := bustest.StartServer(t, bustest.WithMQTT())
			nc := bustest.Connect(t, srv)
			queuetest.Start(t, bustest.Connect(t, srv)) // it answers for the unknown node
			n := s.start(t, srv)
			for _, c := range commands {
				t.Run(c.name, func(t *testing.T) {
					id, res, payload := n.id, c.res, c.payload
					switch {
					case c.unknown:
						id = "nobody"
					case c.silent:
						res, payload = n.silence()
					}
					got := request(t, nc, id, res, payload)
					if s.overtaken && c.code == bus.CodeRefused && got == bus.CodeTimeout {
						t.Logf("%s %s=%s: the node's refusal overtook the command: timeout", id, res, payload)
						return
					}
					if got != c.code {
						t.Fatalf("%s %s=%s: code %q, want %q", id, res, payload, got, c.code)
					}
				})
			}
		})
	}
}

// request sends a command and returns the reply's code.
func request(t *testing.T, nc *nats.Conn, id, res, payload string) string {
	t.Helper()
	m, err := nc.Request(bus.GatewaySet(id, res), []byte(payload), 3*commandTimeout)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	r, err := bus.ParseReply(m.Data)
	if err != nil {
		t.Fatalf("reply %s: %v", m.Data, err)
	}
	if r.OK != (r.Code == bus.CodeOK) || (!r.OK && r.Error == "") {
		t.Errorf("reply %s: ok, code and error disagree", m.Data)
	}
	return r.Code
}

// online subscribes to id's $state; the returned func waits for online.
func online(t *testing.T, srv *bus.Server, id string) func() {
	t.Helper()
	states := bustest.Subscribe(t, bustest.Connect(t, srv), bus.NodeState(id))
	return func() {
		t.Helper()
		for {
			s, err := bus.ParseState(bustest.Next(t, states, bus.NodeState(id), wait).Data)
			if err != nil {
				t.Fatal(err)
			}
			if s.State == bus.StateOnline {
				return
			}
		}
	}
}

func ready(t *testing.T, what string, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(wait):
		t.Fatalf("%s not ready", what)
	}
}

// startCoAP: a coapsim node; it says no with 4.00, and is stopped for the
// timeout (CoAP nodes answer every request).
func startCoAP(t *testing.T, srv *bus.Server) node {
	t.Helper()
	const id = "CONTRACT1"
	wait := online(t, srv, id)
	g, err := coap.New(coap.Config{Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t).With("component", "coap"),
		Listen: "127.0.0.1:0", NodePort: coap.SourcePort, Gateway: "coap@test", Site: "test",
		NodeTimeout: time.Minute, RequestTimeout: 2 * time.Second, CommandTimeout: commandTimeout})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, g.Run)
	ready(t, "coap gateway", g.Ready())
	sim, err := coapsim.New(coapsim.Config{UID: id, Listen: "127.0.0.1:0", Gateway: g.Addr().String(), PostFromListener: true,
		BeaconInterval: time.Second, Logger: bustest.Logger(t).With("component", "coapsim")})
	if err != nil {
		t.Fatal(err)
	}
	stop := bustest.RunStop(t, sim.Run)
	wait()
	return node{id: id, silence: func() (string, string) { stop(); return "led", "1" }}
}

// startMQTT: an mqttsim node on the embedded listener; it says no by
// republishing its LED, and ignores a resource it does not have.
func startMQTT(t *testing.T, srv *bus.Server) node {
	t.Helper()
	const id = "contract-mqtt"
	wait := online(t, srv, id)
	startMQTTLogic(t, srv)
	sim, err := mqttsim.New(mqttsim.Config{Broker: "tcp://" + srv.MQTTAddr(), ID: id, SayNo: true,
		CheckInterval: time.Second, SensorInterval: time.Hour, Logger: bustest.Logger(t).With("component", "mqttsim")})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, sim.Run)
	wait()
	return node{id: id, silence: func() (string, string) { return "nothing", "1" }}
}

// startMQTTLogic runs the MQTT node logic, which answers the commands of
// MQTT and MQTT-SN nodes.
func startMQTTLogic(t *testing.T, srv *bus.Server) {
	t.Helper()
	g, err := mqtt.New(mqtt.Config{Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t).With("component", "mqtt"),
		Gateway: "mqtt@test", Site: "test", CommandTimeout: commandTimeout})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, g.Run)
	ready(t, "mqtt node logic", g.Ready())
}

// startMQTTSN: an snsim node through the MQTT-SN gateway; it says no by
// publishing its LED, and ignores a resource it does not have.
func startMQTTSN(t *testing.T, srv *bus.Server) node {
	t.Helper()
	const id = "contract-sn"
	wait := online(t, srv, id)
	startMQTTLogic(t, srv)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	g, err := mqttsn.New(mqttsn.Config{Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t).With("component", "mqttsn"), PacketConn: conn})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, g.Run)
	ready(t, "mqttsn gateway", g.Ready())
	sim, err := snsim.New(snsim.Config{Gateway: conn.LocalAddr().String(), NodeID: id, Local: "127.0.0.1:0",
		Commands: true, SayNo: true, SensorInterval: time.Hour, Logger: bustest.Logger(t).With("component", "snsim")})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, sim.Run)
	wait()
	return node{id: id, silence: func() (string, string) { return "nothing", "1" }}
}

// startWS: a wssim node; it says no by sending its LED, and never answers
// a text command.
func startWS(t *testing.T, srv *bus.Server) node {
	t.Helper()
	const id = "contract-ws"
	wait := online(t, srv, id)
	g, err := ws.New(ws.Config{Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t).With("component", "ws"),
		Gateway: "ws@test", Site: "test", NodeTimeout: time.Minute, CommandTimeout: commandTimeout})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(g)
	t.Cleanup(hs.Close)
	bustest.Run(t, g.Run)
	ready(t, "ws gateway", g.Ready())
	sim, err := wssim.New(wssim.Config{URL: "ws" + strings.TrimPrefix(hs.URL, "http") + "/node", ID: id,
		SensorInterval: time.Hour, Redial: 50 * time.Millisecond, Logger: bustest.Logger(t).With("component", "wssim")})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, sim.Run)
	wait()
	return node{id: id, silence: func() (string, string) { return "text", "hello" }}
}
