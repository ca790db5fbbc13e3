package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"

	"github.com/goaiot/goaiot/gateways/mqttsn/packet"
)

// mqttsnIngest measures MQTT-SN node values: raw UDP clients that CONNECT,
// REGISTER node/<id>/b<k> and PUBLISH {"value":…} at QoS 0, as RIOT's
// emcute does.
func (r *runner) mqttsnIngest(ctx context.Context, p params) ([]Result, error) {
	if r.target.MQTTSN == "" {
		return nil, fmt.Errorf("no mqtt-sn gateway: give --mqttsn")
	}
	prefix := r.idPrefix() + "-sn-"
	return r.ingest(ctx, p, "mqtt-sn", prefix, &snNodes{gateway: r.target.MQTTSN, prefix: prefix, resources: p.resources})
}

// snNodes are MQTT-SN clients, one UDP socket each.
type snNodes struct {
	gateway   string
	prefix    string
	resources int
	nodes     []*snNode
}

type snNode struct {
	conn   *net.UDPConn
	topics []uint16 // by resource index
}

func (s *snNodes) connect(ctx context.Context, n int) error {
	gw, err := loopbackUDP(s.gateway)
	if err != nil {
		return fmt.Errorf("mqtt-sn gateway: %w", err)
	}
	for i := range n {
		nd, err := s.dial(ctx, gw, s.prefix+itoa(i))
		if err != nil {
			s.close()
			return fmt.Errorf("mqtt-sn node %d: %w", i, err)
		}
		s.nodes = append(s.nodes, nd)
	}
	return nil
}

// dial connects one client and registers its topics.
func (s *snNodes) dial(ctx context.Context, gw *net.UDPAddr, id string) (*snNode, error) {
	conn, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, gw)
	if err != nil {
		return nil, err
	}
	nd := &snNode{conn: conn}
	if _, err := exchange(ctx, conn, &packet.Connect{Flags: packet.FlagCleanSession, ProtocolID: packet.ProtocolID,
		Duration: 600, ClientID: id}, packet.TypeConnack); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	for k := range s.resources {
		ans, err := exchange(ctx, conn, &packet.Register{MsgID: uint16(k + 1), TopicName: "node/" + id + "/b" + itoa(k)}, packet.TypeRegack)
		if err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("register: %w", err)
		}
		ra := ans.(*packet.Regack)
		if ra.ReturnCode != packet.Accepted {
			_ = conn.Close()
			return nil, fmt.Errorf("register: %s", ra.ReturnCode)
		}
		nd.topics = append(nd.topics, ra.TopicID)
	}
	// Announce the resources, so the dashboard shows the node before its
	// first value (as goaiot's MQTT-SN nodes do).
	ans, err := exchange(ctx, conn, &packet.Register{MsgID: 100, TopicName: "node/" + id + "/resources"}, packet.TypeRegack)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("register: %w", err)
	}
	names := make([]string, s.resources)
	for k := range names {
		names[k] = "b" + itoa(k)
	}
	list, _ := json.Marshal(names)
	if b, err := packet.Marshal(&packet.Publish{TopicID: ans.(*packet.Regack).TopicID, Data: list}); err == nil {
		_, _ = conn.Write(b)
	}
	go func() { // drop whatever the gateway sends from now on
		buf := make([]byte, 512)
		for {
			if _, err := conn.Read(buf); err != nil {
				return
			}
		}
	}()
	return nd, nil
}

// exchange sends p and waits for a packet of type want (retrying twice).
func exchange(ctx context.Context, conn *net.UDPConn, p packet.Packet, want packet.Type) (packet.Packet, error) {
	b, err := packet.Marshal(p)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 512)
	for range 3 {
		if _, err := conn.Write(b); err != nil {
			return nil, err
		}
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		for ctx.Err() == nil {
			n, err := conn.Read(buf)
			if err != nil {
				break
			}
			ans, err := packet.Unmarshal(buf[:n])
			if err == nil && ans.Type() == want {
				_ = conn.SetReadDeadline(time.Time{})
				return ans, nil
			}
		}
	}
	return nil, fmt.Errorf("no %s", want)
}

func (s *snNodes) send(i int, res, value string) error {
	nd := s.nodes[i]
	k := 0
	for j := 1; j < len(res); j++ {
		k = k*10 + int(res[j]-'0')
	}
	b, err := packet.Marshal(&packet.Publish{TopicID: nd.topics[k%len(nd.topics)], Data: []byte(`{"value":"` + value + `"}`)})
	if err != nil {
		return err
	}
	_, err = nd.conn.Write(b)
	return err
}

func (s *snNodes) close() {
	for _, nd := range s.nodes {
		if b, err := packet.Marshal(&packet.Disconnect{}); err == nil {
			_, _ = nd.conn.Write(b)
		}
		_ = nd.conn.Close()
	}
}
