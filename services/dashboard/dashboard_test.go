package dashboard

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

func TestSnapshotFromStream(t *testing.T) {
	dir := t.TempDir()
	srv := bustest.StartServer(t, bustest.WithDataDir(dir))
	pub := publisher{t, bustest.Connect(t, srv)}
	pub.state("n1", bus.StateOnline)
	pub.value("n1", "temperature", "21.5°C")
	pub.value("n1", "temperature", "21.6°C")
	pub.json(bus.NodeValue("n1", "position"), bus.Value{Value: json.RawMessage(`{"lat":48.71,"lng":2.2}`)})
	pub.state("n2", bus.StateOnline)
	pub.value("n2", "led", "1")
	pub.state("n2", bus.StateOffline)
	pub.stored(7)

	td := startDashboard(t, srv)
	b := dial(t, td, nil)
	got := summary(b.subscribe())
	want := []string{"new n1 online", "update n1 temperature=21.6°C", `update n1 position={"lat":48.71,"lng":2.2}`,
		"new n2 offline", "update n2 led=1", "out n2"}
	if !slices.Equal(got, want) {
		t.Fatalf("snapshot:\n got %q\nwant %q", got, want)
	}

	t.Run("after a restart", func(t *testing.T) {
		td.stop()
		pub.value("n1", "temperature", "22.0°C")
		pub.state("n2", bus.StateOnline)
		pub.stored(9)
		td2 := startDashboard(t, srv)
		got := summary(dial(t, td2, nil).subscribe())
		// Last values come in stream order: the newest last.
		want := []string{"new n1 online", `update n1 position={"lat":48.71,"lng":2.2}`, "update n1 temperature=22.0°C",
			"new n2 online", "update n2 led=1"}
		if !slices.Equal(got, want) {
			t.Fatalf("snapshot:\n got %q\nwant %q", got, want)
		}
	})

	t.Run("new fields", func(t *testing.T) {
		snap := dial(t, startDashboard(t, srv), nil).subscribe()
		n := snap[0]
		if n.Protocol != bus.ProtocolCoAP || n.Gateway != "coap@test" || n.Site != "lab" || n.Address != "[fd00::1]:5683" || n.TS == 0 {
			t.Errorf("new: %+v", n)
		}
		if snap[1].TS == 0 {
			t.Errorf("update without ts: %+v", snap[1])
		}
	})
}

func TestLive(t *testing.T) {
	srv := bustest.StartServer(t)
	pub := publisher{t, bustest.Connect(t, srv)}
	td := startDashboard(t, srv)
	b := dial(t, td, nil)
	if snap := b.subscribe(); len(snap) != 0 {
		t.Fatalf("snapshot of an empty bus: %v", summary(snap))
	}
	tests := []struct {
		name    string
		publish func()
		want    []string
	}{
		{"online", func() { pub.state("a", bus.StateOnline) }, []string{"new a online"}},
		{"value", func() { pub.value("a", "temperature", "20°C") }, []string{"update a temperature=20°C"}},
		{"json value", func() {
			pub.json(bus.NodeValue("a", "imu"), bus.Value{Value: json.RawMessage(`[{"type":"acc","values":[1,2,3]}]`)})
		}, []string{`update a imu=[{"type":"acc","values":[1,2,3]}]`}},
		{"reset", func() { pub.state("a", bus.StateReset) }, []string{"reset a"}},
		{"offline", func() { pub.state("a", bus.StateOffline) }, []string{"out a"}},
		{"back online", func() { pub.state("a", bus.StateOnline) }, []string{"new a online"}},
		{"value of an unknown node", func() { pub.value("b", "led", "0") }, []string{"new b online", "update b led=0"}},
		{"resources of an unknown node", func() { pub.json(bus.NodeResources("c"), []string{"led"}) }, []string{"new c online"}},
		{"reset of an unknown node", func() { pub.state("d", bus.StateReset) }, []string{"new d reset"}},
		{"malformed value is ignored", func() {
			pub.json(bus.NodeValue("a", "x"), "not a value")
			pub.value("a", "y", "after")
		}, []string{"update a y=after"}},
		{"node.check is ignored", func() {
			pub.json(bus.SubjectNodeCheck, bus.Check{ID: "e"})
			pub.value("a", "y", "after check")
		}, []string{"update a y=after check"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b.t = t
			tt.publish()
			var got []msg
			for range tt.want {
				got = append(got, b.next())
			}
			if s := summary(got); !slices.Equal(s, tt.want) {
				t.Fatalf("got %q, want %q", s, tt.want)
			}
		})
	}
}

