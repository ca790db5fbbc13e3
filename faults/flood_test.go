package faults

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	coapmsg "github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/coap"
	"github.com/goaiot/goaiot/gateways/coap/coapsim"
	"github.com/goaiot/goaiot/gateways/mqttsn"
	"github.com/goaiot/goaiot/gateways/mqttsn/snsim"
)

// flood sends datagrams made by bad from `senders` loopback addresses,
// `each` per sender, pausing a millisecond every `pause` datagrams (to let
// a good node's datagrams through the socket buffer now and then), and
// returns how many were sent.
func flood(t *testing.T, target string, senders, each, pause int, bad func(r *rand.Rand, i int) []byte) int64 {
	t.Helper()
	var sent atomic.Int64
	var wg sync.WaitGroup
	for s := range senders {
		conn, err := net.ListenPacket("udp", nodeIP(100+s)+":0")
		if err != nil {
			t.Fatal(err)
		}
		dst, err := net.ResolveUDPAddr("udp", target)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer conn.Close()
			r := rand.New(rand.NewPCG(uint64(s), 7))
			for i := range each {
				if _, err := conn.WriteTo(bad(r, i), dst); err == nil {
					sent.Add(1)
				}
				if i%pause == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	return sent.Load()
}

// coapMessage is a CoAP message: type (0 CON, 1 NON), code, Uri-Path
// segments and payload, hand-made so that it can also be made wrong.
func coapMessage(typ, code byte, mid uint16, path []string, payload []byte) []byte {
	b := []byte{0x40 | typ<<4 | 2, code, byte(mid >> 8), byte(mid), 0xab, 0xcd}
	last := 0
	for _, seg := range path {
		delta := 11 - last
		last = 11
		if len(seg) < 13 {
			b = append(b, byte(delta<<4|len(seg)))
		} else {
			b = append(b, byte(delta<<4|13), byte(len(seg)-13))
		}
		b = append(b, seg...)
	}
	if len(payload) > 0 {
		b = append(append(b, 0xff), payload...)
	}
	return b
}

// badCoAP is the i-th malformed or unwelcome CoAP datagram.
func badCoAP(r *rand.Rand, i int) []byte {
	mid := uint16(i)
	switch i % 10 {
	case 0: // random bytes
		b := make([]byte, 1+r.IntN(300))
		for j := range b {
			b[j] = byte(r.UintN(256))
		}
		return b
	case 1: // wrong version
		return []byte{0x80, 0x02, 0, 1}
	case 2: // truncated: token length beyond the datagram
		return []byte{0x48, 0x02, 0, 1, 0xaa}
	case 3: // /alive with garbage
		return coapMessage(0, 0x02, mid, []string{"alive"}, []byte("garbage \x00\xff"))
	case 4: // /alive with an unsafe uid
		return coapMessage(1, 0x02, mid, []string{"alive"}, []byte("alive:a.b.>"))
	case 5: // /server from an unknown node
		return coapMessage(1, 0x02, mid, []string{"server"}, []byte("temperature:99"))
	case 6: // /server with an unsafe resource
		return coapMessage(0, 0x02, mid, []string{"server"}, []byte("$state:x"))
	case 7: // unknown path
		return coapMessage(0, 0x01, mid, []string{".well-known", "core"}, nil)
	case 8: // big payload
		return coapMessage(1, 0x02, mid, []string{"server"}, []byte(strings.Repeat("x:", 600)))
	}
	// option with a reserved length nibble
	return []byte{0x40, 0x02, 0, 1, 0xbf, 0x01}
}

// TestCoAPMalformedFlood floods the CoAP gateway with malformed and
// unwelcome datagrams from 4 addresses while a good node posts 200 values
// (confirmable, as a careful node would): every value arrives, once each.
func TestCoAPMalformedFlood(t *testing.T) {
	const goodValues, senders, each = 200, 4, 5000
	srv := bustest.StartServer(t)
	gw, err := coap.New(coap.Config{Conn: bustest.Connect(t, srv), Logger: bustest.Quiet(), Listen: nodeIP(21) + ":0",
		Gateway: "coap@faults", Site: "faults"})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, gw.Run)
	<-gw.Ready()
	sim, err := coapsim.New(coapsim.Config{UID: "FA0175000000003", Listen: nodeIP(22) + ":5683", Gateway: gw.Addr().String(),
		BeaconInterval: time.Second, SensorInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, sim.Run)
	nc := bustest.Connect(t, srv)
	got := collect(t, nc, bus.NodeValue(sim.UID(), "count"))
	bustest.Eventually(t, wait, "good node known", func() error { return bustest.Want(len(gw.Nodes()) == 1) })

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cc, err := udp.Dial(gw.Addr().String(), options.WithContext(ctx),
		options.WithDialer(&net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(nodeIP(22))}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	var floodSent int64
	floodDone := make(chan struct{})
	go func() {
		defer close(floodDone)
		floodSent = flood(t, gw.Addr().String(), senders, each, 200, badCoAP)
	}()
	acked := 0
	for i := 1; i <= goodValues; i++ {
		resp, err := cc.Post(ctx, coap.PathServer, coapmsg.TextPlain, strings.NewReader("count:"+strconv.Itoa(i)))
		if err != nil {
			t.Fatalf("good value %d: %v", i, err)
		}
		if resp.Code().String() == "Changed" || resp.Code() < 0x80 {
			acked++
		}
	}
	<-floodDone
	seen, dups := got.until(goodValues, wait)
	if len(seen) != goodValues || dups != 0 {
		t.Errorf("good node: %d values sent, %d acknowledged, %d arrived (%d duplicates)", goodValues, acked, len(seen), dups)
	}
	if n := len(gw.Nodes()); n != 1 {
		t.Errorf("gateway knows %d nodes after the flood, want only the good one", n)
	}
	st := gw.Stats()
	t.Logf("CoAP flood: %d bad datagrams from %d addresses (10 kinds); good node sent %d values, %d acknowledged, %d arrived, %d duplicates; "+
		"gateway rejected %d requests, knows %d node(s)", floodSent, senders, goodValues, acked, len(seen), dups, st.Rejected, len(gw.Nodes()))
}

// badMQTTSN is the i-th malformed or unwelcome MQTT-SN datagram.
func badMQTTSN(r *rand.Rand, i int) []byte {
	switch i % 8 {
	case 0: // random bytes
		b := make([]byte, 1+r.IntN(200))
		for j := range b {
			b[j] = byte(r.UintN(256))
		}
		return b
	case 1: // length says more than was sent
		return []byte{0x40, 0x0c, 0, 0, 1}
	case 2: // 3-byte length form, lying
		return []byte{0x01, 0xff, 0xff, 0x04}
	case 3: // PUBLISH without a session
		return []byte{9, 0x0c, 0x20, 0, 1, 0, 1, 'h', 'i'}
	case 4: // CONNECT with a 200-byte client id
		b := []byte{0, 0x04, 0x04, 0x01, 0, 60}
		b = append(b, strings.Repeat("c", 200)...)
		b[0] = byte(len(b))
		return b[:min(len(b), 255)]
	case 5: // REGISTER of a wildcard topic without a session
		b := []byte{0, 0x0a, 0, 0, 0, 1}
		b = append(b, "node/+/#"...)
		b[0] = byte(len(b))
		return b
	case 6: // unknown message type
		return []byte{3, 0xee, 0}
	}
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, r.Uint32())
	return b
}

// TestMQTTSNMalformedFlood floods the MQTT-SN gateway from 4 addresses
// while a good node (RIOT emcute's behaviour: QoS 1, stop and wait)
// publishes every 20 ms: every PUBLISH the gateway acknowledged reached
// NATS.
func TestMQTTSNMalformedFlood(t *testing.T) {
	const senders, each = 4, 5000
	srv := bustest.StartServer(t)
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(nodeIP(31))})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := mqttsn.New(mqttsn.Config{Conn: bustest.Connect(t, srv), Logger: bustest.Quiet(), PacketConn: pc, Name: "mqttsn@faults"})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, gw.Run)
	<-gw.Ready()
	nc := bustest.Connect(t, srv)
	var arrived atomic.Int64
	sub, err := nc.Subscribe("node.sn-faults.>", func(m *nats.Msg) { arrived.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	check, err := nc.Subscribe(bus.SubjectNodeCheck, func(m *nats.Msg) {
		if strings.Contains(string(m.Data), "sn-faults") {
			arrived.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer check.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	node, err := snsim.New(snsim.Config{Gateway: gw.Addr().String(), NodeID: "sn-faults", Local: nodeIP(32) + ":0", Logger: bustest.Quiet(),
		SensorInterval: 20 * time.Millisecond, RetryInterval: 200 * time.Millisecond, Retries: 10})
	if err != nil {
		t.Fatal(err)
	}
	stopNode := bustest.Run(t, node.Run)
	bustest.Eventually(t, wait, "good node connected", func() error { return bustest.Want(node.Connected()) })
	during := node.Published()
	sent := flood(t, gw.Addr().String(), senders, each, 10, badMQTTSN)
	before := node.Published()
	during = before - during
	bustest.Eventually(t, wait, "50 more values after the flood", func() error { return bustest.Want(node.Published() >= before+50) })
	stopNode()
	acked := node.Published()
	bustest.Eventually(t, wait, "every acknowledged PUBLISH on NATS", func() error { return bustest.Want(arrived.Load() >= acked) })
	st := gw.Stats()
	t.Logf("MQTT-SN flood: %d bad datagrams from %d addresses (8 kinds); good node: %d PUBLISHes acknowledged (%d during the flood), %d on NATS; "+
		"gateway dropped %d, rejected %d, holds %d session(s)", sent, senders, acked, during, arrived.Load(), st.Dropped, st.Rejected, st.Clients)
}

// TestBrowserFlood opens and drops websocket connections to the dashboard
// from 4 goroutines (plain drops, drops after the snapshot, bad frames,
// too many frames) while a node publishes 300 values: a good browser gets
// every one of them, in order.
func TestBrowserFlood(t *testing.T) {
	const values, churners = 300, 4
	ns := newNATSServer(t)
	f := newFleet(t, ns.connect("gateway"))
	f.state("good", bus.StateOnline)
	f.stored()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	url := "ws://" + addr + "/ws?ext=1"
	runDashboard(t, ns.connect("dashboard"), addr)
	good, err := openBrowser(url)
	if err != nil {
		t.Fatal(err)
	}
	defer good.conn.Close()
	if _, _, err := good.snapshot(); err != nil {
		t.Fatal(err)
	}
	received := make(chan []string, 1)
	go func() {
		var got []string
		last := strconv.Itoa(values)
		for len(got) == 0 || got[len(got)-1] != last {
			m, err := good.read()
			if err != nil {
				break
			}
			if m.Type == "update" && m.UID == "good" {
				got = append(got, m.Data)
			}
		}
		received <- got
	}()

	stop := make(chan struct{})
	var opened, refused atomic.Int64
	var wg sync.WaitGroup
	for c := range churners {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				churn(url, c+i, &opened, &refused)
			}
		})
	}
	for i := 1; i <= values; i++ {
		f.value("good", "count", strconv.Itoa(i))
		time.Sleep(3 * time.Millisecond)
	}
	got := <-received
	close(stop)
	wg.Wait()
	// A browser that falls more than 32 messages behind gets the latest
	// value of a resource instead of every value (the dashboard's
	// contract): values may be skipped, never reordered, repeated or lost
	// at the end.
	prev := 0
	for _, v := range got {
		n, err := strconv.Atoi(v)
		if err != nil || n <= prev {
			t.Fatalf("value %q after %d: out of order or repeated (got %v)", v, prev, got)
		}
		prev = n
	}
	if prev != values {
		t.Fatalf("good browser's last value %d, want %d (got %d values)", prev, values, len(got))
	}
	t.Logf("browser flood: %d connections opened and dropped (%d refused) while %d values were published; the good browser got %d in order "+
		"(%d replaced by a later value while it lagged), the last one included", opened.Load(), refused.Load(), values, len(got), values-len(got))
}

// churn is one short-lived browser; kind picks how it misbehaves.
func churn(url string, kind int, opened, refused *atomic.Int64) {
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		refused.Add(1)
		return
	}
	opened.Add(1)
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	switch kind % 4 {
	case 0: // drop at once, no close frame
	case 1: // subscribe, read a little, drop
		_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"new","data":"client"}`))
		_, _, _ = conn.ReadMessage()
	case 2: // a bad frame: closed with 1003
		_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe"}`))
		_, _, _ = conn.ReadMessage()
		_, _, _ = conn.ReadMessage()
	case 3: // too many frames: closed with 1008
		for range 80 {
			if conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"history","data":{"uid":"good","endpoint":"count","limit":1}}`)) != nil {
				break
			}
		}
	}
}
