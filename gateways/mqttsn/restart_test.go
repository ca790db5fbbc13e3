package mqttsn

import (
	"encoding/json"
	"maps"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/mqttsn/packet"
	"github.com/goaiot/goaiot/gateways/persist"
)

// rig is a NATS server on a data directory and a gateway on a loopback
// port, both restartable: the gateway comes back on the same port, as a
// restarted `aiot` does, so that clients need not know.
type rig struct {
	t    *testing.T
	dir  string
	srv  *bus.Server
	nc   *nats.Conn // the test's own connection
	addr netip.AddrPort
	gw   *Gateway
	stop func()
	edit func(*Config)
}

func newRig(t *testing.T, edit func(*Config)) *rig {
	t.Helper()
	r := &rig{t: t, dir: t.TempDir(), edit: edit, addr: netip.MustParseAddrPort("127.0.0.1:0")}
	r.srv = bustest.StartServer(t, bustest.WithDataDir(r.dir))
	r.nc = bustest.Connect(t, r.srv)
	r.start()
	return r
}

// start runs a gateway on r.addr with fast timers and persistence.
func (r *rig) start() {
	r.t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(r.addr))
	if err != nil {
		r.t.Fatalf("listen %s: %v", r.addr, err)
	}
	r.addr = conn.LocalAddr().(*net.UDPAddr).AddrPort()
	cfg := Config{Conn: bustest.Connect(r.t, r.srv), Logger: bustest.Logger(r.t).With("component", "mqttsn"),
		PacketConn: conn, Name: "mqttsn@test", Tick: 20 * time.Millisecond, RetryInterval: 150 * time.Millisecond,
		Retries: 2, PersistDelay: 10 * time.Millisecond}
	if r.edit != nil {
		r.edit(&cfg)
	}
	if r.gw, err = New(cfg); err != nil {
		r.t.Fatalf("new gateway: %v", err)
	}
	r.stop = bustest.RunStop(r.t, r.gw.Run)
	select {
	case <-r.gw.Ready():
	case <-time.After(restartWait):
		r.t.Fatal("gateway not ready")
	}
}

// restart stops the gateway and starts a new one on the same port; with
// wholeBus, the NATS server too, on the same data directory.
func (r *rig) restart(wholeBus bool) {
	r.t.Helper()
	r.stop()
	if wholeBus {
		r.srv.Shutdown()
		r.srv = bustest.StartServer(r.t, bustest.WithDataDir(r.dir))
		r.nc = bustest.Connect(r.t, r.srv)
	}
	r.start()
}

// dial opens a client socket on local toward the rig's gateway.
func (r *rig) dial(local string) *snClient {
	r.t.Helper()
	return (&testGateway{addr: r.addr}).dial(r.t, local)
}

// restartWait bounds each wait of the restart tests.
const restartWait = 10 * time.Second

