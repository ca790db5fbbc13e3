package mqttsn

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/mqttsn/packet"
)

func TestPublishQoS(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.Predefined = map[uint16]string{7: "node/p1/temperature"} })
	sub := bustest.Subscribe(t, tg.nc, ">")
	node := tg.dial(t, "127.0.0.1:0")
	node.connect("p1", 60)
	regID := node.register("node/p1/humidity", 1)

	tests := []struct {
		name    string
		flags   packet.Flags
		topicID uint16
		subject string
		ack     packet.Type // expected answer, 0 for none
	}{
		{"qos0 registered", packet.Flags(0), regID, "node.p1.humidity", 0},
		{"qos1 registered", packet.Flags(0).WithQoS(1), regID, "node.p1.humidity", packet.TypePuback},
		{"qos2 registered", packet.Flags(0).WithQoS(2), regID, "node.p1.humidity", packet.TypePubrec},
		{"qos1 predefined", packet.Flags(0).WithQoS(1).WithTopicIDType(packet.TopicPredefined), 7, "node.p1.temperature", packet.TypePuback},
		{"qos-1 predefined", packet.Flags(0).WithQoS(-1).WithTopicIDType(packet.TopicPredefined), 7, "node.p1.temperature", 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgID := uint16(100 + i)
			data := "v-" + tt.name
			node.send(&packet.Publish{Flags: tt.flags, TopicID: tt.topicID, MsgID: msgID, Data: []byte(data)})
			m := bustest.Next(t, sub, tt.subject, 2*time.Second)
			if string(m.Data) != data || m.Header.Get(bus.HeaderTransport) != bus.ProtocolMQTTSN || m.Header.Get(bus.HeaderAddress) != node.addr() {
				t.Fatalf("got %q %v", m.Data, m.Header)
			}
			switch tt.ack {
			case packet.TypePuback:
				if a := expect[*packet.Puback](node); a.MsgID != msgID || a.ReturnCode != packet.Accepted {
					t.Fatalf("puback %#v", a)
				}
			case packet.TypePubrec:
				if a := expect[*packet.MsgIDOnly](node); a.Kind != packet.TypePubrec || a.MsgID != msgID {
					t.Fatalf("pubrec %#v", a)
				}
				// A re-sent PUBLISH before PUBREL is not relayed again.
				node.send(&packet.Publish{Flags: tt.flags | packet.FlagDUP, TopicID: tt.topicID, MsgID: msgID, Data: []byte(data)})
				if a := expect[*packet.MsgIDOnly](node); a.Kind != packet.TypePubrec {
					t.Fatalf("second pubrec %#v", a)
				}
				node.send(&packet.MsgIDOnly{Kind: packet.TypePubrel, MsgID: msgID})
				if a := expect[*packet.MsgIDOnly](node); a.Kind != packet.TypePubcomp || a.MsgID != msgID {
					t.Fatalf("pubcomp %#v", a)
				}
				for deadline := time.After(100 * time.Millisecond); ; {
					select {
					case dup := <-sub:
						if dup.Subject == tt.subject { // not the gateway's own traffic (NODE_TABLES)
							t.Fatalf("QoS 2 message relayed twice: %s %q", dup.Subject, dup.Data)
						}
						continue
					case <-deadline:
					}
					break
				}
			default:
				node.expectNothing(50 * time.Millisecond)
			}
		})
	}
}

