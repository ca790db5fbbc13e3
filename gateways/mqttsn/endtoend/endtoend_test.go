package endtoend

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/mqtt"
	"github.com/goaiot/goaiot/gateways/mqttsn"
	"github.com/goaiot/goaiot/gateways/mqttsn/snsim"
)

func run(t *testing.T, fn func(context.Context) error) {
	t.Helper()
	bustest.Run(t, fn)
}

// TestCommandRoundTrip: a simulated node comes online as an MQTT-SN node,
// and `nats req gateway.<id>.led.set 1` gets {"ok":true} from the MQTT node
// logic once the node (reached through the MQTT-SN gateway) republished led.
func TestCommandRoundTrip(t *testing.T) {
	srv := bustest.StartServer(t)
	log := bustest.Logger(t)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := mqttsn.New(mqttsn.Config{Conn: bustest.Connect(t, srv), Logger: log.With("component", "mqttsn"), PacketConn: conn})
	if err != nil {
		t.Fatal(err)
	}
	run(t, sn.Run)
	logic, err := mqtt.New(mqtt.Config{Conn: bustest.Connect(t, srv), Logger: log.With("component", "mqtt"), Gateway: "mqtt@test", Site: "test"})
	if err != nil {
		t.Fatal(err)
	}
	run(t, logic.Run)

	nc := bustest.Connect(t, srv)
	states := bustest.Subscribe(t, nc, bus.NodeState("e2e-1"))
	node, err := snsim.New(snsim.Config{Gateway: conn.LocalAddr().String(), NodeID: "e2e-1", Local: "127.0.0.4:0",
		Logger: log.With("component", "snsim"), Commands: true, SensorInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	run(t, node.Run)

	st, err := bus.ParseState(bustest.Next(t, states, bus.NodeState("e2e-1"), 5*time.Second).Data)
	if err != nil || st.State != bus.StateOnline || st.Protocol != bus.ProtocolMQTTSN {
		t.Fatalf("state %+v: %v", st, err)
	}
	var reply bus.Reply
	deadline := time.Now().Add(5 * time.Second)
	for {
		msg, err := nc.Request(bus.GatewaySet("e2e-1", "led"), []byte("1"), 3*time.Second)
		if err == nil {
			if reply, err = bus.ParseReply(msg.Data); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) { // the logic may still be discovering the node
			t.Fatalf("command: %v", err)
		}
	}
	if !reply.OK || node.LED() != "1" {
		t.Fatalf("reply %+v, LED %q", reply, node.LED())
	}
}