// TestSnapshotThenLiveHasNoGap subscribes while values are published: the
// snapshot and the live messages after it must hold every value once.
func TestSnapshotThenLiveHasNoGap(t *testing.T) {
	srv := bustest.StartServer(t)
	pub := publisher{t, bustest.Connect(t, srv)}
	// No coalescing: every value must arrive, once, in order.
	td := startDashboard(t, srv, func(c *Config) { c.QueueLimit, c.SlowAfter = 4096, 4095 })
	const n = 300
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			pub.nc.Publish(bus.NodeValue("n", "count"), mustJSON(bus.StringValue(fmt.Sprint(i), time.Time{})))
		}
	}()
	b := dial(t, td, nil)
	snap := b.subscribe()
	<-done
	last := -1
	seen := false
	for _, m := range snap {
		if m.Type == typeNew {
			seen = true
		}
		if m.Type == typeUpdate {
			fmt.Sscan(m.Data, &last)
		}
	}
	for last < n-1 {
		m := b.next()
		if m.Type == typeNew {
			seen = true
			continue
		}
		if !seen {
			t.Fatalf("%s before new", m.Type)
		}
		var v int
		fmt.Sscan(m.Data, &v)
		if v != last+1 {
			t.Fatalf("after %d got %d", last, v)
		}
		last = v
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestCommands(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	td := startDashboard(t, srv, func(c *Config) { c.CommandTimeout = 500 * time.Millisecond })
	// A real NATS responder stands in for the gateway that owns n1 and n2;
	// n2 is online in the dashboard's index, n1 is not.
	got := make(chan string, 10)
	respond := func(m *nats.Msg) {
		got <- m.Subject + " " + string(m.Data)
		switch string(m.Data) {
		case "1", "0":
			_ = m.Respond([]byte(`{"ok":true}`))
		case "slow":
			// no answer
		case "ng": // as the queue answers for a node no gateway owns
			_ = m.Respond([]byte(`{"ok":false,"code":"no_gateway","error":"node n1: no gateway serves it"}`))
		default:
			_ = m.Respond([]byte(`{"ok":false,"error":"4.00 Bad Request"}`))
		}
	}
	for _, node := range []string{"n1", "n2"} {
		sub, err := nc.Subscribe(bus.GatewaySetAll(node), respond)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sub.Unsubscribe() })
	}
	nc.Flush()
	publisher{t, nc}.state("n2", bus.StateOnline)
	bustest.Eventually(t, wait, "n2 online in the index", func() error { return bustest.Want(td.d.hub.owned("n2")) })

	sender := dial(t, td, nil)
	other := dial(t, td, nil)
	sender.subscribe()
	other.subscribe()
	tests := []struct {
		name    string
		frame   string
		subject string // what the responder gets; empty: nothing
		want    msg
	}{
		{"accepted", `{"type":"update","data":{"uid":"n1","endpoint":"led","payload":"1"},"id":"c1"}`,
			"gateway.n1.led.set 1", msg{Type: typeResult, ID: "c1", UID: "n1", Endpoint: "led", OK: true, Code: bus.CodeOK}},
		{"pyaiot frame without id", `{"type":"update","data":{"uid":"n1","endpoint":"/led","payload":"0"}}`,
			"gateway.n1.led.set 0", msg{Type: typeResult, UID: "n1", Endpoint: "led", OK: true, Code: bus.CodeOK}},
		{"refused by the node", `{"type":"update","data":{"uid":"n1","endpoint":"led","payload":"5"},"id":"c2"}`,
			"gateway.n1.led.set 5", msg{Type: typeResult, ID: "c2", UID: "n1", Endpoint: "led", Error: "4.00 Bad Request", Code: bus.CodeRefused}},
		{"numeric payload", `{"type":"update","data":{"uid":"n1","endpoint":"led","payload":7},"id":"c3"}`,
			"gateway.n1.led.set 7", msg{Type: typeResult, ID: "c3", UID: "n1", Endpoint: "led", Error: "4.00 Bad Request", Code: bus.CodeRefused}},
		{"no gateway", `{"type":"update","data":{"uid":"n9","endpoint":"led","payload":"1"},"id":"c4"}`,
			"", msg{Type: typeResult, ID: "c4", UID: "n9", Endpoint: "led", Error: "no gateway serves node n9", Code: bus.CodeNoGateway}},
		{"timeout", `{"type":"update","data":{"uid":"n2","endpoint":"led","payload":"slow"},"id":"c5"}`,
			"gateway.n2.led.set slow", msg{Type: typeResult, ID: "c5", UID: "n2", Endpoint: "led", Error: "timeout: no answer within 500ms", Code: bus.CodeTimeout}},
		{"no answer for a node not online: no gateway", `{"type":"update","data":{"uid":"n1","endpoint":"led","payload":"slow"},"id":"c8"}`,
			"gateway.n1.led.set slow", msg{Type: typeResult, ID: "c8", UID: "n1", Endpoint: "led", Error: "no gateway serves node n1", Code: bus.CodeNoGateway}},
		{"the queue's no_gateway", `{"type":"update","data":{"uid":"n1","endpoint":"led","payload":"ng"},"id":"c9"}`,
			"gateway.n1.led.set ng", msg{Type: typeResult, ID: "c9", UID: "n1", Endpoint: "led", Error: "node n1: no gateway serves it", Code: bus.CodeNoGateway}},
		{"unsafe uid", `{"type":"update","data":{"uid":"n1.>","endpoint":"led","payload":"1"},"id":"c6"}`,
			"", msg{Type: typeResult, ID: "c6", UID: "n1.>", Endpoint: "led", Error: `node id "n1.>": unsafe character '.'`, Code: bus.CodeBadRequest}},
		{"reserved endpoint", `{"type":"update","data":{"uid":"n1","endpoint":"$state","payload":"1"},"id":"c7"}`,
			"", msg{Type: typeResult, ID: "c7", UID: "n1", Endpoint: "$state", Error: `resource "$state": reserved name`, Code: bus.CodeBadRequest}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sender.t = t
			sender.send(tt.frame)
			res := sender.nextOf(typeResult)
			if res.Type != tt.want.Type || res.ID != tt.want.ID || res.UID != tt.want.UID || res.Endpoint != tt.want.Endpoint ||
				res.OK != tt.want.OK || res.Error != tt.want.Error || res.Code != tt.want.Code {
				t.Errorf("result %+v, want %+v", res, tt.want)
			}
			select {
			case s := <-got:
				if s != tt.subject {
					t.Errorf("responder got %q, want %q", s, tt.subject)
				}
			default:
				if tt.subject != "" {
					t.Errorf("responder got nothing, want %q", tt.subject)
				}
			}
		})
	}
	t.Run("result only to the sender", func(t *testing.T) {
		other.t = t
		publisher{t, nc}.value("n1", "led", "marker")
		if m := other.next(); m.Type != typeNew || m.UID != "n1" {
			t.Fatalf("other browser got %+v first", m)
		}
		if m := other.next(); m.Type != typeUpdate || m.Data != "marker" {
			t.Fatalf("other browser got %+v, want the marker update", m)
		}
	})
	t.Run("read-only", func(t *testing.T) {
		ro := startDashboard(t, srv, func(c *Config) { c.ReadOnly = true })
		conn, _, err := websocket.DefaultDialer.Dial(ro.wsURL(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		b := &browser{t: t, conn: conn}
		if h := b.next(); h.Role != "viewer" {
			t.Errorf("hello %+v, want role viewer", h)
		}
		b.send(`{"type":"update","data":{"uid":"n1","endpoint":"led","payload":"1"},"id":"r"}`)
		if res := b.nextOf(typeResult); res.OK || !strings.Contains(res.Error, "read-only") {
			t.Errorf("result %+v", res)
		}
	})
}

func TestHistory(t *testing.T) {
	srv := bustest.StartServer(t)
	pub := publisher{t, bustest.Connect(t, srv)}
	for i := range 5 {
		pub.value("h", "temperature", fmt.Sprintf("%d°C", 20+i))
	}
	pub.value("h", "humidity", "40%")
	pub.stored(6)
	b := dial(t, startDashboard(t, srv), nil)
	tests := []struct {
		name    string
		frame   string
		want    []string
		wantErr string
	}{
		{"last three", `{"type":"history","data":{"uid":"h","endpoint":"temperature","limit":3},"id":"q"}`,
			[]string{"22°C", "23°C", "24°C"}, ""},
		{"all", `{"type":"history","data":{"uid":"h","endpoint":"temperature"}}`,
			[]string{"20°C", "21°C", "22°C", "23°C", "24°C"}, ""},
		{"other resource", `{"type":"history","data":{"uid":"h","endpoint":"humidity"}}`, []string{"40%"}, ""},
		{"nothing stored", `{"type":"history","data":{"uid":"h","endpoint":"pressure"}}`, []string{}, ""},
		{"bad uid", `{"type":"history","data":{"uid":"a b","endpoint":"pressure"}}`, []string{}, "unsafe character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b.t = t
			b.send(tt.frame)
			h := b.nextOf(typeHistory)
			got := []string{}
			for _, p := range h.Points {
				got = append(got, p.Data)
				if p.TS == 0 {
					t.Errorf("point without ts: %+v", p)
				}
			}
			if !slices.Equal(got, tt.want) || !strings.Contains(h.Error, tt.wantErr) || (tt.wantErr == "" && h.Error != "") {
				t.Errorf("history %+v, want %q (error %q)", h, tt.want, tt.wantErr)
			}
		})
	}
}

