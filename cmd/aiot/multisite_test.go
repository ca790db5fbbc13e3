package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/sites"
	"github.com/goaiot/goaiot/sites/linktest"
)

// startMultisite runs `aiot args…` like startAiot, and stops it cleanly
// (checking its exit status) when the test ends.
func startMultisite(t *testing.T, args ...string) *proc {
	t.Helper()
	p := newProc(t, args...)
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("aiot %s log:\n%s", strings.Join(args[:3], " "), p.logText())
		}
	})
	return p
}

// browser is a websocket client of the hub's dashboard speaking the
// browser protocol of services/dashboard/doc.go.
type browser struct {
	t    *testing.T
	conn *websocket.Conn
	msgs chan map[string]any
}

func openBrowser(t *testing.T, httpURL string) *browser {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(strings.Replace(httpURL, "http://", "ws://", 1)+"/ws?ext=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, conn: c, msgs: make(chan map[string]any, 4096)}
	go func() {
		defer close(b.msgs)
		for {
			var m map[string]any
			if err := c.ReadJSON(&m); err != nil {
				return
			}
			b.msgs <- m
		}
	}()
	t.Cleanup(func() { c.Close() })
	b.send(map[string]any{"type": "new", "data": "client"})
	return b
}

func (b *browser) send(m map[string]any) {
	b.t.Helper()
	if err := b.conn.WriteJSON(m); err != nil {
		b.t.Fatal(err)
	}
}

// await reads messages until match accepts one; others are dropped.
func (b *browser) await(t *testing.T, within time.Duration, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m, ok := <-b.msgs:
			if !ok {
				t.Fatalf("websocket closed waiting for %s", what)
			}
			if match(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s within %s", what, within)
		}
	}
}