// TestQoSMinus1WithoutConnection: a QoS −1 PUBLISH speaks for the node id
// of the session at its address; without a session it has no node id and
// is dropped.
func TestQoSMinus1WithoutConnection(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.Predefined = map[uint16]string{3: "node/q/temperature"} })
	sub := bustest.Subscribe(t, tg.nc, ">")
	node := tg.dial(t, "127.0.0.1:0")
	qosMinus1 := packet.Flags(0).WithQoS(-1).WithTopicIDType(packet.TopicPredefined)
	node.send(&packet.Publish{Flags: qosMinus1, TopicID: 3, Data: []byte("anonymous")})
	node.expectNothing(100 * time.Millisecond)
	bustest.Eventually(t, 10*time.Second, "anonymous publish refused", func() error { return bustest.Want(tg.gw.Stats().Refused[ReasonAnonymous] == 1) })

	node.connect("q", 60)
	node.send(&packet.Publish{Flags: qosMinus1, TopicID: 3, Data: []byte("21.5")})
	if m := bustest.Next(t, sub, "node.q.temperature", 2*time.Second); string(m.Data) != "21.5" {
		t.Fatalf("data %q", m.Data)
	}
	// Unknown predefined id and a registered id: dropped.
	node.send(&packet.Publish{Flags: qosMinus1, TopicID: 4, Data: []byte("x")})
	node.send(&packet.Publish{Flags: packet.Flags(0).WithQoS(-1), TopicID: 1, Data: []byte("x")})
	node.expectNothing(100 * time.Millisecond)
	bustest.Eventually(t, 10*time.Second, "drops counted", func() error { return bustest.Want(tg.gw.Stats().Dropped >= 3) })
	nothingReachedNATS(t, sub, node, "q")
}

func TestRegister(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.MaxTopics = 3 })
	node := tg.dial(t, "127.0.0.1:0")
	node.connect("r1", 60)
	a := node.register("node/r1/a", 1)
	if again := node.register("node/r1/a", 2); again != a {
		t.Fatalf("same topic registered as %d then %d", a, again)
	}
	if b := node.register("node/r1/b", 3); b == a {
		t.Fatalf("two topics share id %d", a)
	}
	tests := []struct {
		name  string
		topic string
		code  packet.ReturnCode
	}{
		{"dot in a level", "node/r1.x/temp", packet.InvalidTopicID},
		{"empty level", "node//temp", packet.InvalidTopicID},
		{"space", "node/r1/te mp", packet.InvalidTopicID},
		{"wildcard +", "node/+/temp", packet.InvalidTopicID},
		{"wildcard #", "node/#", packet.InvalidTopicID},
		{"star", "node/*/temp", packet.InvalidTopicID},
		{"third topic fits", "node/r1/c", packet.Accepted},
		{"fourth topic over the cap", "node/r1/d", packet.Congestion},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node.send(&packet.Register{MsgID: uint16(10 + i), TopicName: tt.topic})
			ack := expect[*packet.Regack](node)
			if ack.ReturnCode != tt.code || ack.MsgID != uint16(10+i) {
				t.Fatalf("regack %#v, want code %v", ack, tt.code)
			}
		})
	}
}

func TestUnknownTopicID(t *testing.T) {
	tg := startGateway(t, nil)
	node := tg.dial(t, "127.0.0.1:0")
	node.connect("u1", 60)
	tests := []struct {
		name  string
		flags packet.Flags
		id    uint16
	}{
		{"unregistered qos1", packet.Flags(0).WithQoS(1), 999},
		{"unregistered qos0", packet.Flags(0), 999},
		{"unknown predefined", packet.Flags(0).WithQoS(1).WithTopicIDType(packet.TopicPredefined), 5},
		{"unsafe short name", packet.Flags(0).WithQoS(1).WithTopicIDType(packet.TopicShort), 0x2e61}, // ".a"
		{"reserved id type", packet.Flags(0).WithQoS(1).WithTopicIDType(packet.TopicReserved), 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node.send(&packet.Publish{Flags: tt.flags, TopicID: tt.id, MsgID: uint16(i + 1), Data: []byte("x")})
			ack := expect[*packet.Puback](node)
			if ack.ReturnCode != packet.InvalidTopicID || ack.TopicID != tt.id || ack.MsgID != uint16(i+1) {
				t.Fatalf("puback %#v", ack)
			}
		})
	}
}

func TestNotConnectedGetsDisconnect(t *testing.T) {
	tg := startGateway(t, nil)
	node := tg.dial(t, "127.0.0.1:0")
	node.send(&packet.Register{MsgID: 1, TopicName: "node/x/y"})
	expect[*packet.Disconnect](node)
	node.send(&packet.Pingreq{})
	expect[*packet.Disconnect](node)
}

func TestSearchGW(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.GatewayID = 42 })
	node := tg.dial(t, "127.0.0.1:0")
	node.send(&packet.SearchGW{Radius: 1})
	if info := expect[*packet.GWInfo](node); info.GatewayID != 42 {
		t.Fatalf("gwinfo %#v", info)
	}
}

