package attacks

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/mqttsn"
	"github.com/goaiot/goaiot/gateways/mqttsn/packet"
)

// snClient is a raw MQTT-SN client: UDP datagrams built with the packet
// codec, nothing else.
type snClient struct {
	t     *testing.T
	conn  *net.UDPConn
	msgID uint16
}

func dialSN(t *testing.T, gw net.Addr, clientID string) *snClient {
	t.Helper()
	conn, err := net.DialUDP("udp", nil, gw.(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &snClient{t: t, conn: conn}
	ack, ok := c.roundTrip(&packet.Connect{Flags: packet.FlagCleanSession, ProtocolID: 1, Duration: 60, ClientID: clientID}).(*packet.Connack)
	if !ok || ack.ReturnCode != packet.Accepted {
		t.Fatalf("CONNECT %s: %+v", clientID, ack)
	}
	return c
}

// roundTrip sends p and returns the next packet the gateway sends back.
func (c *snClient) roundTrip(p packet.Packet) packet.Packet {
	c.t.Helper()
	b, err := packet.Marshal(p)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatal(err)
	}
	buf := make([]byte, 2048)
	_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	n, err := c.conn.Read(buf)
	if err != nil {
		c.t.Fatalf("no answer to %T: %v", p, err)
	}
	r, err := packet.Unmarshal(buf[:n])
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

func (c *snClient) register(topic string) *packet.Regack {
	c.t.Helper()
	c.msgID++
	ack, ok := c.roundTrip(&packet.Register{MsgID: c.msgID, TopicName: topic}).(*packet.Regack)
	if !ok {
		c.t.Fatalf("REGISTER %s: no REGACK", topic)
	}
	return ack
}

func (c *snClient) subscribe(filter string) *packet.Suback {
	c.t.Helper()
	c.msgID++
	ack, ok := c.roundTrip(&packet.Subscribe{Flags: packet.Flags(0).WithQoS(1), MsgID: c.msgID, TopicName: filter}).(*packet.Suback)
	if !ok {
		c.t.Fatalf("SUBSCRIBE %s: no SUBACK", filter)
	}
	return ack
}

func (c *snClient) publish(topicID uint16, data string) *packet.Puback {
	c.t.Helper()
	c.msgID++
	ack, ok := c.roundTrip(&packet.Publish{Flags: packet.Flags(0).WithQoS(1), TopicID: topicID, MsgID: c.msgID, Data: []byte(data)}).(*packet.Puback)
	if !ok {
		c.t.Fatalf("PUBLISH: no PUBACK")
	}
	return ack
}

// Rows 2 and 3 of issue 12, over raw UDP to the MQTT-SN gateway of the
// default set-up: a client speaks only for the node named by its client id.
func TestMQTTSNAttacks(t *testing.T) {
	e := startMQTTEdge(t)
	gw, err := mqttsn.New(mqttsn.Config{Conn: bustest.Connect(t, e.srv), Logger: bustest.Logger(t), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, gw.Run)
	bustest.Eventually(t, wait, "gateway bound", func() error { return bustest.Want(gw.Addr() != nil) })
	cmds, err := e.nc.SubscribeSync(bus.GatewaySet("victim", "led"))
	if err != nil {
		t.Fatal(err)
	}
	a := dialSN(t, gw.Addr(), "mallory")

	refused := []struct{ name, topic string }{
		{"REGISTER the stream delete", "$JS/API/STREAM/DELETE/NODES"},
		{"REGISTER another node's command", "gateway/victim/led/set"},
		{"REGISTER another node's value", "node/victim/temperature"},
		{"REGISTER another node's state", "node/victim/$state"},
		{"REGISTER an inbox", "_INBOX/x/y"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			if ack := a.register(tt.topic); ack.ReturnCode != packet.NotSupported {
				t.Fatalf("REGACK %+v, want rejected: not supported", ack)
			}
		})
	}
	for _, filter := range []string{"gateway/#", "_INBOX/#", "#", "gateway/victim/#"} {
		t.Run("SUBSCRIBE "+filter, func(t *testing.T) {
			if ack := a.subscribe(filter); ack.ReturnCode != packet.NotSupported {
				t.Fatalf("SUBACK %+v, want rejected: not supported", ack)
			}
		})
	}
	t.Run("node/check claiming another id", func(t *testing.T) {
		ack := a.register("node/check")
		if ack.ReturnCode != packet.Accepted {
			t.Fatalf("REGISTER node/check: %+v", ack)
		}
		if p := a.publish(ack.TopicID, `{"id":"victim"}`); p.ReturnCode != packet.NotSupported {
			t.Fatalf("PUBACK %+v, want rejected: not supported", p)
		}
	})
	t.Run("nothing lost, the victim kept", func(t *testing.T) {
		// mallory's own value goes through: everything before it was handled.
		ack := a.register("node/mallory/temperature")
		if ack.ReturnCode != packet.Accepted {
			t.Fatalf("REGISTER own topic: %+v", ack)
		}
		if p := a.publish(ack.TopicID, `{"value":"1"}`); p.ReturnCode != packet.Accepted {
			t.Fatalf("PUBACK own value %+v", p)
		}
		bustest.Eventually(t, wait, "own value stored", func() error {
			return bustest.Want(strings.Contains(lastValue(t, e.nc, bus.NodeValue("mallory", "temperature")), `"1"`))
		})
		if m, err := cmds.NextMsg(10 * time.Millisecond); err == nil {
			t.Fatalf("a command reached the victim: %s", m.Data)
		}
		if _, ok := e.coap.Lookup("victim"); !ok {
			t.Fatal("the CoAP gateway lost its node")
		}
		intact(t, e.nc, e.before)
	})
}
