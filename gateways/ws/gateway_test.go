package ws_test

import (
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/ws"
)

func TestNodeAppears(t *testing.T) {
	e := startGateway(t, nil)
	all := bustest.Subscribe(t, e.nc, "node.>")
	startSim(t, e, "kitchen")

	st := nextState(t, all, "kitchen", 5*time.Second)
	if st.State != bus.StateOnline || st.Protocol != bus.ProtocolWebSocket || st.Gateway != "ws@test" || st.Site != "test" {
		t.Errorf("state = %+v, want online over WebSocket from ws@test/test", st)
	}
	check := bustest.Next(t, all, bus.SubjectNodeCheck, 5*time.Second)
	if c, err := bus.ParseCheck(check.Data); err != nil || c.ID != "kitchen" || check.Header.Get(bus.HeaderOwner) != "ws@test" {
		t.Errorf("node.check = %s %v (owner %q), want kitchen owned by ws@test", check.Data, err, check.Header.Get(bus.HeaderOwner))
	}
	m := bustest.Next(t, all, bus.NodeResources("kitchen"), 5*time.Second)
	names, err := bus.ParseResources(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"board", "humidity", "led", "name", "os", "pressure", "temperature"} {
		if !slices.Contains(names, want) {
			t.Errorf("resources %v lack %q", names, want)
		}
	}
	tests := []struct{ res, want string }{
		{"board", "linux-sim"}, {"humidity", "%"}, {"led", "0"}, {"name", "WebSocket Node"},
		{"os", "linux"}, {"pressure", "hPa"}, {"temperature", "°C"},
	}
	for _, tt := range tests {
		t.Run(tt.res, func(t *testing.T) {
			if got := nextValue(t, all, "kitchen", tt.res); !strings.HasSuffix(got, tt.want) {
				t.Errorf("%s = %q, want …%q", tt.res, got, tt.want)
			}
		})
	}
}

func TestGeneratedID(t *testing.T) {
	e := startGateway(t, nil)
	states := bustest.Subscribe(t, e.nc, "node.*.$state")
	c := dial(t, e.url)
	m := <-states
	id := strings.Split(m.Subject, ".")[1]
	if _, err := uuid.Parse(id); err != nil {
		t.Errorf("generated id %q is not a UUID: %v", id, err)
	}
	if err := bus.ValidateNodeID(id); err != nil {
		t.Errorf("generated id: %v", err)
	}
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	if st := nextState(t, states, id, 5*time.Second); st.State != bus.StateOffline {
		t.Errorf("after close: %s, want offline", st.State)
	}
}

func TestBadID(t *testing.T) {
	e := startGateway(t, nil)
	for _, id := range []string{"a.b", "a*", "resources", "$x", "with space", strings.Repeat("x", 200)} {
		t.Run(id[:min(len(id), 12)], func(t *testing.T) {
			u := e.url + "?id=" + strings.ReplaceAll(id, " ", "%20")
			_, resp, err := websocket.DefaultDialer.Dial(u, nil)
			if err == nil {
				t.Fatalf("dial with id %q succeeded", id)
			}
			if resp == nil || resp.StatusCode != http.StatusBadRequest {
				t.Errorf("dial with id %q: %v, want HTTP 400", id, err)
			}
		})
	}
}

func TestLEDCommand(t *testing.T) {
	e := startGateway(t, func(c *ws.Config) { c.CommandTimeout = 2 * time.Second })
	all := bustest.Subscribe(t, e.nc, "node.>")
	sim := startSim(t, e, "lamp")
	nextValue(t, all, "lamp", "led")

	tests := []struct {
		res, payload string
		ok, led      bool
		code, err    string
	}{
		{"led", "1", true, true, bus.CodeOK, ""},
		{"led", "0", true, false, bus.CodeOK, ""},
		{"led", "1", true, true, bus.CodeOK, ""},
		{"led", "5", false, true, bus.CodeRefused, `led="1"`},      // the sim refuses and says its LED is on
		{"text", "hello", false, true, bus.CodeTimeout, "timeout"}, // the sim never answers text
	}
	for _, tt := range tests {
		t.Run(tt.res+"="+tt.payload, func(t *testing.T) {
			m, err := e.nc.Request(bus.GatewaySet("lamp", tt.res), []byte(tt.payload), 5*time.Second)
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			r, err := bus.ParseReply(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			if r.OK != tt.ok || r.Code != tt.code {
				t.Errorf("reply %s, want ok=%v code %q", m.Data, tt.ok, tt.code)
			}
			if !strings.Contains(r.Error, tt.err) || (tt.err == "") != (r.Error == "") {
				t.Errorf("error %q, want …%q…", r.Error, tt.err)
			}
			if sim.LED() != tt.led {
				t.Errorf("LED = %v, want %v", sim.LED(), tt.led)
			}
		})
	}
}

func TestCommandToGoneNode(t *testing.T) {
	e := startGateway(t, nil)
	states := bustest.Subscribe(t, e.nc, "node.*.$state")
	c := dial(t, e.url+"?id=gone")
	nextState(t, states, "gone", 5*time.Second)
	// The node reads the command but never answers; then it leaves.
	done := make(chan *bus.Reply, 1)
	go func() {
		m, err := e.nc.Request(bus.GatewaySet("gone", "led"), []byte("1"), 5*time.Second)
		if err != nil {
			done <- nil
			return
		}
		r, _ := bus.ParseReply(m.Data)
		done <- &r
	}()
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), `"endpoint":"led"`) {
			if string(b) != `{"endpoint":"led","payload":"1"}` {
				t.Errorf("command frame %s", b)
			}
			break
		}
	}
	_ = c.Close()
	r := <-done
	if r == nil || r.OK || r.Code != bus.CodeRefused || !strings.Contains(r.Error, "disconnected") {
		t.Errorf("reply %+v, want an error saying the node disconnected", r)
	}
}