func TestAdvertise(t *testing.T) {
	listener := (&testGateway{}).dial(t, "127.0.0.1:0")
	startGateway(t, func(c *Config) {
		c.GatewayID, c.AdvertiseAddr, c.AdvertiseInterval = 9, listener.addr(), 50*time.Millisecond
	})
	for range 2 {
		if adv := expect[*packet.Advertise](listener); adv.GatewayID != 9 {
			t.Fatalf("advertise %#v", adv)
		}
	}
}

func TestPingAndDisconnect(t *testing.T) {
	tg := startGateway(t, nil)
	node := tg.dial(t, "127.0.0.1:0")
	node.connect("pd", 60)
	node.send(&packet.Pingreq{})
	expect[*packet.Pingresp](node)
	node.send(&packet.Disconnect{})
	expect[*packet.Disconnect](node)
	bustest.Eventually(t, 10*time.Second, "session gone", func() error { return bustest.Want(tg.gw.Stats().Clients == 0) })
	node.send(&packet.Pingreq{})
	expect[*packet.Disconnect](node)
}

// TestSubscribeDelivery: wildcard and plain subscriptions, gateway REGISTER
// before the first message of a topic, QoS 1 and 2 towards the client,
// overlapping subscriptions delivering once, UNSUBSCRIBE.
func TestSubscribeDelivery(t *testing.T) {
	tg := startGateway(t, nil)
	node := tg.dial(t, "127.0.0.1:0")
	node.connect("d1", 60)
	node.subscribe("gateway/d1/+/set", 1, 1)
	if ack := node.subscribe("gateway/check", 0, 2); ack.TopicID == 0 {
		t.Fatal("plain topic subscribed without a topic id")
	}

	// A NATS request reaches the node; the gateway itself never replies.
	inbox := nats.NewInbox()
	replies := bustest.Subscribe(t, tg.nc, inbox)
	if err := tg.nc.PublishRequest(bus.GatewaySet("d1", "led"), inbox, []byte("1")); err != nil {
		t.Fatal(err)
	}
	reg := expect[*packet.Register](node)
	if reg.TopicName != "gateway/d1/led/set" || reg.TopicID == 0 {
		t.Fatalf("register %#v", reg)
	}
	node.send(&packet.Regack{TopicID: reg.TopicID, MsgID: reg.MsgID})
	pub := expect[*packet.Publish](node)
	if pub.TopicID != reg.TopicID || pub.Flags.QoS() != 1 || string(pub.Data) != "1" {
		t.Fatalf("publish %#v", pub)
	}
	node.send(&packet.Puback{TopicID: pub.TopicID, MsgID: pub.MsgID})

	// Second message on the same topic: no REGISTER.
	if err := tg.nc.Publish(bus.GatewaySet("d1", "led"), []byte("0")); err != nil {
		t.Fatal(err)
	}
	if pub := expect[*packet.Publish](node); pub.TopicID != reg.TopicID || string(pub.Data) != "0" {
		t.Fatalf("second publish %#v", pub)
	} else {
		node.send(&packet.Puback{TopicID: pub.TopicID, MsgID: pub.MsgID})
	}

	// Overlap: a second subscription matching the same subject, QoS 2.
	node.subscribe("gateway/d1/led/set", 2, 3)
	if err := tg.nc.Publish(bus.GatewaySet("d1", "led"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	pub = expect[*packet.Publish](node)
	if pub.Flags.QoS() != 2 {
		t.Fatalf("overlapping subscriptions: qos %d, want the highest (2)", pub.Flags.QoS())
	}
	node.send(&packet.MsgIDOnly{Kind: packet.TypePubrec, MsgID: pub.MsgID})
	if rel := expect[*packet.MsgIDOnly](node); rel.Kind != packet.TypePubrel || rel.MsgID != pub.MsgID {
		t.Fatalf("pubrel %#v", rel)
	}
	node.send(&packet.MsgIDOnly{Kind: packet.TypePubcomp, MsgID: pub.MsgID})
	node.expectNothing(150 * time.Millisecond) // once only

	// QoS 0 subscription with a known topic id.
	if err := tg.nc.Publish(bus.SubjectGatewayCheck, nil); err != nil {
		t.Fatal(err)
	}
	if pub := expect[*packet.Publish](node); pub.Flags.QoS() != 0 || len(pub.Data) != 0 {
		t.Fatalf("gateway/check %#v", pub)
	}

	node.send(&packet.Unsubscribe{MsgID: 4, TopicName: "gateway/check"})
	if ack := expect[*packet.MsgIDOnly](node); ack.Kind != packet.TypeUnsuback || ack.MsgID != 4 {
		t.Fatalf("unsuback %#v", ack)
	}
	if err := tg.nc.Publish(bus.SubjectGatewayCheck, nil); err != nil {
		t.Fatal(err)
	}
	node.expectNothing(150 * time.Millisecond)
	select {
	case r := <-replies:
		t.Fatalf("the gateway replied to a command: %q", r.Data)
	default:
	}
}

func TestSubscribeRefused(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.MaxSubscriptions = 1 })
	node := tg.dial(t, "127.0.0.1:0")
	node.connect("s1", 60)
	tests := []struct {
		name string
		sub  *packet.Subscribe
		code packet.ReturnCode
	}{
		{"unsafe filter", &packet.Subscribe{MsgID: 1, TopicName: "gateway/a.b/+"}, packet.InvalidTopicID},
		{"unknown predefined", &packet.Subscribe{Flags: packet.Flags(0).WithTopicIDType(packet.TopicPredefined), MsgID: 2, TopicID: 9}, packet.InvalidTopicID},
		{"first fits", &packet.Subscribe{MsgID: 3, TopicName: "gateway/s1/a/#"}, packet.Accepted},
		{"second over the cap", &packet.Subscribe{MsgID: 4, TopicName: "gateway/s1/b/#"}, packet.Congestion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node.send(tt.sub)
			if ack := expect[*packet.Suback](node); ack.ReturnCode != tt.code || ack.MsgID != tt.sub.MsgID {
				t.Fatalf("suback %#v, want %v", ack, tt.code)
			}
		})
	}
}

