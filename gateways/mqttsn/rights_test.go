package mqttsn

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/mqttsn/packet"
)

// attacker is the node id every attack connects with; victim is the node
// it tries to speak for or listen to.
const (
	attacker = "mqtt-2"
	victim   = "coap-7"
)

// TestAttacksRefused: one subtest per attack of issue 12. Each gets its own
// gateway and NATS server, asserts the MQTT-SN return code, the refusal
// counted under its reason, and that nothing reached NATS (everything on
// ">" up to an honest sentinel value).
func TestAttacksRefused(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*Config)
		attack func(t *testing.T, tg *testGateway, a *snClient)
		reason string
	}{
		{"REGISTER $JS stream delete", nil, attackStreamDelete, ReasonPublish},
		{"REGISTER another node's led/set", nil, func(t *testing.T, _ *testGateway, a *snClient) {
			wantRegack(t, a, "gateway/"+victim+"/led/set", packet.NotSupported)
		}, ReasonPublish},
		{"SUBSCRIBE gateway/#", nil, func(t *testing.T, tg *testGateway, a *snClient) {
			wantSuback(t, tg, a, "gateway/#")
		}, ReasonSubscribe},
		{"SUBSCRIBE _INBOX/#", nil, func(t *testing.T, tg *testGateway, a *snClient) {
			wantSuback(t, tg, a, "_INBOX/#")
		}, ReasonSubscribe},
		{"SUBSCRIBE #", nil, func(t *testing.T, tg *testGateway, a *snClient) {
			wantSuback(t, tg, a, "#")
		}, ReasonSubscribe},
		{"SUBSCRIBE another node's commands", nil, func(t *testing.T, tg *testGateway, a *snClient) {
			wantSuback(t, tg, a, "gateway/"+victim+"/+/set")
		}, ReasonSubscribe},
		{"PUBLISH node/check claiming another id", nil, func(t *testing.T, _ *testGateway, a *snClient) {
			id := a.register("node/check", 1)
			wantPuback(t, a, packet.Flags(0).WithQoS(1), id, []byte(`{"id":"`+victim+`"}`), packet.NotSupported)
			wantPuback(t, a, packet.Flags(0).WithQoS(1), id, []byte(`not json`), packet.NotSupported)
		}, ReasonCheckID},
		{"PUBLISH another node's value via REGISTER", nil, func(t *testing.T, _ *testGateway, a *snClient) {
			wantRegack(t, a, "node/"+victim+"/temperature", packet.NotSupported)
		}, ReasonPublish},
		{"PUBLISH another node's value via a predefined topic", func(c *Config) {
			c.Predefined = map[uint16]string{7: "node/" + victim + "/temperature"}
		}, func(t *testing.T, _ *testGateway, a *snClient) {
			predef := packet.Flags(0).WithTopicIDType(packet.TopicPredefined)
			wantPuback(t, a, predef.WithQoS(1), 7, []byte(`{"value":"99"}`), packet.NotSupported)
			wantPuback(t, a, predef.WithQoS(2), 7, []byte(`{"value":"99"}`), packet.NotSupported)
			a.send(&packet.Publish{Flags: predef.WithQoS(-1), TopicID: 7, Data: []byte(`{"value":"99"}`)})
			a.send(&packet.Publish{Flags: predef, TopicID: 7, MsgID: 9, Data: []byte(`{"value":"99"}`)})
		}, ReasonPublish},
		{"PUBLISH a short topic", nil, func(t *testing.T, _ *testGateway, a *snClient) {
			wantPuback(t, a, packet.Flags(0).WithQoS(1).WithTopicIDType(packet.TopicShort), 0x7a7a, []byte("x"), packet.NotSupported)
		}, ReasonPublish},
		{"PUBLISH own $state", nil, func(t *testing.T, _ *testGateway, a *snClient) {
			wantRegack(t, a, "node/"+attacker+"/$state", packet.NotSupported)
		}, ReasonPublish},
		{"will topic for another node", nil, attackWill, ReasonWill},
		{"oversized payload", nil, func(t *testing.T, _ *testGateway, a *snClient) {
			id := a.register("node/"+attacker+"/temperature", 1)
			big := []byte(`{"value":"` + strings.Repeat("x", bus.DefaultMaxValueBytes) + `"}`)
			wantPuback(t, a, packet.Flags(0).WithQoS(1), id, big, packet.NotSupported)
			a.send(&packet.Publish{Flags: packet.Flags(0), TopicID: id, Data: big}) // QoS 0: dropped
		}, ReasonValueBytes},
		{"too many resources", func(c *Config) { c.MaxResources = 2 }, func(t *testing.T, _ *testGateway, a *snClient) {
			a.register("node/"+attacker+"/r1", 1)
			a.register("node/"+attacker+"/r2", 2)
			a.register("node/"+attacker+"/resources", 3) // not a resource
			wantRegack(t, a, "node/"+attacker+"/r3", packet.NotSupported)
			a.register("node/"+attacker+"/r1", 5) // a known one again
		}, ReasonResources},
		{"value flood", func(c *Config) { c.NodeValueRate, c.NodeValueBurst = 1, 2 }, attackValueFlood, ReasonValueRate},
		{"client id that is not a node id", nil, attackClientID, ReasonClientID},
		{"new-id flood from one address", func(c *Config) { c.NewNodesPerSource = 1 }, attackNewIDs, ReasonNewIDs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := startGateway(t, tt.edit)
			sub := bustest.Subscribe(t, tg.nc, ">")
			a := tg.dial(t, "127.0.0.1:0")
			a.connect(attacker, 60)
			tt.attack(t, tg, a)
			bustest.Eventually(t, 10*time.Second, "refusal counted under "+tt.reason, func() error { return bustest.Want(tg.gw.Stats().Refused[tt.reason] > 0) })
			if tt.reason != ReasonValueRate { // the flood spent the sentinel's budget
				nothingReachedNATS(t, sub, a, attacker)
			}
		})
	}
}