// TestEmcuteAcrossRestart replays the boot of RIOT's emcute firmware, then
// restarts the gateway (or the whole bus on its data directory) and plays
// the rest of the capture: emcute connects only at boot and ignores a
// DISCONNECT it did not ask for, so it must go on without a new CONNECT.
// A PUBLISH with a topic id handed out before the restart is accepted
// without REGISTER, every REGISTER gets its old id back, every value is
// accepted and relayed, and the node's node/check is announced again
// before its first value.
func TestEmcuteAcrossRestart(t *testing.T) {
	tests := []struct {
		name     string
		wholeBus bool
	}{
		{"gateway restarted", false},
		{"bus and gateway restarted on the same data directory", true},
	}
	grams := readCapture(t, "testdata/emcute-boot.txt")
	const cut = 19 // CONNECT and nine REGISTER + PUBLISH pairs, the first temperature included
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, nil)
			e := &emcute{node: r.dial("127.0.18.83:0"), ids: map[string]uint16{}}
			e.play(t, bustest.Subscribe(t, r.nc, "node.>"), grams[:cut])
			before := maps.Clone(e.ids)

			r.restart(tt.wholeBus)
			values := bustest.Subscribe(t, r.nc, "node.>")
			temp := before["node/mqtt-2/temperature"]
			e.node.send(&packet.Publish{Flags: packet.Flags(0).WithQoS(1), TopicID: temp, MsgID: 7, Data: []byte(`{"value":"21.0°C"}`)})
			if ack := expect[*packet.Puback](e.node); ack.ReturnCode != packet.Accepted || ack.TopicID != temp {
				t.Fatalf("publish with a topic id from before the restart: %#v", ack)
			}
			check := bustest.Next(t, values, bus.SubjectNodeCheck, restartWait)
			if string(check.Data) != `{"id":"mqtt-2"}` || check.Header.Get(bus.HeaderTransport) != bus.ProtocolMQTTSN {
				t.Fatalf("node/check announced again: %q %v", check.Data, check.Header)
			}
			bustest.Next(t, values, "node.mqtt-2.temperature", restartWait)

			e.play(t, values, grams[cut:])
			for name, id := range before {
				if e.ids[name] != id {
					t.Errorf("%s: id %d after the restart, %d before", name, e.ids[name], id)
				}
			}
			e.node.expectNothing(50 * time.Millisecond) // no DISCONNECT, nothing unasked
			st := r.gw.Stats()
			if st.Clients != 1 || st.Rejected != 0 || st.Dropped != 0 || st.Table.Loaded != 1 {
				t.Fatalf("stats after the restart %+v", st)
			}
			if st.Table.Written != 0 || st.Table.Pending != 0 {
				t.Fatalf("table stats %+v: REGISTERs of known topics and values wrote something", st.Table)
			}
		})
	}
}

// TestSessionAcrossRestart: what a session keeps across a restart of the
// gateway, one subtest each.
func TestSessionAcrossRestart(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		run  func(t *testing.T, r *rig)
	}{
		{"subscriptions deliver without a new SUBSCRIBE", nil, subscriptionsKept},
		{"a restored client that stays silent is lost: its will", nil, willKept},
		{"a sleeping client wakes after the restart", nil, sleepKept},
		{"QoS -1 from a restored client's address", func(c *Config) {
			c.Predefined = map[uint16]string{3: "node/q/temperature"}
		}, qosMinus1Kept},
		{"a clean DISCONNECT forgets the session", nil, disconnectForgotten},
		{"a client replaced at its address is forgotten", nil, replacedForgotten},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newRig(t, tt.edit)) })
	}
}