// TestHubAndTwoSites runs a hub and two sites as separate aiot processes,
// cuts one site's leaf link while a site-local client publishes, and counts
// the values in the hub's history afterwards: none lost, none twice.
func TestHubAndTwoSites(t *testing.T) {
	users := filepath.Join(t.TempDir(), "leaf-users")
	if err := os.WriteFile(users, []byte("# site password\nparis paris-secret\nlyon lyon-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hubData := t.TempDir()
	hubArgs := func(leaf string) []string {
		return []string{"hub", "--leaf-listen", leaf, "--leaf-users", users,
			"--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0", "--data", hubData}
	}
	hub := startMultisite(t, hubArgs("127.0.0.1:0")...)
	leafAddr := hub.url(t, "leafnodes")
	links := map[string]*linktest.Link{}
	siteProcs := map[string]*proc{}
	for _, name := range []string{"paris", "lyon"} {
		links[name] = linktest.New(t, leafAddr)
		siteProcs[name] = startMultisite(t, append([]string{"site", "--site", name,
			"--hub", "nats-leaf://" + name + ":" + name + "-secret@" + links[name].Addr(),
			"--heartbeat", "300ms", "--demo", "--coap-nodes", "0", "--mqtt-nodes", "0", "--mqttsn-nodes", "0",
			"--ws-nodes", "1", "--sim-prefix", name, "--sim-interval", "500ms"}, randomPorts(t)...)...)
	}
	hubNC, err := nats.Connect(hub.url(t, "nats"))
	if err != nil {
		t.Fatal(err)
	}
	defer hubNC.Close()
	parisNC, err := nats.Connect(siteProcs["paris"].url(t, "nats")) // a site-local client
	if err != nil {
		t.Fatal(err)
	}
	defer parisNC.Close()
	br := openBrowser(t, hub.url(t, "http"))

	t.Run("nodes of both sites on the hub's /ws with their site", func(t *testing.T) {
		missing := map[string]string{"paris-ws-1": "paris", "lyon-ws-1": "lyon"}
		br.await(t, 60*time.Second, fmt.Sprint("new ", missing), func(m map[string]any) bool {
			if uid, _ := m["uid"].(string); m["type"] == "new" && m["site"] == missing[uid] {
				delete(missing, uid)
			}
			return len(missing) == 0
		})
	})
	t.Run("command from the hub over NATS reaches a site node", func(t *testing.T) {
		expectOK(t, hubNC, "paris-ws-1")
	})
	t.Run("command from the hub's /ws reaches a site node", func(t *testing.T) {
		br.send(map[string]any{"type": "update", "id": "c1", "data": map[string]any{"uid": "lyon-ws-1", "endpoint": "led", "payload": "1"}})
		m := br.await(t, 20*time.Second, "result c1", func(m map[string]any) bool { return m["type"] == "result" && m["id"] == "c1" })
		if m["ok"] != true {
			t.Fatalf("result %v", m)
		}
	})
	// Every site has a queue in the group aiot-queue, and knows only its own
	// nodes; the hub's queue is the member the hub's server picks, so no
	// site's queue ever answers the hub's command to another site's node
	// (with the hub's queue off, these fail: gateways/queue, "Replies").
	t.Run("commands from the hub: the owner answers, never another site's queue", func(t *testing.T) {
		for range 10 {
			expectOK(t, hubNC, "paris-ws-1")
			expectOK(t, hubNC, "lyon-ws-1")
		}
	})
	t.Run("command from the hub to an id no site has: no_gateway", func(t *testing.T) {
		m, err := hubNC.Request(bus.GatewaySet("nowhere-1", "led"), []byte("1"), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := bus.ParseReply(m.Data); err != nil || r.OK || r.Code != bus.CodeNoGateway {
			t.Fatalf("reply %s (%v), want no_gateway", m.Data, err)
		}
	})

	const before, during, after = 20, 30, 20
	next := 0
	publish := func(n int) {
		t.Helper()
		for range n {
			next++
			if err := parisNC.Publish(bus.NodeValue("paris-counter", "count"), []byte(fmt.Sprintf(`{"value":%d}`, next))); err != nil {
				t.Fatal(err)
			}
		}
		if err := parisNC.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	publish(before)
	links["paris"].Cut()
	waitSiteLink(t, hub.url(t, "http"), "paris", sites.LinkDown)
	t.Run("the hub's /ws shows the link down", func(t *testing.T) { awaitLink(t, br, "paris", sites.LinkDown) })
	publish(during)
	t.Run("the site works alone: a local command", func(t *testing.T) { expectOK(t, parisNC, "paris-ws-1") })
	t.Run("the site logs its link down", func(t *testing.T) { awaitLog(t, siteProcs["paris"], "hub link down") })
	links["paris"].Restore()
	waitSiteLink(t, hub.url(t, "http"), "paris", sites.LinkUp)
	t.Run("the hub's /ws shows the link up again", func(t *testing.T) { awaitLink(t, br, "paris", sites.LinkUp) })
	publish(after)

	t.Run("an id online at both sites is reported on the hub's /ws", func(t *testing.T) {
		lyonNC, err := nats.Connect(siteProcs["lyon"].url(t, "nats"))
		if err != nil {
			t.Fatal(err)
		}
		defer lyonNC.Close()
		for site, nc := range map[string]*nats.Conn{"paris": parisNC, "lyon": lyonNC} {
			st, _ := json.Marshal(bus.State{State: bus.StateOnline, Protocol: "CoAP", Gateway: "coap@" + site, Site: site})
			if err := nc.Publish(bus.NodeState("kitchen"), st); err != nil {
				t.Fatal(err)
			}
		}
		m := br.await(t, 30*time.Second, "collision kitchen", func(m map[string]any) bool {
			return m["type"] == "collision" && m["uid"] == "kitchen" && fmt.Sprint(m["sites"]) == "[lyon paris]"
		})
		t.Logf("hub's /ws: %v", m)
	})
	t.Run("hub history holds every value once", func(t *testing.T) {
		js, err := jetstream.New(hubNC)
		if err != nil {
			t.Fatal(err)
		}
		subject := bus.NodeValue("paris-counter", "count")
		deadline := time.Now().Add(60 * time.Second)
		var n uint64
		for n < before+during+after && time.Now().Before(deadline) {
			st, err := js.Stream(t.Context(), bus.NodesStream)
			if err != nil {
				t.Fatal(err)
			}
			info, err := st.Info(t.Context(), jetstream.WithSubjectFilter(subject))
			if err != nil {
				t.Fatal(err)
			}
			n = info.State.Subjects[subject]
			time.Sleep(100 * time.Millisecond)
		}
		br.send(map[string]any{"type": "history", "id": "h1", "data": map[string]any{"uid": "paris-counter", "endpoint": "count", "limit": 1000}})
		m := br.await(t, 20*time.Second, "history h1", func(m map[string]any) bool { return m["type"] == "history" && m["id"] == "h1" })
		points, _ := m["points"].([]any)
		seen := map[string]int{}
		for _, p := range points {
			seen[fmt.Sprint(p.(map[string]any)["data"])]++
		}
		lost, twice := 0, 0
		for i := 1; i <= before+during+after; i++ {
			switch seen[fmt.Sprint(i)] {
			case 0:
				lost++
			case 1:
			default:
				twice++
			}
		}
		t.Logf("published %d (%d during the outage); the hub's stream holds %d, its /ws history %d: %d lost, %d twice",
			before+during+after, during, n, len(points), lost, twice)
		if n != before+during+after || len(points) != before+during+after || lost != 0 || twice != 0 {
			t.Fatalf("stream holds %d, history %d points: %d lost, %d twice", n, len(points), lost, twice)
		}
	})

	t.Run("the hub stopped and started again catches up too", func(t *testing.T) {
		hub.stop(t)
		const whileStopped = 25
		publish(whileStopped)
		again := startMultisite(t, hubArgs(leafAddr)...)
		nc, err := nats.Connect(again.url(t, "nats"))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		subject := bus.NodeValue("paris-counter", "count")
		want := uint64(before + during + after + whileStopped)
		deadline := time.Now().Add(60 * time.Second)
		var n uint64
		for n < want && time.Now().Before(deadline) {
			if st, err := js.Stream(t.Context(), bus.NodesStream); err == nil {
				if info, err := st.Info(t.Context(), jetstream.WithSubjectFilter(subject)); err == nil {
					n = info.State.Subjects[subject]
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		if n != want {
			t.Fatalf("after a hub restart its stream holds %d values, want %d", n, want)
		}
	})
}

// awaitLink waits for a "site" message on the browser.
func awaitLink(t *testing.T, br *browser, site, link string) {
	t.Helper()
	br.await(t, 30*time.Second, "site "+site+" "+link, func(m map[string]any) bool {
		return m["type"] == "site" && m["site"] == site && m["link"] == link
	})
}

// awaitLog waits for a log line of p containing s.
func awaitLog(t *testing.T, p *proc, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.logText(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q logged", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// expectOK sends the led command to node through nc and wants {"ok":true}.
func expectOK(t *testing.T, nc *nats.Conn, node string) {
	t.Helper()
	var last error
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		m, err := nc.Request(bus.GatewaySet(node, "led"), []byte("1"), 5*time.Second)
		if err == nil {
			r, err := bus.ParseReply(m.Data)
			if err != nil || !r.OK {
				t.Fatalf("reply %s: %v", m.Data, err)
			}
			return
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("command to %s: %v", node, last)
}

// waitSiteLink polls the hub's /sites until site's link is state.
func waitSiteLink(t *testing.T, httpURL, site, state string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		resp, err := http.Get(httpURL + "/sites")
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			Sites []sites.SiteInfo `json:"sites"`
		}
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range v.Sites {
			if s.Site == site {
				got = s.Link
			}
		}
		if got == state {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("site %s link %q, want %q", site, got, state)
}

func TestHubAndSiteBadConfiguration(t *testing.T) {
	badUsers := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(badUsers, []byte("paris\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"site without hub", []string{"site", "--site", "paris"}, "--hub: required"},
		{"site without a name", []string{"site", "--hub", "nats-leaf://127.0.0.1:7422"}, "--site: required"},
		{"site named hub", []string{"site", "--site", "hub", "--hub", "nats-leaf://127.0.0.1:7422"}, "reserved"},
		{"site name not a token", []string{"site", "--site", "a.b", "--hub", "nats-leaf://127.0.0.1:7422"}, "--site"},
		{"hub url scheme", []string{"site", "--site", "paris", "--hub", "http://127.0.0.1:7422"}, "scheme"},
		{"missing leaf users file", []string{"hub", "--leaf-users", "/nonexistent/users"}, "--leaf-users"},
		{"leaf users line without password", []string{"hub", "--leaf-users", badUsers}, "line 1"},
		{"leaf tls ca without cert", []string{"hub", "--leaf-tls-ca", "/nonexistent/ca.pem"}, "certificate"},
		{"hub refuses a gateway flag", []string{"hub", "--insecure-leafs", "--mqtt-broker", "tcp://127.0.0.1:1"}, "--mqtt-broker: a flag of the mqtt part"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stderr := runAiot(t, nil, append(tt.args, randomPorts(t)...)...)
			if code == 0 {
				t.Fatalf("exit 0\n%s", stderr)
			}
			if last := lastLine(stderr); !strings.Contains(last, tt.want) {
				t.Fatalf("last line %q does not contain %q", last, tt.want)
			}
		})
	}
}