// wantRegack registers topic and checks the REGACK's return code.
func wantRegack(t *testing.T, c *snClient, topic string, code packet.ReturnCode) {
	t.Helper()
	c.send(&packet.Register{MsgID: 77, TopicName: topic})
	if ack := expect[*packet.Regack](c); ack.ReturnCode != code || ack.MsgID != 77 {
		t.Fatalf("regack for %s: %#v, want %v", topic, ack, code)
	}
}

// wantPuback publishes and checks the PUBACK's return code.
func wantPuback(t *testing.T, c *snClient, f packet.Flags, topicID uint16, data []byte, code packet.ReturnCode) {
	t.Helper()
	c.send(&packet.Publish{Flags: f, TopicID: topicID, MsgID: 88, Data: data})
	if ack := expect[*packet.Puback](c); ack.ReturnCode != code || ack.MsgID != 88 {
		t.Fatalf("puback: %#v, want %v", ack, code)
	}
}

// wantSuback subscribes to filter, expects SUBACK 0x03 and no subscription
// held for the client.
func wantSuback(t *testing.T, tg *testGateway, c *snClient, filter string) {
	t.Helper()
	c.send(&packet.Subscribe{Flags: packet.Flags(0).WithQoS(1), MsgID: 66, TopicName: filter})
	if ack := expect[*packet.Suback](c); ack.ReturnCode != packet.NotSupported || ack.MsgID != 66 {
		t.Fatalf("suback for %s: %#v, want %v", filter, ack, packet.NotSupported)
	}
	for _, ci := range tg.gw.Clients() {
		if len(ci.Subscriptions) != 0 {
			t.Fatalf("%s holds subscriptions %v", ci.ID, ci.Subscriptions)
		}
	}
}

