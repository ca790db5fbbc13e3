package mqttsn

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
	"github.com/goaiot/goaiot/gateways/mqttsn/packet"
)

// readCapture returns the datagrams of a capture file (hex, one a line).
func readCapture(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("capture: %v", err)
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
			t.Fatalf("capture line %q: %v", line, err)
		}
		out = append(out, b)
	}
	return out
}

// TestEmcuteReplay replays the boot of Pyaiot's RIOT MQTT-SN firmware
// (emcute) byte for byte, from a free port (RIOT's emcute uses 1883, but
// the gateway answers any source port), and checks every value
// reaches its subject with the transport headers and gets its PUBACK, and
// that registering the same topic again hands back the same id.
func TestEmcuteReplay(t *testing.T) {
	tests := []struct {
		name    string
		gateway net.IP
		node    string
	}{
		{"ipv4", net.IPv4(127, 0, 0, 1), "127.0.18.83:0"},
		{"ipv6, as RIOT speaks it", net.IPv6loopback, "[::1]:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.gateway.To4() == nil {
				bustest.IPv6Loopback(t)
			}
			replayEmcute(t, startGatewayOn(t, tt.gateway, nil), tt.node)
		})
	}
}

func replayEmcute(t *testing.T, tg *testGateway, local string) {
	e := &emcute{node: tg.dial(t, local), ids: map[string]uint16{}}
	e.play(t, bustest.Subscribe(t, tg.nc, "node.>"), readCapture(t, "testdata/emcute-boot.txt"))
	if e.published != 18 {
		t.Fatalf("%d values published, want 18", e.published)
	}
	wantTopics := []string{"node/check", "node/mqtt-2/resources", "node/mqtt-2/board", "node/mqtt-2/humidity",
		"node/mqtt-2/mcu", "node/mqtt-2/os", "node/mqtt-2/name", "node/mqtt-2/pressure", "node/mqtt-2/temperature"}
	if len(e.ids) != len(wantTopics) {
		t.Fatalf("registered %v, want %v", e.ids, wantTopics)
	}
}

// emcute plays captured emcute datagrams as the node sent them, checking
// every answer: topic ids handed out (the same for a name every time),
// PUBACKs, and each value on its subject with the transport headers.
type emcute struct {
	node      *snClient
	ids       map[string]uint16 // topic ids handed out, by name
	lastID    uint16
	published int
}

func (e *emcute) play(t *testing.T, values <-chan *nats.Msg, grams [][]byte) {
	t.Helper()
	for i, dgram := range grams {
		pkt, err := packet.Unmarshal(dgram)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		switch m := pkt.(type) {
		case *packet.Connect:
			e.node.sendRaw(dgram)
			if ack := expect[*packet.Connack](e.node); ack.ReturnCode != packet.Accepted {
				t.Fatalf("connack %v", ack.ReturnCode)
			}
		case *packet.Register:
			e.register(t, dgram, m)
		case *packet.Publish:
			e.publish(t, values, dgram, m)
		default:
			t.Fatalf("datagram %d: unexpected %T in capture", i, pkt)
		}
	}
}

func (e *emcute) register(t *testing.T, dgram []byte, m *packet.Register) {
	t.Helper()
	e.node.sendRaw(dgram)
	ack := expect[*packet.Regack](e.node)
	if ack.ReturnCode != packet.Accepted || ack.MsgID != m.MsgID {
		t.Fatalf("regack for %s: %#v", m.TopicName, ack)
	}
	if prev, ok := e.ids[m.TopicName]; ok && prev != ack.TopicID {
		t.Fatalf("%s registered again: id %d, was %d", m.TopicName, ack.TopicID, prev)
	}
	e.ids[m.TopicName], e.lastID = ack.TopicID, ack.TopicID
}

func (e *emcute) publish(t *testing.T, values <-chan *nats.Msg, dgram []byte, m *packet.Publish) {
	t.Helper()
	patched := append([]byte(nil), dgram...)
	binary.BigEndian.PutUint16(patched[3:], e.lastID) // our id, not the captured gateway's
	e.node.sendRaw(patched)
	ack := expect[*packet.Puback](e.node)
	if ack.ReturnCode != packet.Accepted || ack.MsgID != m.MsgID || ack.TopicID != e.lastID {
		t.Fatalf("puback: %#v", ack)
	}
	subject, err := bus.TopicToSubject(topicOf(e.ids, e.lastID))
	if err != nil {
		t.Fatal(err)
	}
	msg := bustest.Next(t, values, subject, 2*time.Second)
	if string(msg.Data) != string(m.Data) {
		t.Fatalf("%s: data %q, want %q", subject, msg.Data, m.Data)
	}
	if msg.Header.Get(bus.HeaderTransport) != bus.ProtocolMQTTSN || msg.Header.Get(bus.HeaderAddress) != e.node.addr() {
		t.Fatalf("%s: headers %v", subject, msg.Header)
	}
	e.published++
}

func topicOf(ids map[string]uint16, id uint16) string {
	for name, i := range ids {
		if i == id {
			return name
		}
	}
	return ""
}
