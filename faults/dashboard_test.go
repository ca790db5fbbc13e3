package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/services/dashboard"
)

// runDashboard serves a dashboard on addr until the returned stop is
// called (or the test ends).
func runDashboard(t *testing.T, nc *nats.Conn, addr string, edit ...func(*dashboard.Config)) (stop func()) {
	t.Helper()
	cfg := dashboard.Config{Conn: nc, Logger: bustest.Logger(t), Version: "faults"}
	for _, e := range edit {
		e(&cfg)
	}
	d, err := dashboard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	bustest.Eventually(t, wait, "listen on "+addr, func() error {
		ln, err = net.Listen("tcp", addr)
		return bustest.Want(err == nil)
	})
	hs := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dashboard: %v", err)
		}
		_ = hs.Close()
	}
	t.Cleanup(stop)
	return stop
}

// message is a dashboard message, the fields the tests look at.
type message struct {
	Type     string `json:"type"`
	UID      string `json:"uid"`
	Endpoint string `json:"endpoint"`
	Data     string `json:"data"`
	State    string `json:"state"`
	Nodes    int    `json:"nodes"`
}

// browser is a websocket client standing in for the web app.
type browser struct {
	conn *websocket.Conn
}

func openBrowser(url string) (*browser, error) {
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		return nil, err
	}
	b := &browser{conn: conn}
	if m, err := b.read(); err != nil || m.Type != "hello" {
		conn.Close()
		return nil, fmt.Errorf("hello: %+v %v", m, err)
	}
	return b, nil
}

func (b *browser) read() (message, error) {
	_ = b.conn.SetReadDeadline(time.Now().Add(wait))
	_, data, err := b.conn.ReadMessage()
	if err != nil {
		return message{}, err
	}
	var m message
	err = json.Unmarshal(data, &m)
	return m, err
}

// snapshot asks for the snapshot and returns it: the nodes by state and the
// last value of each node.resource.
func (b *browser) snapshot() (states map[string]string, values map[string]string, err error) {
	if err := b.conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"new","data":"client"}`)); err != nil {
		return nil, nil, err
	}
	states, values = map[string]string{}, map[string]string{}
	for {
		m, err := b.read()
		if err != nil {
			return nil, nil, err
		}
		switch m.Type {
		case "new":
			states[m.UID] = m.State
		case "out":
			states[m.UID] = bus.StateOffline
		case "update":
			values[m.UID+"."+m.Endpoint] = m.Data
		case "synced":
			return states, values, nil
		}
	}
}

// closeCode reads until the server closes the connection.
func (b *browser) closeCode() int {
	for {
		if _, err := b.read(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			return 0
		}
	}
}

// fleet publishes node states and values the way gateways do, and
// remembers what it published last.
type fleet struct {
	t      testing.TB
	nc     *nats.Conn
	states map[string]string
	values map[string]string
}

func newFleet(t testing.TB, nc *nats.Conn) *fleet {
	return &fleet{t: t, nc: nc, states: map[string]string{}, values: map[string]string{}}
}

func (f *fleet) state(id, state string) {
	f.t.Helper()
	b, _ := json.Marshal(bus.State{State: state, Protocol: bus.ProtocolCoAP, Gateway: "coap@faults", Site: "faults", Time: time.Now().UTC()})
	if err := f.nc.Publish(bus.NodeState(id), b); err != nil {
		f.t.Fatal(err)
	}
	f.states[id] = state
}

func (f *fleet) value(id, res, v string) {
	f.t.Helper()
	b, _ := json.Marshal(bus.StringValue(v, time.Now().UTC()))
	if err := f.nc.Publish(bus.NodeValue(id, res), b); err != nil {
		f.t.Fatal(err)
	}
	f.values[id+"."+res] = v
}

// stored waits until the stream holds the last message of every subject
// published (so a dashboard starting now reads them).
func (f *fleet) stored() {
	f.t.Helper()
	if err := f.nc.Flush(); err != nil {
		f.t.Fatal(err)
	}
	for key, v := range f.values {
		id, res, _ := cut(key)
		bustest.Eventually(f.t, wait, "value stored", func() error { return bustest.Want(lastValue(f.t, f.nc, bus.NodeValue(id, res)) == v) })
	}
}

func cut(key string) (id, res string, ok bool) {
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == '.' {
			return key[:i], key[i+1:], true
		}
	}
	return key, "", false
}

// check compares a snapshot with what the fleet published last.
func (f *fleet) check(t *testing.T, who string, states, values map[string]string) {
	t.Helper()
	if len(states) != len(f.states) || len(values) != len(f.values) {
		t.Errorf("%s: snapshot of %d nodes and %d values, want %d and %d", who, len(states), len(values), len(f.states), len(f.values))
	}
	for id, s := range f.states {
		if states[id] != s {
			t.Errorf("%s: node %s %q, want %q", who, id, states[id], s)
		}
	}
	for k, v := range f.values {
		if values[k] != v {
			t.Errorf("%s: %s = %q, want %q", who, k, values[k], v)
		}
	}
}

// TestDashboardRestart stops the dashboard under its browsers and starts a
// new one on the same address: each browser is told (1001), reconnects, and
// gets a full snapshot again, changes made while the dashboard was down
// included (they come from the stream).
func TestDashboardRestart(t *testing.T) {
	const nodes, browsers = 20, 5
	ns := newNATSServer(t)
	f := newFleet(t, ns.connect("gateways"))
	for i := range nodes {
		id := fmt.Sprintf("node-%02d", i)
		f.state(id, bus.StateOnline)
		for _, res := range []string{"temperature", "humidity", "led"} {
			f.value(id, res, fmt.Sprintf("%s-%d-v1", res, i))
		}
	}
	f.stored()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	url := "ws://" + addr + "/ws?ext=1"
	stop := runDashboard(t, ns.connect("dashboard-1"), addr)
	var open []*browser
	for range browsers {
		b, err := openBrowser(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.conn.Close() })
		states, values, err := b.snapshot()
		if err != nil {
			t.Fatal(err)
		}
		f.check(t, "first dashboard", states, values)
		open = append(open, b)
	}

	stop()
	for i, b := range open {
		if code := b.closeCode(); code != websocket.CloseGoingAway {
			t.Errorf("browser %d closed with %d, want 1001", i, code)
		}
	}
	// While the dashboard is down: new values, a node goes offline, one appears.
	for i := range nodes {
		f.value(fmt.Sprintf("node-%02d", i), "temperature", fmt.Sprintf("temperature-%d-v2", i))
	}
	f.state("node-03", bus.StateOffline)
	f.state("node-new", bus.StateOnline)
	f.value("node-new", "temperature", "fresh")
	f.stored()

	runDashboard(t, ns.connect("dashboard-2"), addr)
	reconnected := 0
	for range browsers {
		b, err := openBrowser(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.conn.Close() })
		states, values, err := b.snapshot()
		if err != nil {
			t.Fatal(err)
		}
		f.check(t, "restarted dashboard", states, values)
		reconnected++
	}
	t.Logf("dashboard restart: %d browsers told 1001, %d reconnected, each got a full snapshot of %d nodes and %d values (%d changed while it was down)",
		browsers, reconnected, len(f.states), len(f.values), nodes+3)
}

// lastValue is the text of the last value stored on subject ("" if none).
func lastValue(t testing.TB, nc *nats.Conn, subject string) string {
	t.Helper()
	m, err := lastMsg(nc, subject)
	if err != nil {
		return ""
	}
	v, err := bus.ParseValue(m)
	if err != nil {
		return ""
	}
	return v.Text()
}