// TestRetriesThenLost: a client that never acknowledges gets the message
// again marked DUP, then counts as lost and its will is published.
func TestRetriesThenLost(t *testing.T) {
	tg := startGateway(t, nil)
	wills := bustest.Subscribe(t, tg.nc, "node.w1.status")
	node := tg.dial(t, "127.0.0.1:0")
	node.send(&packet.Connect{Flags: packet.FlagCleanSession | packet.FlagWill, ProtocolID: 1, Duration: 60, ClientID: "w1"})
	expect[*packet.WillTopicReq](node)
	node.send(&packet.WillTopic{Flags: packet.Flags(0).WithQoS(1), Topic: "node/w1/status"})
	expect[*packet.WillMsgReq](node)
	node.send(&packet.WillMsg{Message: []byte(`{"state":"offline"}`)})
	if ack := expect[*packet.Connack](node); ack.ReturnCode != packet.Accepted {
		t.Fatalf("connack %v", ack.ReturnCode)
	}
	node.subscribe("gateway/w1/discover", 1, 1)
	if err := tg.nc.Publish(bus.GatewayDiscover("w1"), []byte("values")); err != nil {
		t.Fatal(err)
	}
	first := expect[*packet.Publish](node)
	if first.Flags.DUP() {
		t.Fatal("first send marked DUP")
	}
	for range 2 {
		again := expect[*packet.Publish](node)
		if !again.Flags.DUP() || again.MsgID != first.MsgID {
			t.Fatalf("retry %#v", again)
		}
	}
	m := bustest.Next(t, wills, "node.w1.status", 3*time.Second)
	if string(m.Data) != `{"state":"offline"}` || m.Header.Get(bus.HeaderAddress) != node.addr() {
		t.Fatalf("will %q %v", m.Data, m.Header)
	}
	bustest.Eventually(t, 10*time.Second, "session gone", func() error { return bustest.Want(tg.gw.Stats().Clients == 0) })
}

