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
	values := bustest.Subscribe(t, tg.nc, "node.>")
	node := tg.dial(t, local)
	from := node.addr()

	ids := map[string]uint16{}
	var lastID uint16
	published := 0
	for i, dgram := range readCapture(t, "testdata/emcute-boot.txt") {
		pkt, err := packet.Unmarshal(dgram)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		switch m := pkt.(type) {
		case *packet.Connect:
			node.sendRaw(dgram)
			if ack := expect[*packet.Connack](node); ack.ReturnCode != packet.Accepted {
				t.Fatalf("connack %v", ack.ReturnCode)
			}
		case *packet.Register:
			node.sendRaw(dgram)
			ack := expect[*packet.Regack](node)
			if ack.ReturnCode != packet.Accepted || ack.MsgID != m.MsgID {
				t.Fatalf("regack for %s: %#v", m.TopicName, ack)
			}
			if prev, ok := ids[m.TopicName]; ok && prev != ack.TopicID {
				t.Fatalf("%s registered again: id %d, was %d", m.TopicName, ack.TopicID, prev)
			}
			ids[m.TopicName], lastID = ack.TopicID, ack.TopicID
		case *packet.Publish:
			patched := append([]byte(nil), dgram...)
			binary.BigEndian.PutUint16(patched[3:], lastID) // our id, not the captured gateway's
			node.sendRaw(patched)
			ack := expect[*packet.Puback](node)
			if ack.ReturnCode != packet.Accepted || ack.MsgID != m.MsgID || ack.TopicID != lastID {
				t.Fatalf("puback: %#v", ack)
			}
			topic := topicOf(ids, lastID)
			subject, err := bus.TopicToSubject(topic)
			if err != nil {
				t.Fatal(err)
			}
			msg := bustest.Next(t, values, subject, 2*time.Second)
			if string(msg.Data) != string(m.Data) {
				t.Fatalf("%s: data %q, want %q", subject, msg.Data, m.Data)
			}
			if msg.Header.Get(bus.HeaderTransport) != bus.ProtocolMQTTSN || msg.Header.Get(bus.HeaderAddress) != from {
				t.Fatalf("%s: headers %v", subject, msg.Header)
			}
			published++
		default:
			t.Fatalf("datagram %d: unexpected %T in capture", i, pkt)
		}
	}
	if published != 18 {
		t.Fatalf("%d values published, want 18", published)
	}
	wantTopics := []string{"node/check", "node/mqtt-2/resources", "node/mqtt-2/board", "node/mqtt-2/humidity",
		"node/mqtt-2/mcu", "node/mqtt-2/os", "node/mqtt-2/name", "node/mqtt-2/pressure", "node/mqtt-2/temperature"}
	if len(ids) != len(wantTopics) {
		t.Fatalf("registered %v, want %v", ids, wantTopics)
	}
}

func topicOf(ids map[string]uint16, id uint16) string {
	for name, i := range ids {
		if i == id {
			return name
		}
	}
	return ""
}
