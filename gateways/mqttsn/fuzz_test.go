package mqttsn

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/mqttsn/packet"
)

// FuzzGateway feeds sequences of datagrams from two addresses straight into
// the gateway's handler (no socket reads, so it runs fast) and checks that
// nothing panics and the gateway's bounds hold. The input is split into
// datagrams by a leading length byte each; the low bit of that byte picks
// the sender. Seeds are in testdata/fuzz/FuzzGateway.
func FuzzGateway(f *testing.F) {
	seq := func(dgrams ...packet.Packet) []byte {
		var out []byte
		for i, p := range dgrams {
			b, _ := packet.Marshal(p)
			out = append(out, byte(len(b)<<1|i&1))
			out = append(out, b...)
		}
		return out
	}
	connect := &packet.Connect{Flags: packet.FlagCleanSession | packet.FlagWill, ProtocolID: 1, Duration: 10, ClientID: "f"}
	f.Add(seq(connect, connect, &packet.WillTopic{Topic: "a/b"}, &packet.WillMsg{Message: []byte("x")},
		&packet.Register{MsgID: 1, TopicName: "a/b"}, &packet.Publish{Flags: 0x40, TopicID: 1, MsgID: 2},
		&packet.Subscribe{Flags: 0x20, MsgID: 3, TopicName: "a/#"}, &packet.Disconnect{HasDuration: true, Duration: 1},
		&packet.Pingreq{ClientID: "f"}, &packet.MsgIDOnly{Kind: packet.TypePubrel, MsgID: 2}))
	// The same, on topics node "f" may use.
	f.Add(seq(connect, connect, &packet.WillTopic{Topic: "node/f/w"}, &packet.WillMsg{Message: []byte("x")},
		&packet.Register{MsgID: 1, TopicName: "node/f/b"}, &packet.Publish{Flags: 0x40, TopicID: 1, MsgID: 2},
		&packet.Subscribe{Flags: 0x20, MsgID: 3, TopicName: "gateway/f/#"}, &packet.Publish{Flags: 0x21, TopicID: 1, MsgID: 4},
		&packet.Register{MsgID: 5, TopicName: "node/f/c"}, &packet.Register{MsgID: 6, TopicName: "node/f/d"},
		&packet.Pingreq{ClientID: "f"}, &packet.MsgIDOnly{Kind: packet.TypePubrel, MsgID: 2}))

	srv := bustest.StartServer(f)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { conn.Close() })
	nc := bustest.Connect(f, srv)
	addrs := [2]netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9"), netip.MustParseAddrPort("127.0.0.1:10")}
	f.Fuzz(func(t *testing.T, in []byte) {
		g, err := New(Config{Conn: nc, Logger: bustest.Quiet(), PacketConn: conn, MaxClients: 1, MaxTopics: 2,
			MaxSubscriptions: 2, MaxQueue: 2, MaxResources: 2, Predefined: map[uint16]string{1: "node/f/q"}})
		if err != nil {
			t.Fatal(err)
		}
		g.conn = conn
		defer g.closeAll()
		for len(in) > 0 {
			n := int(in[0] >> 1)
			from := addrs[in[0]&1]
			in = in[1:]
			n = min(n, len(in))
			g.handleDatagram(from, in[:n])
			in = in[n:]
		}
		g.sweep(time.Now().Add(time.Hour))
		g.mu.Lock()
		defer g.mu.Unlock()
		if len(g.byID) > 1 {
			t.Fatalf("%d clients, cap 1", len(g.byID))
		}
		for _, c := range g.byID {
			if len(c.ids) > 2 || len(c.subs) > 2 || len(c.queue) > 2 || len(c.resources) > 2 {
				t.Fatalf("bounds broken: %d topics, %d subs, %d queued, %d resources", len(c.ids), len(c.subs), len(c.queue), len(c.resources))
			}
		}
	})
}