func TestKeepAliveTimeoutPublishesWill(t *testing.T) {
	tg := startGateway(t, nil)
	wills := bustest.Subscribe(t, tg.nc, "node.k1.gone")
	node := tg.dial(t, "127.0.0.1:0")
	node.send(&packet.Connect{Flags: packet.FlagCleanSession | packet.FlagWill, ProtocolID: 1, Duration: 1, ClientID: "k1"})
	expect[*packet.WillTopicReq](node)
	node.send(&packet.WillTopic{Topic: "node/k1/gone"})
	expect[*packet.WillMsgReq](node)
	node.send(&packet.WillMsg{Message: []byte("bye")})
	expect[*packet.Connack](node)
	began := time.Now()
	if m := bustest.Next(t, wills, "node.k1.gone", 4*time.Second); string(m.Data) != "bye" {
		t.Fatalf("will %q", m.Data)
	}
	if d := time.Since(began); d < time.Second {
		t.Fatalf("will after %s, before the 1 s keep-alive ran out", d)
	}
}

func TestCleanDisconnectDropsWill(t *testing.T) {
	tg := startGateway(t, nil)
	wills := bustest.Subscribe(t, tg.nc, "node.k2.gone")
	node := tg.dial(t, "127.0.0.1:0")
	node.send(&packet.Connect{Flags: packet.FlagCleanSession | packet.FlagWill, ProtocolID: 1, Duration: 1, ClientID: "k2"})
	expect[*packet.WillTopicReq](node)
	node.send(&packet.WillTopic{Topic: "node/k2/gone"})
	expect[*packet.WillMsgReq](node)
	node.send(&packet.WillMsg{Message: []byte("bye")})
	expect[*packet.Connack](node)
	node.send(&packet.Disconnect{})
	expect[*packet.Disconnect](node)
	select {
	case m := <-wills:
		t.Fatalf("will published after a clean DISCONNECT: %q", m.Data)
	case <-time.After(1700 * time.Millisecond):
	}
}

// TestSleepingClient: messages for a sleeping client wait until it wakes
// with PINGREQ (from another port, as after a reboot of its radio), then
// come before PINGRESP.
func TestSleepingClient(t *testing.T) {
	tg := startGateway(t, nil)
	node := tg.dial(t, "127.0.0.1:0")
	node.connect("z1", 60)
	node.subscribe("gateway/z1/+/set", 1, 1)
	node.send(&packet.Disconnect{HasDuration: true, Duration: 30})
	expect[*packet.Disconnect](node)
	for _, v := range []string{"1", "0"} {
		if err := tg.nc.Publish(bus.GatewaySet("z1", "led"), []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	node.expectNothing(200 * time.Millisecond)

	woken := tg.dial(t, "127.0.0.1:0")
	woken.send(&packet.Pingreq{ClientID: "z1"})
	reg := expect[*packet.Register](woken)
	woken.send(&packet.Regack{TopicID: reg.TopicID, MsgID: reg.MsgID})
	for _, want := range []string{"1", "0"} {
		pub := expect[*packet.Publish](woken)
		if string(pub.Data) != want {
			t.Fatalf("buffered %q, want %q", pub.Data, want)
		}
		woken.send(&packet.Puback{TopicID: pub.TopicID, MsgID: pub.MsgID})
	}
	expect[*packet.Pingresp](woken)
	// Asleep again: the next message waits for the next wake-up.
	if err := tg.nc.Publish(bus.GatewaySet("z1", "led"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	woken.expectNothing(200 * time.Millisecond)
	woken.send(&packet.Pingreq{ClientID: "z1"})
	if pub := expect[*packet.Publish](woken); string(pub.Data) != "1" {
		t.Fatalf("second wake: %q", pub.Data)
	} else {
		woken.send(&packet.Puback{TopicID: pub.TopicID, MsgID: pub.MsgID})
	}
	expect[*packet.Pingresp](woken)
}

func TestConnectRefused(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.MaxClients = 1 })
	first := tg.dial(t, "127.0.0.1:0")
	first.connect("c1", 60)
	tests := []struct {
		name string
		conn *packet.Connect
		code packet.ReturnCode
	}{
		{"protocol id", &packet.Connect{ProtocolID: 2, ClientID: "c2"}, packet.NotSupported},
		{"client id too long", &packet.Connect{ProtocolID: 1, ClientID: strings.Repeat("x", 65)}, packet.NotSupported},
		{"control character", &packet.Connect{ProtocolID: 1, ClientID: "a\x00b"}, packet.NotSupported},
		{"over the cap", &packet.Connect{ProtocolID: 1, ClientID: "c2"}, packet.Congestion},
	}
	other := tg.dial(t, "127.0.0.1:0")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			other.send(tt.conn)
			if ack := expect[*packet.Connack](other); ack.ReturnCode != tt.code {
				t.Fatalf("connack %v, want %v", ack.ReturnCode, tt.code)
			}
		})
	}
}

