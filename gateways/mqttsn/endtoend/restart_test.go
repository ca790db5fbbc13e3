package endtoend

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/mqtt"
	"github.com/goaiot/goaiot/gateways/mqttsn"
	"github.com/goaiot/goaiot/gateways/mqttsn/packet"
)

const wait = 10 * time.Second

// aiot is what `aiot run` runs for MQTT-SN nodes: NATS on a data
// directory, the MQTT-SN gateway on a fixed port, the MQTT node logic.
type aiot struct {
	t    *testing.T
	dir  string
	srv  *bus.Server
	nc   *nats.Conn
	addr *net.UDPAddr
	sn   *mqttsn.Gateway
	mqtt *mqtt.Gateway
	stop []func()
}

func (a *aiot) start() {
	a.t.Helper()
	a.srv = bustest.StartServer(a.t, bustest.WithDataDir(a.dir))
	a.nc = bustest.Connect(a.t, a.srv)
	conn, err := net.ListenUDP("udp", a.addr)
	if err != nil {
		a.t.Fatal(err)
	}
	a.addr = conn.LocalAddr().(*net.UDPAddr)
	log := bustest.Logger(a.t)
	if a.sn, err = mqttsn.New(mqttsn.Config{Conn: bustest.Connect(a.t, a.srv), Logger: log.With("component", "mqttsn"),
		PacketConn: conn, Name: "mqttsn@lab", PersistDelay: 10 * time.Millisecond}); err != nil {
		a.t.Fatal(err)
	}
	if a.mqtt, err = mqtt.New(mqtt.Config{Conn: bustest.Connect(a.t, a.srv), Logger: log.With("component", "mqtt"),
		Gateway: "mqtt@lab", Site: "lab"}); err != nil {
		a.t.Fatal(err)
	}
	a.stop = []func(){bustest.RunStop(a.t, a.sn.Run), bustest.RunStop(a.t, a.mqtt.Run)}
	<-a.sn.Ready()
}

// restart stops everything, the NATS server included, and starts it all
// again on the same data directory and port.
func (a *aiot) restart() {
	a.t.Helper()
	for _, stop := range a.stop {
		stop()
	}
	a.srv.Shutdown()
	a.start()
}

// TestEmcuteStaysOnlineAcrossRestart: RIOT's emcute connects only at boot.
// After `aiot` restarts (NATS, the MQTT-SN gateway, the node logic) the
// node's next value is accepted and the node is online again at once,
// before its own next node/check.
func TestEmcuteStaysOnlineAcrossRestart(t *testing.T) {
	grams := capture(t)
	a := &aiot{t: t, dir: t.TempDir(), addr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	a.start()
	node, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 18, 84)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	e := &emcute{t: t, conn: node, gw: a}
	states := bustest.Subscribe(t, a.nc, bus.NodeState("mqtt-2"))
	e.play(grams[:19]) // CONNECT, nine topics, the first temperature value
	if s := state(t, states); s.State != bus.StateOnline || s.Protocol != bus.ProtocolMQTTSN {
		t.Fatalf("before the restart: %+v", s)
	}

	a.restart()
	states = bustest.Subscribe(t, a.nc, bus.NodeState("mqtt-2"))
	e.play(grams[19:21]) // REGISTER and PUBLISH temperature: not node/check
	if s := state(t, states); s.State != bus.StateOnline || s.Address != node.LocalAddr().String() {
		t.Fatalf("after the restart, at the first value: %+v", s)
	}
	e.play(grams[21:])
	if st := a.sn.Stats(); st.Rejected != 0 || st.Dropped != 0 || st.Table.Loaded != 1 {
		t.Fatalf("MQTT-SN gateway after the restart: %+v", st)
	}
	select {
	case m := <-states:
		t.Fatalf("$state after the restart: %s", m.Data)
	default:
	}
	if n := a.mqtt.Nodes(); len(n) != 1 || n[0].ID != "mqtt-2" {
		t.Fatalf("nodes after the restart: %+v", n)
	}
}

func state(t *testing.T, ch <-chan *nats.Msg) bus.State {
	t.Helper()
	s, err := bus.ParseState(bustest.Next(t, ch, bus.NodeState("mqtt-2"), wait).Data)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// capture reads the emcute boot capture of the MQTT-SN gateway's tests.
func capture(t *testing.T) [][]byte {
	t.Helper()
	f, err := os.Open("../testdata/emcute-boot.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, err := hex.DecodeString(strings.Fields(line)[0])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// emcute sends captured datagrams as the node did, each PUBLISH with the
// topic id the gateway handed out for the REGISTER before it, and checks
// every answer is an acceptance.
type emcute struct {
	t      *testing.T
	conn   *net.UDPConn
	gw     *aiot
	lastID uint16
}

func (e *emcute) play(grams [][]byte) {
	e.t.Helper()
	for _, d := range grams {
		if d[1] == byte(packet.TypePublish) {
			d = append([]byte(nil), d...)
			binary.BigEndian.PutUint16(d[3:], e.lastID)
		}
		if _, err := e.conn.WriteToUDP(d, e.gw.addr); err != nil {
			e.t.Fatal(err)
		}
		switch m := e.answer().(type) {
		case *packet.Connack:
			e.accepted(m.ReturnCode, m)
		case *packet.Regack:
			e.accepted(m.ReturnCode, m)
			e.lastID = m.TopicID
		case *packet.Puback:
			e.accepted(m.ReturnCode, m)
		default:
			e.t.Fatalf("answer %#v", m)
		}
	}
}

func (e *emcute) accepted(c packet.ReturnCode, m packet.Packet) {
	e.t.Helper()
	if c != packet.Accepted {
		e.t.Fatalf("refused: %#v", m)
	}
}

func (e *emcute) answer() packet.Packet {
	e.t.Helper()
	buf := make([]byte, 2048)
	_ = e.conn.SetReadDeadline(time.Now().Add(wait))
	n, err := e.conn.Read(buf)
	if err != nil {
		e.t.Fatalf("no answer: %v", err)
	}
	p, err := packet.Unmarshal(buf[:n])
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}
