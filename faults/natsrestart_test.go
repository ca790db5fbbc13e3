package faults

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/coap"
	"github.com/goaiot/goaiot/gateways/coap/coapsim"
	"github.com/goaiot/goaiot/gateways/ws"
)

// wsNode is a websocket node the test drives frame by frame.
type wsNode struct {
	t    testing.TB
	conn *websocket.Conn
	sent int
}

func dialWSNode(t testing.TB, url, id string) *wsNode {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(url+"?id="+id, nil)
	if err != nil {
		t.Fatalf("ws node %s: %v", id, err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() { // read discover requests and pings; answer nothing
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	return &wsNode{t: t, conn: conn}
}

// send sends n more values of resource count: "1", "2", …
func (n *wsNode) send(count int) {
	n.t.Helper()
	for range count {
		n.sent++
		frame := fmt.Sprintf(`{"type":"update","data":{"count":"%d"}}`, n.sent)
		if err := n.conn.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			n.t.Fatalf("ws node send: %v", err)
		}
		time.Sleep(2 * time.Millisecond) // within the gateway's 50 frames/s per node
	}
}

// TestNATSRestartUnderGateways stops the NATS server under a websocket and
// a CoAP gateway (connected by URL, as separate processes would be) and
// starts it again on the same port and data directory. The gateways
// reconnect on their own, their nodes stay known and online, the values
// stored before the restart are still in the stream (it is on disk), the
// values a node sent while NATS was down were buffered by the gateway and
// arrive after it, and commands work again.
func TestNATSRestartUnderGateways(t *testing.T) {
	ns := newNATSServer(t)
	wsConn, coapConn := ns.connect("aiot-ws"), ns.connect("aiot-coap")
	wsGW, err := ws.New(ws.Config{Conn: wsConn, Logger: bustest.Logger(t), Gateway: "ws@faults", Site: "faults",
		FrameRate: 1000, FrameBurst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(wsGW)
	t.Cleanup(hs.Close)
	bustest.Run(t, wsGW.Run)
	coapGW, err := coap.New(coap.Config{Conn: coapConn, Logger: bustest.Logger(t), Listen: nodeIP(1) + ":0",
		Gateway: "coap@faults", Site: "faults"})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, coapGW.Run)
	<-coapGW.Ready()
	sim, err := coapsim.New(coapsim.Config{UID: "FA0175000000001", Listen: nodeIP(2) + ":5683", Gateway: coapGW.Addr().String(),
		BeaconInterval: 500 * time.Millisecond, SensorInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, sim.Run)

	node := dialWSNode(t, "ws"+strings.TrimPrefix(hs.URL, "http")+"/node", "ws-faults")
	observer := ns.connect("observer")
	subject := bus.NodeValue("ws-faults", "count")
	node.send(50)
	bustest.Eventually(t, wait, "50 values stored", func() error { return bustest.Want(stored(t, observer, subject) == 50) })
	bustest.Eventually(t, wait, "coap node online", func() error { return bustest.Want(lastState(t, observer, sim.UID()) == bus.StateOnline) })

	ns.stop()
	bustest.Eventually(t, wait, "gateways see NATS gone", func() error { return bustest.Want(!wsConn.IsConnected() && !coapConn.IsConnected()) })
	node.send(20) // while NATS is down: the gateway buffers them
	ns.start()
	bustest.Eventually(t, wait, "gateways reconnected", func() error { return bustest.Want(wsConn.IsConnected() && coapConn.IsConnected()) })
	node.send(30)

	bustest.Eventually(t, wait, "100 values stored", func() error { return bustest.Want(stored(t, observer, subject) >= 100) })
	if n := stored(t, observer, subject); n != 100 {
		t.Errorf("stream holds %d values, want 100", n)
	}
	t.Run("every value once, in order", func(t *testing.T) {
		checkHistory(t, observer, subject, 100)
	})
	t.Run("nodes stay known", func(t *testing.T) {
		for gw, nodes := range map[string]int{"ws": len(wsGW.Nodes()), "coap": len(coapGW.Nodes())} {
			if nodes != 1 {
				t.Errorf("%s gateway knows %d nodes, want 1", gw, nodes)
			}
		}
		for _, id := range []string{"ws-faults", sim.UID()} {
			if s := lastState(t, observer, id); s != bus.StateOnline {
				t.Errorf("%s: last state %q, want online", id, s)
			}
		}
	})
	t.Run("commands after the restart", func(t *testing.T) {
		m, err := observer.Request(bus.GatewaySet(sim.UID(), "led"), []byte("1"), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := bus.ParseReply(m.Data); err != nil || !r.OK || !sim.LED() {
			t.Fatalf("reply %s (%v), led %v", m.Data, err, sim.LED())
		}
	})
	t.Logf("NATS restart: ws node sent %d values (50 before, 20 while NATS was down, 30 after); stream holds %d; "+
		"coap node %s online; command answered", node.sent, stored(t, observer, subject), sim.UID())
}