func TestOffline(t *testing.T) {
	tests := []struct {
		name  string
		leave func(c *websocket.Conn)
	}{
		{"close", func(c *websocket.Conn) {
			_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
		}},
		{"drop", func(c *websocket.Conn) { _ = c.Close() }},
		{"silence", func(*websocket.Conn) {}}, // never reads, so never answers pings
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startGateway(t, func(c *ws.Config) { c.NodeTimeout = 600 * time.Millisecond })
			states := bustest.Subscribe(t, e.nc, "node.*.$state")
			c := dial(t, e.url+"?id=n1")
			if st := nextState(t, states, "n1", 5*time.Second); st.State != bus.StateOnline {
				t.Fatalf("state %s, want online", st.State)
			}
			tt.leave(c)
			if st := nextState(t, states, "n1", 5*time.Second); st.State != bus.StateOffline {
				t.Errorf("state %s, want offline", st.State)
			}
			bustest.Eventually(t, 10*time.Second, "no node left", func() error { return bustest.Want(len(e.gw.Nodes()) == 0) })
		})
	}
}

// A node that only answers the gateway's pings, or only pings the
// gateway, stays online: the gateway's reader handles both control frames
// while it waits (package wspark), and each counts as a sign of life.
func TestAliveWithControlFrames(t *testing.T) {
	tests := []struct {
		name      string
		run       func(c *websocket.Conn)
		wantPongs bool
	}{
		{"answers pings", func(*websocket.Conn) {}, false},
		{"sends pings", func(c *websocket.Conn) {
			c.SetPingHandler(func(string) error { return nil }) // answer none
			go func() {
				for range 60 {
					if c.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(time.Second)) != nil {
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startGateway(t, func(c *ws.Config) { c.NodeTimeout = time.Second })
			states := bustest.Subscribe(t, e.nc, "node.*.$state")
			c := dial(t, e.url+"?id=quiet")
			nextState(t, states, "quiet", 5*time.Second)
			var pongs atomic.Int32
			c.SetPongHandler(func(data string) error {
				if data == "hi" {
					pongs.Add(1)
				}
				return nil
			})
			tt.run(c)
			go func() { // reading answers pings (unless the test said otherwise) and gets pongs
				for {
					if _, _, err := c.ReadMessage(); err != nil {
						return
					}
				}
			}()
			select {
			case m := <-states:
				t.Fatalf("a node sending control frames changed state: %s %s", m.Subject, m.Data)
			case <-time.After(2500 * time.Millisecond): // two and a half node timeouts
			}
			if tt.wantPongs && pongs.Load() == 0 {
				t.Error("the gateway answered no ping")
			}
		})
	}
}

func TestBadFrames(t *testing.T) {
	tests := []struct {
		name   string
		kind   int
		frame  string
		code   int
		reason string
	}{
		{"binary", websocket.BinaryMessage, `{"type":"update","data":{}}`, websocket.CloseUnsupportedData, "binary"},
		{"not json", websocket.TextMessage, `hello`, websocket.CloseUnsupportedData, "JSON"},
		{"array", websocket.TextMessage, `[{"type":"update"}]`, websocket.CloseUnsupportedData, "JSON"},
		{"no type", websocket.TextMessage, `{"data":{"a":"1"}}`, websocket.CloseUnsupportedData, "without type"},
		{"unknown type", websocket.TextMessage, `{"type":"hello"}`, websocket.CloseUnsupportedData, `unknown message type "hello"`},
		{"data not object", websocket.TextMessage, `{"type":"update","data":["a"]}`, websocket.CloseUnsupportedData, "object"},
		{"no data", websocket.TextMessage, `{"type":"update"}`, websocket.CloseUnsupportedData, "object"},
		{"too large", websocket.TextMessage, `{"type":"update","data":{"a":"` + strings.Repeat("x", 2000) + `"}}`, websocket.CloseMessageTooBig, ""},
	}
	e := startGateway(t, func(c *ws.Config) { c.MaxFrameBytes = 1024 })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, e.url)
			if err := c.WriteMessage(tt.kind, []byte(tt.frame)); err != nil {
				t.Fatal(err)
			}
			code, reason := waitClose(t, c)
			if code != tt.code || !strings.Contains(reason, tt.reason) {
				t.Errorf("closed with %d %q, want %d …%q…", code, reason, tt.code, tt.reason)
			}
		})
	}
}

