package mqttsn

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/mqttsn/packet"
)

// testGateway is a running gateway on a loopback port with its NATS server.
type testGateway struct {
	gw   *Gateway
	addr netip.AddrPort
	nc   *nats.Conn // a separate connection, for test subscribers
}

// startGateway runs a gateway with fast timers; edit adjusts the config.
func startGateway(t *testing.T, edit func(*Config)) *testGateway {
	t.Helper()
	return startGatewayOn(t, net.IPv4(127, 0, 0, 1), edit)
}

// startGatewayOn is startGateway listening on ip (e.g. ::1).
func startGatewayOn(t *testing.T, ip net.IP, edit func(*Config)) *testGateway {
	t.Helper()
	srv := bustest.StartServer(t)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	cfg := Config{
		Conn:          bustest.Connect(t, srv),
		Logger:        bustest.Logger(t).With("component", "mqttsn"),
		PacketConn:    conn,
		Tick:          20 * time.Millisecond,
		RetryInterval: 150 * time.Millisecond,
		Retries:       2,
	}
	if edit != nil {
		edit(&cfg)
	}
	gw, err := New(cfg)
	if err != nil {
		t.Fatalf("new gateway: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway run: %v", err)
		}
	})
	return &testGateway{gw: gw, addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(), nc: bustest.Connect(t, srv)}
}

// snClient is a raw MQTT-SN peer on a UDP socket.
type snClient struct {
	t    *testing.T
	conn *net.UDPConn
	gw   netip.AddrPort
}

// dial opens a client socket on local (e.g. "127.0.0.1:0").
func (tg *testGateway) dial(t *testing.T, local string) *snClient {
	t.Helper()
	la, err := net.ResolveUDPAddr("udp", local)
	if err != nil {
		t.Fatalf("resolve %s: %v", local, err)
	}
	conn, err := net.ListenUDP("udp", la)
	if err != nil {
		t.Fatalf("listen %s: %v", local, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &snClient{t: t, conn: conn, gw: tg.addr}
}

func (c *snClient) addr() string { return c.conn.LocalAddr().String() }

func (c *snClient) sendRaw(b []byte) {
	c.t.Helper()
	if _, err := c.conn.WriteToUDPAddrPort(b, c.gw); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *snClient) send(p packet.Packet) {
	c.t.Helper()
	b, err := packet.Marshal(p)
	if err != nil {
		c.t.Fatalf("marshal: %v", err)
	}
	c.sendRaw(b)
}

// recv returns the next message within timeout, or nil.
func (c *snClient) recv(timeout time.Duration) packet.Packet {
	c.t.Helper()
	buf := make([]byte, 65536)
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	n, err := c.conn.Read(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		c.t.Fatalf("read: %v", err)
	}
	p, err := packet.Unmarshal(buf[:n])
	if err != nil {
		c.t.Fatalf("gateway sent a malformed datagram %x: %v", buf[:n], err)
	}
	return p
}

// expect waits for a message of type T and fails otherwise.
func expect[T packet.Packet](c *snClient) T {
	c.t.Helper()
	p := c.recv(2 * time.Second)
	m, ok := p.(T)
	if !ok {
		var zero T
		c.t.Fatalf("got %#v, want a %T", p, zero)
	}
	return m
}

// expectNothing fails if a message arrives within d.
func (c *snClient) expectNothing(d time.Duration) {
	c.t.Helper()
	if p := c.recv(d); p != nil {
		c.t.Fatalf("unexpected %#v", p)
	}
}

// connect opens a clean session with the given keep-alive (seconds).
func (c *snClient) connect(id string, keepAlive uint16) {
	c.t.Helper()
	c.send(&packet.Connect{Flags: packet.FlagCleanSession, ProtocolID: 1, Duration: keepAlive, ClientID: id})
	if ack := expect[*packet.Connack](c); ack.ReturnCode != packet.Accepted {
		c.t.Fatalf("connack %v", ack.ReturnCode)
	}
}

// register registers a topic and returns its id.
func (c *snClient) register(name string, msgID uint16) uint16 {
	c.t.Helper()
	c.send(&packet.Register{MsgID: msgID, TopicName: name})
	ack := expect[*packet.Regack](c)
	if ack.ReturnCode != packet.Accepted || ack.MsgID != msgID || ack.TopicID == 0 {
		c.t.Fatalf("regack for %q: %#v", name, ack)
	}
	return ack.TopicID
}

// subscribe subscribes to a topic filter and returns the SUBACK.
func (c *snClient) subscribe(filter string, qos int, msgID uint16) *packet.Suback {
	c.t.Helper()
	c.send(&packet.Subscribe{Flags: packet.Flags(0).WithQoS(qos), MsgID: msgID, TopicName: filter})
	ack := expect[*packet.Suback](c)
	if ack.ReturnCode != packet.Accepted || ack.MsgID != msgID {
		c.t.Fatalf("suback for %q: %#v", filter, ack)
	}
	return ack
}

// nothingReachedNATS has the honest client publish node/<id>/resources
// (never counted against a quota but the value rate) through the gateway
// and reads sub (subscribed to ">" before the attack) up to that sentinel:
// the gateway relays in the order it handles datagrams, on one NATS
// connection, so anything an earlier refused message leaked arrives before
// it. Only messages the gateway stamped (bus.HeaderTransport) count: the
// test's own traffic and JetStream's replies do not.
func nothingReachedNATS(t *testing.T, sub <-chan *nats.Msg, honest *snClient, id string) {
	t.Helper()
	topic := "node/" + id + "/resources"
	tid := honest.register(topic, 0xFFF0)
	honest.send(&packet.Publish{Flags: packet.Flags(0).WithQoS(1), TopicID: tid, MsgID: 0xFFF1, Data: []byte("[]")})
	if a := expect[*packet.Puback](honest); a.ReturnCode != packet.Accepted {
		t.Fatalf("sentinel refused: %v", a.ReturnCode)
	}
	want := bus.NodeResources(id)
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-sub:
			switch {
			case m.Subject == want:
				return
			case m.Header.Get(bus.HeaderTransport) != "":
				t.Fatalf("reached NATS: %s %q", m.Subject, m.Data)
			}
		case <-deadline:
			t.Fatalf("no sentinel on %s", want)
		}
	}
}