func TestEvictIdleAtCap(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.MaxClients, c.EvictAfter = 1, 100*time.Millisecond })
	idle := tg.dial(t, "127.0.0.1:0")
	idle.connect("idle", 0)
	time.Sleep(150 * time.Millisecond) // let the first client become idle
	fresh := tg.dial(t, "127.0.0.1:0")
	fresh.connect("fresh", 60)
	idle.send(&packet.Pingreq{})
	expect[*packet.Disconnect](idle)
}

// TestBadInputDoesNotHurtOthers sends malformed datagrams and a flood from
// one client while another client keeps publishing.
func TestBadInputDoesNotHurtOthers(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.Rate, c.Burst = 50, 50 })
	sub := bustest.Subscribe(t, tg.nc, "node.good.v")
	good := tg.dial(t, "127.0.0.1:0")
	good.connect("good", 60)
	id := good.register("node/good/v", 1)

	bad := tg.dial(t, "127.0.0.2:0")
	bad.connect("bad", 60)
	garbage := [][]byte{
		{}, {0x00}, {0x01, 0x00}, {0x05, 0x0c, 0x00}, {0xff, 0x0c},
		{0x02, 0xfe}, {0x03, 0x0a, 0x00}, {0x07, 0x12, 0x03, 0x00, 0x01, 0x00, 0x01},
		{0x01, 0x00, 0x04, 0x0c}, {0x04, 0x18, 0x00},
	}
	for _, g := range garbage {
		bad.sendRaw(g)
	}
	for i := range 500 { // flood: far beyond 50/s
		bad.send(&packet.Publish{Flags: packet.Flags(0).WithQoS(1), TopicID: 77, MsgID: uint16(i + 1), Data: []byte("x")})
	}
	for i := range 20 {
		good.send(&packet.Publish{Flags: packet.Flags(0).WithQoS(1), TopicID: id, MsgID: uint16(i + 1), Data: []byte("ok")})
		if a := expect[*packet.Puback](good); a.ReturnCode != packet.Accepted {
			t.Fatalf("good client refused: %v", a.ReturnCode)
		}
		bustest.Next(t, sub, "node.good.v", 2*time.Second)
	}
	bustest.Eventually(t, 10*time.Second, "flood dropped", func() error { return bustest.Want(tg.gw.Stats().Dropped > 400) })
}