func TestFrameRate(t *testing.T) {
	e := startGateway(t, func(c *ws.Config) { c.FrameRate, c.FrameBurst = 1, 3 })
	c := dial(t, e.url)
	for range 10 {
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"update","data":{"a":"1"}}`)); err != nil {
			break // closed already
		}
	}
	if code, reason := waitClose(t, c); code != websocket.ClosePolicyViolation || !strings.Contains(reason, "frames/s") {
		t.Errorf("closed with %d %q, want 1008 about the frame rate", code, reason)
	}
}

func TestMaxNodes(t *testing.T) {
	e := startGateway(t, func(c *ws.Config) { c.MaxNodes = 1 })
	states := bustest.Subscribe(t, e.nc, "node.*.$state")
	dial(t, e.url+"?id=first")
	nextState(t, states, "first", 5*time.Second)
	second := dial(t, e.url+"?id=second")
	if code, reason := waitClose(t, second); code != websocket.CloseTryAgainLater || !strings.Contains(reason, "limit") {
		t.Errorf("second node closed with %d %q, want 1013 about the node limit", code, reason)
	}
	if got := e.gw.Nodes(); len(got) != 1 || got[0].ID != "first" {
		t.Errorf("nodes %+v, want only first", got)
	}
}

func TestValues(t *testing.T) {
	e := startGateway(t, func(c *ws.Config) { c.MaxResources = 6 })
	all := bustest.Subscribe(t, e.nc, "node.v.>")
	c := dial(t, e.url+"?id=v")
	frame := `{"type":"update","data":{"position":{ "lat": 48.71, "lng": 2.2 },"count":5,"on":true,"none":null,
		"text":"23.4°C","bad.name":"x","resources":"x","$state":"x","a b":"x","quote":"say \"hi\""}}`
	if err := c.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		t.Fatal(err)
	}
	m := bustest.Next(t, all, bus.NodeResources("v"), 5*time.Second)
	if got, want := string(m.Data), `["count","none","on","position","quote","text"]`; got != want {
		t.Errorf("resources %s, want %s", got, want)
	}
	tests := []struct{ res, want string }{
		{"count", "5"}, {"none", "null"}, {"on", "true"}, {"position", `{"lat":48.71,"lng":2.2}`},
		{"quote", `say "hi"`}, {"text", "23.4°C"},
	}
	for _, tt := range tests {
		t.Run(tt.res, func(t *testing.T) {
			if got := nextValue(t, all, "v", tt.res); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.res, got, tt.want)
			}
		})
	}
	// Past MaxResources (6) new names are skipped; known ones still pass.
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"update","data":{"extra":"1","text":"2"}}`)); err != nil {
		t.Fatal(err)
	}
	if got := nextValue(t, all, "v", "text"); got != "2" {
		t.Errorf("text = %q, want 2", got)
	}
	// Pyaiot's clients say new first; reset makes the gateway rediscover.
	for _, f := range []string{`{"type":"new","data":"node"}`, `{"type":"reset"}`} {
		if err := c.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	if st := nextState(t, all, "v", 5*time.Second); st.State != bus.StateReset {
		t.Errorf("state after reset %s", st.State)
	}
	st := e.gw.Stats()
	if st.Values != 7 || st.Skipped != 5 || st.BadFrames != 0 {
		t.Errorf("stats %+v, want 7 values, 5 skipped", st)
	}
	if err := c.WriteMessage(websocket.PingMessage, nil); err != nil {
		t.Errorf("connection closed: %v", err)
	}
}