// attackStreamDelete: REGISTER $JS/API/STREAM/DELETE/NODES is refused and
// the NODES stream keeps its messages.
func attackStreamDelete(t *testing.T, tg *testGateway, a *snClient) {
	js, err := jetstream.New(tg.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		if _, err := js.Publish(ctx, bus.NodeValue(victim, "temperature"), fmt.Appendf(nil, `{"value":"%d"}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	wantRegack(t, a, "$JS/API/STREAM/DELETE/"+bus.NodesStream, packet.NotSupported)
	wantRegack(t, a, "$JS/API/STREAM/PURGE/"+bus.NodesStream, packet.NotSupported)
	wantPuback(t, a, packet.Flags(0).WithQoS(1), 1, nil, packet.InvalidTopicID) // no id was handed out
	s, err := js.Stream(ctx, bus.NodesStream)
	if err != nil {
		t.Fatalf("NODES stream gone: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Fatalf("NODES holds %d messages, want 3", info.State.Msgs)
	}
}

// attackWill: a will on another node's subject (or on $state) is refused
// at CONNECT (CONNACK 0x03) and by WILLTOPICUPD (WILLTOPICRESP 0x03).
func attackWill(t *testing.T, tg *testGateway, a *snClient) {
	for _, topic := range []string{"node/" + victim + "/$state", "node/" + attacker + "/$state", "gateway/" + victim + "/led/set"} {
		w := tg.dial(t, "127.0.0.1:0")
		w.send(&packet.Connect{Flags: packet.FlagCleanSession | packet.FlagWill, ProtocolID: 1, Duration: 1, ClientID: "w-" + attacker})
		expect[*packet.WillTopicReq](w)
		w.send(&packet.WillTopic{Topic: topic})
		if ack := expect[*packet.Connack](w); ack.ReturnCode != packet.NotSupported {
			t.Fatalf("will %s: connack %v", topic, ack.ReturnCode)
		}
		a.send(&packet.WillTopicUpd{Topic: topic})
		if r := expect[*packet.WillTopicResp](a); r.ReturnCode != packet.NotSupported {
			t.Fatalf("willtopicupd %s: %v", topic, r.ReturnCode)
		}
	}
}

// attackValueFlood: past NodeValueRate (burst 2) a QoS 1 value gets
// PUBACK 0x01 "congestion": the client may send again later.
func attackValueFlood(t *testing.T, _ *testGateway, a *snClient) {
	id := a.register("node/"+attacker+"/temperature", 1)
	refused := 0
	for i := range 20 {
		a.send(&packet.Publish{Flags: packet.Flags(0).WithQoS(1), TopicID: id, MsgID: uint16(i + 1), Data: []byte(`{"value":"1"}`)})
		ack := expect[*packet.Puback](a)
		switch ack.ReturnCode {
		case packet.Accepted:
		case packet.Congestion:
			refused++
		default:
			t.Fatalf("puback %#v", ack)
		}
	}
	if refused == 0 {
		t.Fatal("20 values at once, none refused (rate 1/s, burst 2)")
	}
}

// attackClientID: client ids that cannot be node ids get CONNACK 0x03.
func attackClientID(t *testing.T, tg *testGateway, _ *snClient) {
	c := tg.dial(t, "127.0.0.1:0")
	for _, id := range []string{"a.b", "x/y", "check", "$SYS", "a*", "resources"} {
		c.send(&packet.Connect{Flags: packet.FlagCleanSession, ProtocolID: 1, Duration: 60, ClientID: id})
		if ack := expect[*packet.Connack](c); ack.ReturnCode != packet.NotSupported {
			t.Fatalf("client id %q: connack %v", id, ack.ReturnCode)
		}
	}
}

// attackNewIDs: one address bringing new client ids faster than
// NewNodesPerSource (1/s, burst 1) gets CONNACK 0x01 "congestion"; a known
// id from that address still connects.
func attackNewIDs(t *testing.T, tg *testGateway, _ *snClient) {
	refused := 0
	for i := range 20 {
		c := tg.dial(t, "127.0.0.5:0") // a port per id: no session replaces another
		c.send(&packet.Connect{Flags: packet.FlagCleanSession, ProtocolID: 1, Duration: 60, ClientID: fmt.Sprintf("flood-%d", i)})
		switch ack := expect[*packet.Connack](c); ack.ReturnCode {
		case packet.Accepted:
		case packet.Congestion:
			refused++
		default:
			t.Fatalf("connack %v", ack.ReturnCode)
		}
	}
	if refused == 0 {
		t.Fatal("20 new ids from one address, none refused (1/s)")
	}
	if n := len(tg.gw.Clients()); n > 1+20-refused {
		t.Fatalf("%d sessions", n)
	}
	known := tg.dial(t, "127.0.0.5:0")
	known.connect("flood-0", 60) // reconnecting is no new id
}

// TestRights: which subjects node "n1" may publish on and subscribe to.
func TestRights(t *testing.T) {
	tests := []struct {
		name, subject  string
		pub, subscribe bool
		resource       string
	}{
		{"own value", "node.n1.temperature", true, false, "temperature"},
		{"own value under the client id mqtt-n1", "node.mqtt-n1.temperature", true, false, "temperature"},
		{"own commands under the client id mqtt-n1", "gateway.mqtt-n1.>", false, true, ""},
		{"value of n1's prefix", "node.mqtt.temperature", false, false, ""},
		{"own resources", "node.n1.resources", true, false, ""},
		{"check", "node.check", true, false, ""},
		{"own $state", "node.n1.$state", false, false, ""},
		{"own $other", "node.n1.$x", false, false, ""},
		{"other's value", "node.n2.temperature", false, false, ""},
		{"four levels", "node.n1.a.b", false, false, ""},
		{"stream api", "$JS.API.STREAM.DELETE.NODES", false, false, ""},
		{"inbox", "_INBOX.>", false, false, ""},
		{"own commands", "gateway.n1.*.set", false, true, ""},
		{"own discover", "gateway.n1.discover", false, true, ""},
		{"all own", "gateway.n1.>", false, true, ""},
		{"gateway check", "gateway.check", false, true, ""},
		{"other's commands", "gateway.n2.*.set", false, false, ""},
		{"any node's commands", "gateway.*.led.set", false, false, ""},
		{"everything", ">", false, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := publishRight("mqtt-n1", tt.subject)
			if (err == nil) != tt.pub || res != tt.resource {
				t.Errorf("publish: %q %v, want %v %q", res, err, tt.pub, tt.resource)
			}
			if err := subscribeRight("mqtt-n1", tt.subject); (err == nil) != tt.subscribe {
				t.Errorf("subscribe: %v, want %v", err, tt.subscribe)
			}
		})
	}
}