func TestParseTopics(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[uint16]string
		wantErr string
	}{
		{"ok", "# comment\n1 gateway/check\n\n0x10  node/check\n", map[uint16]string{1: "gateway/check", 16: "node/check"}, ""},
		{"wildcard allowed", "2 gateway/+/led/set", map[uint16]string{2: "gateway/+/led/set"}, ""},
		{"three fields", "1 a b", nil, "line 1"},
		{"zero id", "0 a", nil, "1..65534"},
		{"duplicate", "1 a\n1 b", nil, "twice"},
		{"unsafe", "1 a.b/c", nil, "unsafe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTopics(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for id, name := range tt.want {
				if got[id] != name {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	log := bustest.Logger(t)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no conn", Config{Logger: log, Listen: ":0"}},
		{"no logger", Config{Conn: nc, Listen: ":0"}},
		{"no listen", Config{Conn: nc, Logger: log}},
		{"bad listen", Config{Conn: nc, Logger: log, Listen: "nohost:port:x"}},
		{"bad predefined", Config{Conn: nc, Logger: log, Listen: ":0", Predefined: map[uint16]string{1: "a b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

// TestMicroService: the gateway is listed as a NATS micro service whose
// "clients" endpoint lists the sessions.
func TestMicroService(t *testing.T) {
	tg := startGateway(t, nil)
	node := tg.dial(t, "127.0.0.1:0")
	node.connect("svc-1", 60)
	node.subscribe("gateway/svc-1/+/set", 1, 1)
	reply, err := tg.nc.Request("aiot.aiot-mqttsn.clients", nil, 2*time.Second)
	if err != nil {
		t.Fatalf("clients endpoint: %v", err)
	}
	var clients []ClientInfo
	if err := json.Unmarshal(reply.Data, &clients); err != nil {
		t.Fatal(err)
	}
	if len(clients) != 1 || clients[0].ID != "svc-1" || clients[0].Address != node.addr() ||
		clients[0].State != "active" || len(clients[0].Subscriptions) != 1 {
		t.Fatalf("clients %+v", clients)
	}
	ping, err := tg.nc.Request("$SRV.PING.aiot-mqttsn", nil, 2*time.Second)
	if err != nil || !strings.Contains(string(ping.Data), "aiot-mqttsn") {
		t.Fatalf("service ping: %v %s", err, ping.Data)
	}
	// Refusals show in `nats micro stats`, by reason.
	node.send(&packet.Subscribe{MsgID: 2, TopicName: "#"})
	if ack := expect[*packet.Suback](node); ack.ReturnCode != packet.NotSupported {
		t.Fatalf("suback %#v", ack)
	}
	stats, err := tg.nc.Request("$SRV.STATS.aiot-mqttsn", nil, 2*time.Second)
	if err != nil || !strings.Contains(string(stats.Data), `"Refused":{"subscribe_topic":1}`) {
		t.Fatalf("service stats: %v %s", err, stats.Data)
	}
}

func TestTooBigForMQTTSNIsDropped(t *testing.T) {
	tg := startGateway(t, nil)
	node := tg.dial(t, "127.0.0.1:0")
	node.connect("big", 60)
	node.subscribe("gateway/big/#", 0, 1)
	if err := tg.nc.Publish("gateway.big.x", make([]byte, 70000)); err != nil {
		t.Fatal(err)
	}
	if err := tg.nc.Publish("gateway.big.x", []byte("small")); err != nil {
		t.Fatal(err)
	}
	reg := expect[*packet.Register](node)
	node.send(&packet.Regack{TopicID: reg.TopicID, MsgID: reg.MsgID})
	if pub := expect[*packet.Publish](node); string(pub.Data) != "small" {
		t.Fatalf("got %d bytes", len(pub.Data))
	}
}

func TestReadyAndAddr(t *testing.T) {
	srv := bustest.StartServer(t)
	gw, err := New(Config{Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if gw.Addr() != nil {
		t.Fatal("an address before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-gw.Ready():
	case <-time.After(3 * time.Second):
		t.Fatal("not ready")
	}
	tg := &testGateway{addr: gw.Addr().(*net.UDPAddr).AddrPort()}
	node := tg.dial(t, "127.0.0.1:0")
	node.send(&packet.SearchGW{Radius: 1})
	expect[*packet.GWInfo](node)
}

// TestDualStackListen: with Listen ":port" the socket is dual-stack and
// IPv4 clients arrive as v4-mapped addresses; answers must reach them and
// the address header must be plain IPv4.
func TestDualStackListen(t *testing.T) {
	srv := bustest.StartServer(t)
	gw, err := New(Config{Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t), Listen: ":0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-gw.Ready()
	port := gw.Addr().(*net.UDPAddr).Port
	tg := &testGateway{addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))}
	values := bustest.Subscribe(t, bustest.Connect(t, srv), "node.ds.v")
	node := tg.dial(t, "127.0.0.1:0")
	node.connect("ds", 60)
	id := node.register("node/ds/v", 1)
	node.send(&packet.Publish{Flags: packet.Flags(0).WithQoS(1), TopicID: id, MsgID: 2, Data: []byte("1")})
	expect[*packet.Puback](node)
	if m := bustest.Next(t, values, "node.ds.v", 2*time.Second); m.Header.Get(bus.HeaderAddress) != node.addr() {
		t.Fatalf("address header %q, want %q", m.Header.Get(bus.HeaderAddress), node.addr())
	}
}