func TestBadFrames(t *testing.T) {
	srv := bustest.StartServer(t)
	td := startDashboard(t, srv, func(c *Config) { c.MaxMessageBytes = 1024 })
	tests := []struct {
		name   string
		typ    int
		frame  string
		code   int
		reason string
	}{
		{"not JSON", websocket.TextMessage, `hello`, 1003, "not a JSON object"},
		{"broken JSON", websocket.TextMessage, `{"type":`, 1003, "bad JSON"},
		{"array", websocket.TextMessage, `[{"type":"new"}]`, 1003, "not a JSON object"},
		{"no type", websocket.TextMessage, `{"data":"client"}`, 1003, `missing field "type"`},
		{"unknown type", websocket.TextMessage, `{"type":"subscribe"}`, 1003, `unknown type "subscribe"`},
		{"unknown type of control characters", websocket.TextMessage, `{"type":"` + strings.Repeat(`\u0001`, 40) + `"}`, 1003, `unknown type "\x01`},
		{"out from a browser", websocket.TextMessage, `{"type":"out","uid":"x"}`, 1003, `unknown type "out"`},
		{"update without data", websocket.TextMessage, `{"type":"update"}`, 1003, `missing object "data"`},
		{"update without uid", websocket.TextMessage, `{"type":"update","data":{"endpoint":"led","payload":"1"}}`, 1003, `missing field "data.uid"`},
		{"update without endpoint", websocket.TextMessage, `{"type":"update","data":{"uid":"n","payload":"1"}}`, 1003, `missing field "data.endpoint"`},
		{"update without payload", websocket.TextMessage, `{"type":"update","data":{"uid":"n","endpoint":"led"}}`, 1003, `missing field "data.payload"`},
		{"object payload", websocket.TextMessage, `{"type":"update","data":{"uid":"n","endpoint":"led","payload":{}}}`, 1003, "must be a string"},
		{"uid not a string", websocket.TextMessage, `{"type":"update","data":{"uid":1,"endpoint":"led","payload":"1"}}`, 1003, "bad \"data\""},
		{"oversized", websocket.TextMessage, `{"type":"new","data":"` + strings.Repeat("x", 2000) + `"}`, 1003, "message too big"},
		{"binary", websocket.BinaryMessage, `{"type":"new","data":"client"}`, 1003, "binary frames are not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := dial(t, td, nil)
			if err := b.conn.WriteMessage(tt.typ, []byte(tt.frame)); err != nil {
				t.Fatal(err)
			}
			ce := b.closed()
			if ce.Code != tt.code || !strings.Contains(ce.Text, tt.reason) {
				t.Errorf("closed with %d %q, want %d %q", ce.Code, ce.Text, tt.code, tt.reason)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	srv := bustest.StartServer(t)
	td := startDashboard(t, srv, func(c *Config) { c.MessageRate, c.MessageBurst = 1, 5 })
	b := dial(t, td, nil)
	for range 10 {
		if err := b.conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"history","data":{"uid":"n","endpoint":"x"}}`)); err != nil {
			break
		}
	}
	if ce := b.closed(); ce.Code != websocket.ClosePolicyViolation || ce.Text != "too many messages" {
		t.Errorf("closed with %d %q", ce.Code, ce.Text)
	}
}

func TestOrigins(t *testing.T) {
	srv := bustest.StartServer(t)
	td := startDashboard(t, srv, func(c *Config) { c.AllowOrigins = []string{"http://pyaiot.example:8080"} })
	host := strings.TrimPrefix(td.http.URL, "http://")
	tests := []struct {
		name   string
		origin string
		ok     bool
	}{
		{"no origin (not a browser)", "", true},
		{"same origin", "http://" + host, true},
		{"localhost page on another port", "http://localhost:8080", true},
		{"loopback page", "http://127.0.0.1:5173", true},
		{"allowed", "http://pyaiot.example:8080", true},
		{"allowed, other case", "HTTP://Pyaiot.Example:8080", true},
		{"allowed host, other port", "http://pyaiot.example:9000", false},
		{"foreign", "https://evil.example", false},
		{"garbage", "::", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			conn, resp, err := websocket.DefaultDialer.Dial(td.wsURL(), h)
			if conn != nil {
				conn.Close()
			}
			if ok := err == nil; ok != tt.ok {
				t.Fatalf("handshake ok=%v (err %v), want %v", ok, err, tt.ok)
			}
			if !tt.ok && resp.StatusCode != http.StatusForbidden {
				t.Errorf("status %d, want 403", resp.StatusCode)
			}
		})
	}
	t.Run("bad allow-list entry", func(t *testing.T) {
		_, err := New(Config{Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t), AllowOrigins: []string{"pyaiot.example"}})
		if err == nil {
			t.Fatal("New accepted an origin without a scheme")
		}
	})
}

func TestCompression(t *testing.T) {
	srv := bustest.StartServer(t)
	pub := publisher{t, bustest.Connect(t, srv)}
	pub.value("z", "text", strings.Repeat("compress me ", 100))
	pub.stored(1)
	td := startDashboard(t, srv)
	dialer := websocket.Dialer{EnableCompression: true}
	conn, resp, err := dialer.Dial(td.wsURL(), http.Header{"Origin": {"http://localhost:8080"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if ext := resp.Header.Get("Sec-Websocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
		t.Fatalf("extensions %q: compression not negotiated", ext)
	}
	b := &browser{t: t, conn: conn}
	b.next() // hello
	snap := b.subscribe()
	if len(snap) != 2 || snap[1].Data != strings.Repeat("compress me ", 100) {
		t.Fatalf("snapshot %q", summary(snap))
	}
}

func TestHTTP(t *testing.T) {
	srv := bustest.StartServer(t)
	td := startDashboard(t, srv)
	dial(t, td, nil)
	get := func(t *testing.T, path string) (int, string) {
		t.Helper()
		resp, err := http.Get(td.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	t.Run("healthz", func(t *testing.T) {
		code, body := get(t, "/healthz")
		var h Health
		if err := json.Unmarshal([]byte(body), &h); err != nil || code != 200 || h.NATS != "CONNECTED" || h.Status != "ok" || h.Browsers != 1 || !h.Ready {
			t.Errorf("%d %s (%v)", code, body, err)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		code, body := get(t, "/metrics")
		for _, want := range []string{"aiot_dashboard_browsers 1", "aiot_dashboard_events_in_total", "aiot_dashboard_coalesced_total",
			`aiot_dashboard_command_results_total{outcome="no_responders"}`, "aiot_dashboard_nodes_online", "go_goroutines"} {
			if code != 200 || !strings.Contains(body, want) {
				t.Errorf("/metrics (%d) lacks %q", code, want)
			}
		}
	})
	t.Run("web app", func(t *testing.T) {
		code, body := get(t, "/")
		if code != 200 || !strings.Contains(strings.ToLower(body), "<html") {
			t.Errorf("/: %d %.200s", code, body)
		}
	})
	t.Run("micro service", func(t *testing.T) {
		nc := bustest.Connect(t, srv)
		m, err := nc.Request("$SRV.INFO."+ServiceName, nil, wait)
		if err != nil {
			t.Fatal(err)
		}
		var info struct {
			Name      string `json:"name"`
			Endpoints []struct {
				Subject string `json:"subject"`
			} `json:"endpoints"`
		}
		if err := json.Unmarshal(m.Data, &info); err != nil || info.Name != ServiceName || len(info.Endpoints) != 1 {
			t.Fatalf("info %s (%v)", m.Data, err)
		}
		r, err := nc.Request(info.Endpoints[0].Subject, nil, wait)
		if err != nil {
			t.Fatal(err)
		}
		var s Stats
		if err := json.Unmarshal(r.Data, &s); err != nil || s.Browsers != 1 {
			t.Errorf("stats %s (%v)", r.Data, err)
		}
	})
}

// TestHealthReadiness: /healthz says "starting" (503, ready false) until
// the dashboard has read the stream and the process around it is ready,
// then ok with the addresses the process bound.
func TestHealthReadiness(t *testing.T) {
	srv := bustest.StartServer(t)
	var ready atomic.Bool
	addrs := map[string]string{"http": "127.0.0.1:1234", "coap": "127.0.0.1:5683"}
	d, err := New(Config{Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t),
		Readiness: func() (bool, map[string]string) {
			if !ready.Load() {
				return false, nil
			}
			return true, addrs
		}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(d.Handler())
	defer hs.Close()
	health := func(t *testing.T) (int, Health) {
		t.Helper()
		resp, err := http.Get(hs.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h Health
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, h
	}
	check := func(t *testing.T, wantCode int, wantStatus string, wantReady bool, wantAddrs map[string]string) {
		t.Helper()
		code, h := health(t)
		if code != wantCode || h.Status != wantStatus || h.Ready != wantReady || !maps.Equal(h.Addrs, wantAddrs) {
			t.Errorf("healthz %d %+v, want %d %s ready=%v addrs %v", code, h, wantCode, wantStatus, wantReady, wantAddrs)
		}
	}
	t.Run("dashboard not running", func(t *testing.T) { check(t, 503, "starting", false, nil) })
	bustest.Run(t, d.Run)
	select {
	case <-d.Ready():
	case <-time.After(wait):
		t.Fatal("dashboard not ready")
	}
	t.Run("process not ready", func(t *testing.T) { check(t, 503, "starting", false, nil) })
	ready.Store(true)
	t.Run("ready", func(t *testing.T) { check(t, 200, "ok", true, addrs) })
}

// The beacons on node.check (one per node every 30 s) are not shown and
// not even received: the dashboard's subscription leaves them out, so a
// value after a hundred beacons is the one node message it counts.
func TestBeaconsNotReceived(t *testing.T) {
	srv := bustest.StartServer(t)
	pub := publisher{t, bustest.Connect(t, srv)}
	td := startDashboard(t, srv)
	b := dial(t, td, nil)
	b.subscribe()
	before := metric(t, td, "aiot_dashboard_events_in_total")
	for i := range 100 {
		pub.json(bus.SubjectNodeCheck, bus.Check{ID: fmt.Sprintf("n%d", i)})
	}
	pub.value("a", "temperature", "20°C")
	if m := b.nextOf("update"); m.UID != "a" {
		t.Fatalf("got %+v, want the value of a", m)
	}
	if n := metric(t, td, "aiot_dashboard_events_in_total") - before; n != 1 {
		t.Fatalf("%v node messages received, want 1 (the value; no beacon)", n)
	}
}
