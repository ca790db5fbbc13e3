package mqtt

import (
	"runtime"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

// snHeader is the header the MQTT-SN gateway puts on what it relays.
func snHeader(addr string) nats.Header {
	return nats.Header{bus.HeaderTransport: []string{bus.ProtocolMQTTSN}, bus.HeaderAddress: []string{addr}}
}

// announceSN publishes a node.check of id as the MQTT-SN gateway would.
func announceSN(t *testing.T, nc *nats.Conn, id string) {
	t.Helper()
	m := &nats.Msg{Subject: bus.SubjectNodeCheck, Data: []byte(`{"id":"` + id + `"}`), Header: snHeader("127.0.0.1:1")}
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
}

// Owned nodes share the gateway's lanes: claiming many nodes adds no
// goroutine per node, and each node's values are handled in the order it
// sent them.
func TestNodesShareLanes(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	g := startGateway(t, srv, nil)
	before := runtime.NumGoroutine()
	const nodes = 400
	for i := range nodes {
		announceSN(t, nc, "lane"+itoa(i))
	}
	bustest.Eventually(t, wait, "every node online", func() error { return bustest.Want(g.Stats().MQTTSN.Online == nodes) })
	if grown := runtime.NumGoroutine() - before; grown > nodes/4 {
		t.Fatalf("%d goroutines more for %d nodes, want no goroutine per node", grown, nodes)
	}

	const values = 2_000
	for v := range values {
		for _, id := range []string{"lane0", "lane1"} {
			m := &nats.Msg{Subject: bus.NodeValue(id, "count"), Data: []byte(`{"value":"` + itoa(v) + `"}`), Header: snHeader("127.0.0.1:1")}
			if err := nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	bustest.Eventually(t, wait, "every value handled", func() error { return bustest.Want(g.Stats().Values >= 2*values) })
	for _, id := range []string{"lane0", "lane1"} {
		t.Run(id, func(t *testing.T) {
			g.mu.Lock()
			last := g.nodes[id].recent["count"].text
			g.mu.Unlock()
			if want := itoa(values - 1); last != want {
				t.Fatalf("last value handled %q, want %q (the last sent)", last, want)
			}
		})
	}
}

// Past MaxNodes a new id is refused with a reason and counted; known
// nodes keep being served.
func TestMaxNodesRefuses(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	states := bustest.Subscribe(t, nc, "node.*.$state")
	g := startGateway(t, srv, func(c *Config) { c.MaxNodes = 2 })
	for _, id := range []string{"a", "b"} {
		announceSN(t, nc, id)
		nextState(t, states, id)
	}
	announceSN(t, nc, "c")
	bustest.Eventually(t, wait, "third node refused", func() error { return bustest.Want(g.Stats().MQTTSN.Refused == 1) })
	st := g.Stats()
	if st.MQTTSN.Online != 2 || st.Dropped["node refused"] != 1 {
		t.Fatalf("stats = %+v, want 2 online and 1 node refused", st)
	}
	announceSN(t, nc, "a")
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, wait, "known node refreshed", func() error { return bustest.Want(g.Stats().Checks == 4) })
	if st := g.Stats(); st.MQTTSN.Refused != 1 {
		t.Fatalf("a known node was refused: %+v", st)
	}
}