func TestBusRequests(t *testing.T) {
	e := startGateway(t, nil)
	all := bustest.Subscribe(t, e.nc, ">")
	startSim(t, e, "s1")
	nextValue(t, all, "s1", "name") // sent on connect
	nextValue(t, all, "s1", "name") // the answer to the gateway's discover request

	if err := e.nc.Publish(bus.SubjectGatewayCheck, nil); err != nil {
		t.Fatal(err)
	}
	check := bustest.Next(t, all, bus.SubjectNodeCheck, 5*time.Second)
	if c, _ := bus.ParseCheck(check.Data); c.ID != "s1" {
		t.Errorf("node.check %s after gateway.check, want s1", check.Data)
	}
	if err := e.nc.Publish(bus.GatewayDiscover("s1"), []byte(bus.DiscoverResources)); err != nil {
		t.Fatal(err)
	}
	bustest.Next(t, all, bus.NodeResources("s1"), 5*time.Second)
	if err := e.nc.Publish(bus.GatewayDiscover("s1"), []byte(bus.DiscoverValues)); err != nil {
		t.Fatal(err)
	}
	if got := nextValue(t, all, "s1", "name"); got != "WebSocket Node" {
		t.Errorf("name %q", got)
	}
}

func TestShutdown(t *testing.T) {
	e := startGateway(t, nil)
	states := bustest.Subscribe(t, e.nc, "node.*.$state")
	c := dial(t, e.url+"?id=last")
	nextState(t, states, "last", 5*time.Second)
	e.stop()
	if code, reason := waitClose(t, c); code != websocket.CloseGoingAway {
		t.Errorf("closed with %d %q, want 1001", code, reason)
	}
	if st := nextState(t, states, "last", 5*time.Second); st.State != bus.StateOffline {
		t.Errorf("state %s, want offline", st.State)
	}
	if _, _, err := websocket.DefaultDialer.Dial(e.url, nil); err == nil {
		t.Errorf("a stopped gateway accepted a node")
	}
}

func TestConfig(t *testing.T) {
	nc := bustest.Connect(t, bustest.StartServer(t))
	log := bustest.Logger(t)
	tests := []struct {
		name string
		cfg  ws.Config
	}{
		{"no conn", ws.Config{Logger: log, Gateway: "g"}},
		{"no logger", ws.Config{Conn: nc, Gateway: "g"}},
		{"no name", ws.Config{Conn: nc, Logger: log}},
		{"negative", ws.Config{Conn: nc, Logger: log, Gateway: "g", FrameRate: -1}},
		{"bad allowed origin", ws.Config{Conn: nc, Logger: log, Gateway: "g", AllowOrigins: []string{"ftp://x"}}},
		{"ping too slow", ws.Config{Conn: nc, Logger: log, Gateway: "g", NodeTimeout: time.Second, PingInterval: 2 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ws.New(tt.cfg); err == nil {
				t.Errorf("New accepted %+v", tt.cfg)
			}
		})
	}
}

// Idle nodes keep no goroutine on the gateway (Linux, plain TCP): their
// readers park in the gateway's poller (package wspark), and the nodes
// still go offline when they leave.
func TestIdleNodesKeepNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("connections park on Linux only")
	}
	const nodes = 20
	e := startGateway(t, func(c *ws.Config) {
		c.NewIDsPerSource = -1
		c.NodeTimeout = time.Minute // the nodes do not read: they would answer no ping
	})
	states := bustest.Subscribe(t, e.nc, "node.*.$state")
	// A first node makes the gateway's subscriptions that wait for one
	// (its presence tracker's, each with a goroutine in nats.go), which a
	// loaded machine may not have made yet when Ready is closed.
	<-e.gw.Ready()
	warm := dial(t, e.url+"?id=warm")
	if st := nextState(t, states, "warm", 5*time.Second); st.State != bus.StateOnline {
		t.Fatalf("warm: state %s, want online", st.State)
	}
	base := runtime.NumGoroutine()
	conns := make([]*websocket.Conn, nodes)
	for i := range conns {
		id := fmt.Sprint("idle", i)
		conns[i] = dial(t, e.url+"?id="+id)
		if st := nextState(t, states, id, 5*time.Second); st.State != bus.StateOnline {
			t.Fatalf("%s: state %s, want online", id, st.State)
		}
	}
	bustest.Eventually(t, 10*time.Second, "readers parked", func() error {
		n := runtime.NumGoroutine()
		return bustest.Want(n <= base+nodes/4, n, " goroutines with ", nodes, " idle nodes, ", base, " before")
	})
	for _, c := range append(conns, warm) {
		_ = c.Close()
	}
	bustest.Eventually(t, 10*time.Second, "no node left", func() error { return bustest.Want(len(e.gw.Nodes()) == 0) })
}