func subscriptionsKept(t *testing.T, r *rig) {
	node := r.dial("127.0.0.1:0")
	node.connect("r1", 60)
	node.subscribe("gateway/r1/+/set", 1, 1)
	checkID := node.subscribe("gateway/check", 0, 2).TopicID
	r.restart(false)

	if err := r.nc.Publish(bus.GatewaySet("r1", "led"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	reg := expect[*packet.Register](node)
	if reg.TopicName != "gateway/r1/led/set" || reg.TopicID == checkID {
		t.Fatalf("register %#v", reg)
	}
	node.send(&packet.Regack{TopicID: reg.TopicID, MsgID: reg.MsgID})
	if pub := expect[*packet.Publish](node); pub.TopicID != reg.TopicID || pub.Flags.QoS() != 1 || string(pub.Data) != "1" {
		t.Fatalf("publish %#v", pub)
	} else {
		node.send(&packet.Puback{TopicID: pub.TopicID, MsgID: pub.MsgID})
	}
	if err := r.nc.Publish(bus.SubjectGatewayCheck, nil); err != nil {
		t.Fatal(err)
	}
	if pub := expect[*packet.Publish](node); pub.TopicID != checkID || pub.Flags.QoS() != 0 {
		t.Fatalf("gateway/check: %#v, want topic id %d from before the restart", pub, checkID)
	}
}

func willKept(t *testing.T, r *rig) {
	node := r.dial("127.0.0.1:0")
	node.send(&packet.Connect{Flags: packet.FlagCleanSession | packet.FlagWill, ProtocolID: 1, Duration: 1, ClientID: "k1"})
	expect[*packet.WillTopicReq](node)
	node.send(&packet.WillTopic{Topic: "node/k1/gone"})
	expect[*packet.WillMsgReq](node)
	node.send(&packet.WillMsg{Message: []byte("bye")})
	expect[*packet.Connack](node)
	r.restart(false)
	wills := bustest.Subscribe(t, r.nc, "node.k1.gone")
	if m := bustest.Next(t, wills, "node.k1.gone", restartWait); string(m.Data) != "bye" {
		t.Fatalf("will %q", m.Data)
	}
	bustest.Eventually(t, 10*time.Second, "the lost client's entry deleted", func() error { return bustest.Want(r.gw.Stats().Table.Deleted == 1) })
	if st := r.gw.Stats(); st.Lost != 1 || st.Clients != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func sleepKept(t *testing.T, r *rig) {
	node := r.dial("127.0.0.1:0")
	node.connect("z1", 60)
	node.subscribe("gateway/z1/+/set", 1, 1)
	node.send(&packet.Disconnect{HasDuration: true, Duration: 30})
	expect[*packet.Disconnect](node)
	r.restart(false)
	if err := r.nc.Publish(bus.GatewaySet("z1", "led"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	node.expectNothing(100 * time.Millisecond) // asleep: kept for its wake-up

	woken := r.dial("127.0.0.1:0")
	woken.send(&packet.Pingreq{ClientID: "z1"})
	reg := expect[*packet.Register](woken)
	woken.send(&packet.Regack{TopicID: reg.TopicID, MsgID: reg.MsgID})
	if pub := expect[*packet.Publish](woken); string(pub.Data) != "1" {
		t.Fatalf("buffered %q", pub.Data)
	} else {
		woken.send(&packet.Puback{TopicID: pub.TopicID, MsgID: pub.MsgID})
	}
	expect[*packet.Pingresp](woken)
}

func qosMinus1Kept(t *testing.T, r *rig) {
	node := r.dial("127.0.0.1:0")
	node.connect("q", 60)
	r.restart(false)
	values := bustest.Subscribe(t, r.nc, "node.q.temperature")
	node.send(&packet.Publish{Flags: packet.Flags(0).WithQoS(-1).WithTopicIDType(packet.TopicPredefined), TopicID: 3, Data: []byte("21.5")})
	if m := bustest.Next(t, values, "node.q.temperature", restartWait); string(m.Data) != "21.5" {
		t.Fatalf("data %q", m.Data)
	}
}

func disconnectForgotten(t *testing.T, r *rig) {
	node := r.dial("127.0.0.1:0")
	node.connect("d1", 60)
	id := node.register("node/d1/temperature", 1)
	node.send(&packet.Disconnect{})
	expect[*packet.Disconnect](node)
	r.restart(false)
	if st := r.gw.Stats(); st.Clients != 0 || st.Table.Loaded != 0 {
		t.Fatalf("stats after the restart %+v: the session came back", st)
	}
	node.send(&packet.Publish{Flags: packet.Flags(0).WithQoS(1), TopicID: id, MsgID: 2, Data: []byte("1")})
	expect[*packet.Disconnect](node) // connect again
}

func replacedForgotten(t *testing.T, r *rig) {
	node := r.dial("127.0.0.1:0")
	node.connect("old", 60)
	node.connect("new", 60) // same address, another client id
	r.restart(false)
	got := map[string]bool{}
	for _, c := range r.gw.Clients() {
		got[c.ID] = true
	}
	if len(got) != 1 || !got["new"] {
		t.Fatalf("restored %v, want only new", got)
	}
}

// TestRestoredSessionsDistrusted: entries in the bucket are input like
// any other: a session outside its client's rights, or one that does not
// decode, is not restored.
func TestRestoredSessionsDistrusted(t *testing.T) {
	r := newRig(t, nil)
	r.stop()
	js, err := jetstream.New(r.nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := bus.EnsureNodeTables(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	ok := sessionEntry{V: 1, ID: "good", Addr: "127.0.0.1:40001", KeepAlive: 60,
		Topics: []topicEntry{{ID: 1, Name: "node/good/temperature"}}}
	spy := ok
	spy.ID, spy.Addr = "spy", "127.0.0.1:40002"
	spy.Subs = []subEntry{{Filter: "gateway/#", QoS: 0}}
	forger := ok
	forger.ID, forger.Addr = "forger", "127.0.0.1:40003"
	forger.Will = &willEntry{Subject: "node.victim.$state"}
	for id, v := range map[string]any{"good": ok, "spy": spy, "forger": forger, "junk": "not a session"} {
		b, _ := json.Marshal(v)
		if _, err := kv.Put(t.Context(), persist.Key("mqttsn", "mqttsn@test", id), b); err != nil {
			t.Fatal(err)
		}
	}
	r.start()
	if st := r.gw.Stats(); st.Clients != 1 || st.Table.Loaded != 1 || st.Table.Skipped != 3 {
		t.Fatalf("stats %+v: want only good restored, 3 skipped", st)
	}
}

// TestSessionEntryRoundTrip: what a session writes, it reads back.
func TestSessionEntryRoundTrip(t *testing.T) {
	g := &Gateway{cfg: Config{Predefined: map[uint16]string{9: "gateway/check"}}}
	g.cfg.setDefaults()
	c := newClient("mqtt-2", netip.MustParseAddrPort("[fd00::2]:1883"), time.Now())
	c.keepAlive, c.check, c.nextTopicID = 360*time.Second, "mqtt-2", 4
	c.state, c.sleep = stateAwake, 30*time.Second
	c.will = &will{subject: "node.mqtt-2.gone", data: []byte{0, 1, 2}}
	c.addTopic(3, topic{name: "node/mqtt-2/temperature"})
	c.addTopic(4, topic{name: "gateway/mqtt-2/led/set"})
	c.subs["gateway/mqtt-2/+/set"] = &subscription{filter: "gateway/mqtt-2/+/set", qos: 1, seq: 1}
	c.subs["gateway/check"] = &subscription{filter: "gateway/check", idType: packet.TopicPredefined, topicID: 9, seq: 2}
	c.resources["temperature"] = true
	want := c.entry()
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := g.decodeSession("mqtt-2", b)
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	gb, _ := json.Marshal(got)
	if string(gb) != string(b) || got.Sleep != 30 {
		t.Fatalf("decoded %s, want %s", gb, b)
	}
}

func TestDecodeSessionRefuses(t *testing.T) {
	g := &Gateway{cfg: Config{MaxTopics: 2, MaxSubscriptions: 1, MaxResources: 1, MaxValueBytes: 4}}
	g.cfg.setDefaults()
	base := `"v":1,"id":"n1","addr":"10.0.0.1:1883","keepalive":60`
	tests := []struct {
		name, id, data string
	}{
		{"not json", "n1", `{`},
		{"another version", "n1", `{"v":2,"id":"n1","addr":"10.0.0.1:1883"}`},
		{"another client's", "n2", `{` + base + `}`},
		{"not a node id", "a.b", `{"v":1,"id":"a.b","addr":"10.0.0.1:1883"}`},
		{"no address", "n1", `{"v":1,"id":"n1"}`},
		{"port 0", "n1", `{"v":1,"id":"n1","addr":"10.0.0.1:0"}`},
		{"check of another node", "n1", `{` + base + `,"check":"n2"}`},
		{"will on another node", "n1", `{` + base + `,"will":{"subject":"node.n2.x"}}`},
		{"will on $state", "n1", `{` + base + `,"will":{"subject":"node.n1.$state"}}`},
		{"will too large", "n1", `{` + base + `,"will":{"subject":"node.n1.x","data":"AAAAAAAA"}}`},
		{"topic id 0", "n1", `{` + base + `,"topics":[{"id":0,"name":"node/n1/x"}]}`},
		{"topic twice", "n1", `{` + base + `,"topics":[{"id":1,"name":"node/n1/x"},{"id":2,"name":"node/n1/x"}]}`},
		{"topic with a wildcard", "n1", `{` + base + `,"topics":[{"id":1,"name":"node/+/x"}]}`},
		{"too many topics", "n1", `{` + base + `,"topics":[{"id":1,"name":"a"},{"id":2,"name":"b"},{"id":3,"name":"c"}]}`},
		{"subscription outside its rights", "n1", `{` + base + `,"subs":[{"filter":"gateway/#","qos":0}]}`},
		{"subscription to another node", "n1", `{` + base + `,"subs":[{"filter":"gateway/n2/+/set","qos":0}]}`},
		{"subscription qos 3", "n1", `{` + base + `,"subs":[{"filter":"gateway/n1/#","qos":3}]}`},
		{"short subscription mislabelled", "n1", `{` + base + `,"subs":[{"filter":"gateway/n1/#","type":2,"topic_id":1}]}`},
		{"unknown topic id type", "n1", `{` + base + `,"subs":[{"filter":"gateway/n1/#","type":3}]}`},
		{"too many subscriptions", "n1", `{` + base + `,"subs":[{"filter":"gateway/n1/#"},{"filter":"gateway/check"}]}`},
		{"unsafe resource", "n1", `{` + base + `,"resources":["$state"]}`},
		{"too many resources", "n1", `{` + base + `,"resources":["a","b"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if e, err := g.decodeSession(tt.id, []byte(tt.data)); err == nil {
				t.Fatalf("decoded %+v", e)
			}
		})
	}
}

// FuzzDecodeSession: whatever the bucket holds, a session either is
// refused or can be restored within the client's rights and the caps.
func FuzzDecodeSession(f *testing.F) {
	f.Add("mqtt-2", []byte(`{"v":1,"id":"mqtt-2","addr":"[fd00::2]:1883","keepalive":360,"topics":[{"id":1,"name":"node/check"},`+
		`{"id":2,"name":"node/mqtt-2/temperature"}],"next_topic":2,"check":"mqtt-2","resources":["temperature"]}`))
	f.Add("z1", []byte(`{"v":1,"id":"z1","addr":"127.0.0.1:5","keepalive":60,"sleep":30,"will":{"subject":"node.z1.gone","data":"Ynll"},`+
		`"subs":[{"filter":"gateway/z1/+/set","qos":1,"seq":1},{"filter":"gateway/check","type":1,"topic_id":9,"seq":2}]}`))
	f.Add("n1", []byte(`{"v":1,"id":"n1","addr":"10.0.0.1:1","subs":[{"filter":"ab","type":2,"topic_id":24930}]}`))
	f.Fuzz(func(t *testing.T, id string, data []byte) {
		g := &Gateway{cfg: Config{Predefined: map[uint16]string{9: "gateway/check"}},
			byAddr: map[netip.AddrPort]*client{}, byID: map[string]*client{}, subs: map[*nats.Subscription]*subscription{}}
		g.cfg.setDefaults()
		e, err := g.decodeSession(id, data)
		if err != nil {
			return
		}
		if e.ID != id || len(e.Topics) > g.cfg.MaxTopics || len(e.Subs) > g.cfg.MaxSubscriptions || len(e.Resources) > g.cfg.MaxResources {
			t.Fatalf("session %+v over its bounds", e)
		}
		for _, s := range e.Subs {
			subject, err := bus.TopicToSubject(s.Filter)
			if err != nil || subscribeRight(id, subject) != nil {
				t.Fatalf("subscription %q outside the rights of %q", s.Filter, id)
			}
		}
		if e.Will != nil {
			if _, err := publishRight(id, e.Will.Subject); err != nil {
				t.Fatalf("will on %q", e.Will.Subject)
			}
		}
		if _, err := sessionAddr(e.Addr); err != nil {
			t.Fatal(err)
		}
	})
}
