package soak

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/coap"
	"github.com/goaiot/goaiot/gateways/mqtt"
	"github.com/goaiot/goaiot/gateways/mqttsn"
	"github.com/goaiot/goaiot/gateways/queue"
	"github.com/goaiot/goaiot/gateways/ws"
	"github.com/goaiot/goaiot/internal/config"
	"github.com/goaiot/goaiot/services/dashboard"
)

// Short lifetimes, so that a node goes offline and is forgotten within
// seconds of its last sign of life.
const (
	nodeTimeout = time.Second
	forgetAfter = time.Second
	streamAge   = 2 * time.Second
)

// system is the whole of goaiot in this process.
type system struct {
	srv    *bus.Server
	coap   *coap.Gateway
	mqtt   *mqtt.Gateway
	sn     *mqttsn.Gateway
	ws     *ws.Gateway
	queue  *queue.Queue
	wsURL  string // the websocket gateway's /node
	dash   string // the dashboard's base URL
	states *states
}

// startSystem starts every part with lifetimes short enough for the soak
// and no per-source limit (every simulated node is on 127.0.0.1).
func startSystem(t *testing.T, maxNodes int) *system {
	t.Helper()
	quiet := func(c *bus.ServerConfig) { c.Logger = bustest.Quiet() } // the test's log would grow with every id
	s := &system{srv: bustest.StartServer(t, bustest.WithMQTT(), quiet)}
	s.shortHistory(t)
	s.states = followStates(t, bustest.Connect(t, s.srv))
	s.startDashboard(t)
	s.startQueue(t)
	s.startGateways(t, maxNodes)
	return s
}

// shortHistory makes the stream drop values after streamAge: the stream
// keeps history by its own limits, and the soak waits them out.
func (s *system) shortHistory(t *testing.T) {
	t.Helper()
	js, err := jetstream.New(bustest.Connect(t, s.srv))
	if err != nil {
		t.Fatal(err)
	}
	cfg := bus.DefaultStreamConfig()
	cfg.MaxAge = streamAge
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := bus.EnsureNodesStream(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
}

func (s *system) startDashboard(t *testing.T) {
	t.Helper()
	d, err := dashboard.New(dashboard.Config{Conn: bustest.Connect(t, s.srv), Logger: bustest.Quiet(), Version: "soak",
		ForgetAfter: forgetAfter})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(d.Handler())
	t.Cleanup(hs.Close)
	bustest.Run(t, d.Run)
	s.dash = hs.URL
}

func (s *system) startQueue(t *testing.T) {
	t.Helper()
	var err error
	s.queue, err = queue.New(queue.Config{Conn: bustest.Connect(t, s.srv), Logger: bustest.Quiet(), ForgetAfter: forgetAfter})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, s.queue.Run)
	<-s.queue.Ready()
}

func (s *system) startGateways(t *testing.T, maxNodes int) {
	t.Helper()
	var err error
	s.coap, err = coap.New(coap.Config{Conn: bustest.Connect(t, s.srv), Logger: bustest.Quiet(), Listen: "127.0.0.1:0",
		Gateway: "coap@soak", NodePort: coap.SourcePort, NodeTimeout: nodeTimeout, SourceRate: config.Unlimited,
		PeerIdle: 500 * time.Millisecond, MaxNodes: maxNodes, DiscoveryRate: config.Unlimited})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, s.coap.Run)
	<-s.coap.Ready()
	s.mqtt, err = mqtt.New(mqtt.Config{Conn: bustest.Connect(t, s.srv), Logger: bustest.Quiet(), Gateway: "mqtt@soak",
		NodeTimeout: nodeTimeout, CheckInterval: time.Hour, MaxNodes: 2 * maxNodes})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, s.mqtt.Run)
	s.sn, err = mqttsn.New(mqttsn.Config{Conn: bustest.Connect(t, s.srv), Logger: bustest.Quiet(), Listen: "127.0.0.1:0",
		Name: "mqttsn@soak", NewNodesPerSource: config.Unlimited, MaxClients: maxNodes})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, s.sn.Run)
	s.ws, err = ws.New(ws.Config{Conn: bustest.Connect(t, s.srv), Logger: bustest.Quiet(), Gateway: "ws@soak",
		NodeTimeout: nodeTimeout, NewIDsPerSource: config.Unlimited, MaxNodes: maxNodes})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.ws)
	t.Cleanup(hs.Close)
	bustest.Run(t, s.ws.Run)
	s.wsURL = "ws" + strings.TrimPrefix(hs.URL, "http") + "/node"
}

// nodesHeld is how many nodes the gateways and the dashboard still hold.
func (s *system) nodesHeld(t *testing.T) map[string]int {
	t.Helper()
	return map[string]int{
		"coap gateway":      len(s.coap.Nodes()),
		"mqtt node logic":   len(s.mqtt.Nodes()),
		"mqtt-sn clients":   s.sn.Stats().Clients,
		"websocket gateway": len(s.ws.Nodes()),
		"dashboard":         int(s.metric(t, "aiot_dashboard_nodes")),
		"command queue":     s.queue.Stats().Followed,
	}
}

// metric reads one unlabelled gauge or counter of the dashboard's /metrics.
func (s *system) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get(s.dash + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// snapshot is what a new browser of goaiot's page receives up to "synced":
// its messages and their bytes.
func (s *system) snapshot(t *testing.T) (messages, bytes int) {
	t.Helper()
	msgs := s.snapshotMessages(t)
	for _, m := range msgs {
		bytes += len(m)
	}
	return len(msgs), bytes
}

// snapshotMessages are the messages of a new browser's snapshot.
func (s *system) snapshotMessages(t *testing.T) (msgs []string) {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.dash, "http")+"/ws?ext=1", nil)
	if err != nil {
		t.Fatalf("dial dashboard: %v (%v)", err, resp)
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"new","data":"client"}`)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read snapshot: %v", err)
		}
		var m struct{ Type string }
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("snapshot message %q: %v", b, err)
		}
		switch m.Type {
		case "synced":
			return msgs
		case "hello":
		default:
			msgs = append(msgs, string(b))
		}
	}
}

// states follows every node's $state.
type states struct {
	mu     sync.Mutex
	last   map[string]string
	online int // distinct ids seen online
}

func followStates(t *testing.T, nc *nats.Conn) *states {
	t.Helper()
	st := &states{last: map[string]string{}}
	sub, err := nc.Subscribe(bus.NodeState("*"), func(m *nats.Msg) {
		var s bus.State
		if json.Unmarshal(m.Data, &s) != nil {
			return
		}
		id := strings.TrimSuffix(strings.TrimPrefix(m.Subject, "node."), ".$state")
		st.mu.Lock()
		defer st.mu.Unlock()
		if _, seen := st.last[id]; !seen && s.State == bus.StateOnline {
			st.online++
		}
		st.last[id] = s.State
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return st
}

// seenOnline says whether every id came online at least once.
func (st *states) seenOnline(ids []string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, id := range ids {
		if _, ok := st.last[id]; !ok {
			return fmt.Errorf("%s never online", id)
		}
	}
	return nil
}

// seen is how many distinct ids came online.
func (st *states) seen() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.online
}

// forgetIDs drops the ids followed so far (each id is checked once) so
// that the test's own map is not in the heap it measures.
func (st *states) forgetIDs() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.last = map[string]string{}
}

// stillOnline counts the ids whose last state is not offline.
func (st *states) stillOnline() (n int, some string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for id, s := range st.last {
		if s != bus.StateOffline {
			n, some = n+1, id
		}
	}
	return n, some
}
