package ws_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/ws"
)

// hostOf is host:port of a ws:// URL.
func hostOf(url string) string {
	return strings.SplitN(strings.TrimPrefix(url, "ws://"), "/", 2)[0]
}

func TestNodeOrigin(t *testing.T) {
	tests := []struct {
		name   string
		origin string // "HOST" is replaced by the gateway's host:port
		admit  bool
	}{
		{"no origin", "", true},
		{"same host", "http://HOST", true},                   // Python websocket-client makes it up from the URL
		{"same host, https page", "https://HOST", true},      // gorilla's rule compares hosts only
		{"allow-listed", "https://panel.example:8443", true}, // --ws-allow-origin
		{"allow-listed, default port", "https://panel.example", false},
		{"foreign", "http://evil.example", false},
		{"loopback page on another port", "http://localhost:3000", false},
		{"not a URL", "null", false},
	}
	e := startGateway(t, func(c *ws.Config) { c.AllowOrigins = []string{"https://panel.example:8443"} })
	all := bustest.Subscribe(t, e.nc, "node.>")
	real := dialPeer(t, e.url+"?id=kitchen", nil)
	send(t, real.c, map[string]string{"temperature": "21"})
	if got := nextValue(t, all, "kitchen", "temperature"); got != "21" {
		t.Fatalf("temperature %q, want 21", got)
	}
	refused := int64(0)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", strings.ReplaceAll(tt.origin, "HOST", hostOf(e.url)))
			}
			if tt.admit {
				id := "visitor" + string(rune('a'+i))
				p := dialPeer(t, e.url+"?id="+id, h)
				send(t, p.c, map[string]string{"seen": "1"})
				if got := nextValue(t, all, id, "seen"); got != "1" {
					t.Errorf("%s: seen %q, want 1", id, got)
				}
				return
			}
			// A page of another origin claims the connected node's id.
			code, body := refusedDial(t, e.url+"?id=kitchen", h)
			refused++
			if code != http.StatusForbidden || !strings.Contains(body, "origin") {
				t.Errorf("refused with %d %q, want 403 about the origin", code, body)
			}
			if got := e.gw.Stats().Refusals["origin"]; got != refused {
				t.Errorf("origin refusals %d, want %d", got, refused)
			}
			// The real node is still connected, and only its values went out:
			// nothing reaches the bus before its next value.
			send(t, real.c, map[string]string{"temperature": "22"})
			var got []string
			for !slices.Contains(got, "kitchen.temperature=22") {
				select {
				case m := <-all:
					got = append(got, values(t, []*nats.Msg{m})...)
				case <-time.After(10 * time.Second):
					t.Fatalf("no value of the real node after the refusal; got %v", got)
				}
			}
			if !slices.Equal(got, []string{"kitchen.temperature=22"}) || !real.open() {
				t.Errorf("after the refusal: values %v (open %v), want only kitchen.temperature=22 from the open real node", got, real.open())
			}
		})
	}
}

// tokenFor lists id with a fresh token and returns the token.
func tokenFor(t *testing.T, id string) (string, ws.Tokens) {
	t.Helper()
	tok, line, err := ws.NewToken(id)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := ws.ParseTokens(strings.NewReader("# test\n" + line + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return tok, tokens
}

func TestTakeover(t *testing.T) {
	const (
		replaced = iota
		inUse    // 1008 after the handshake
		denied   // 401 at the handshake
	)
	tests := []struct {
		name     string
		listed   bool                                   // phone is in the tokens file
		oldReads bool                                   // the old socket answers pings
		present  func(tok string) (string, http.Header) // the newcomer's query and headers
		want     int
	}{
		{"token in header replaces a live socket", true, true, bearer, replaced},
		{"token in query replaces a live socket", true, true, query, replaced},
		{"no token refused while the old socket answers", false, true, none, inUse},
		{"no token replaces a dead socket", false, false, none, replaced},
		{"listed id without token", true, true, none, denied},
		{"listed id with a wrong token, old socket dead", true, false, wrong, denied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, tokens := tokenFor(t, "phone")
			e := startGateway(t, func(c *ws.Config) {
				c.TakeoverWait = 300 * time.Millisecond // the dead socket's wait, not an assertion
				if tt.listed {
					c.Tokens = tokens
				}
			})
			all := bustest.Subscribe(t, e.nc, "node.>")
			oldURL := e.url + "?id=phone&token=" + tok
			var old *peer
			if tt.oldReads {
				old = dialPeer(t, oldURL, nil)
			} else {
				old = &peer{c: dial(t, oldURL), closed: make(chan struct{})} // never reads: pings go unanswered
			}
			send(t, old.c, map[string]string{"led": "old"})
			if got := nextValue(t, all, "phone", "led"); got != "old" {
				t.Fatalf("led %q, want old", got)
			}
			q, h := tt.present(tok)
			switch tt.want {
			case replaced:
				cur := dialPeer(t, e.url+"?id=phone"+q, h)
				if !tt.oldReads { // once replaced, it may read its close frame
					bustest.Eventually(t, 10*time.Second, "the takeover", func() error { return bustest.Want(e.gw.Stats().Takeovers == 1) })
					go old.read()
				}
				if code, reason := old.waitClosed(t); code != websocket.ClosePolicyViolation || !strings.Contains(reason, "replaced") {
					t.Errorf("old closed with %d %q, want 1008 replaced", code, reason)
				}
				send(t, cur.c, map[string]string{"led": "new"})
				if got := nextValue(t, all, "phone", "led"); got != "new" {
					t.Errorf("led %q, want new", got)
				}
				if st := e.gw.Stats(); st.Takeovers != 1 || !cur.open() {
					t.Errorf("takeovers %d (new open %v), want 1 and the new one open", st.Takeovers, cur.open())
				}
			case inUse:
				cur := dialPeer(t, e.url+"?id=phone"+q, h)
				if code, reason := cur.waitClosed(t); code != websocket.ClosePolicyViolation || reason != "id in use" {
					t.Errorf("newcomer closed with %d %q, want 1008 id in use", code, reason)
				}
				assertKept(t, e, all, old, "id_in_use")
			case denied:
				code, body := refusedDial(t, e.url+"?id=phone"+q, h)
				if code != http.StatusUnauthorized || !strings.Contains(body, "token") {
					t.Errorf("refused with %d %q, want 401 about the token", code, body)
				}
				if tt.oldReads {
					assertKept(t, e, all, old, "token")
				} else if n := e.gw.Nodes(); len(n) != 1 || e.gw.Stats().Refusals["token"] != 1 {
					t.Errorf("nodes %v, token refusals %d, want phone kept and 1", n, e.gw.Stats().Refusals["token"])
				}
			}
		})
	}
}

// assertKept checks that the old connection still serves its node and that
// the refusal was counted under reason.
func assertKept(t *testing.T, e *env, all <-chan *nats.Msg, old *peer, reason string) {
	t.Helper()
	before := handled(e)
	send(t, old.c, map[string]string{"led": "still old"})
	got := values(t, drain(t, e, all, before+1))
	if !slices.Equal(got, []string{"phone.led=still old"}) || !old.open() {
		t.Errorf("values %v (old open %v), want only phone.led=still old from the open old socket", got, old.open())
	}
	if st := e.gw.Stats(); st.Refusals[reason] != 1 || st.Takeovers != 0 {
		t.Errorf("refusals %v, takeovers %d: want %s=1 and no takeover", st.Refusals, st.Takeovers, reason)
	}
}

func bearer(tok string) (string, http.Header) {
	return "", http.Header{"Authorization": {"Bearer " + tok}}
}
func query(tok string) (string, http.Header) { return "&token=" + tok, nil }
func none(string) (string, http.Header)      { return "", nil }
func wrong(tok string) (string, http.Header) { return "&token=x" + tok, nil }

func TestValueQuotas(t *testing.T) {
	big := strings.Repeat("x", bus.DefaultMaxValueBytes)
	tests := []struct {
		name    string
		change  func(*ws.Config)
		frames  []map[string]string
		want    []string // values published, in order
		reason  string
		refused int64
	}{
		{"oversized value", nil,
			[]map[string]string{{"big": big, "small": "1"}, {"big": "ok"}},
			[]string{"q.small=1", "q.big=ok"}, "value_too_large", 1},
		{"value rate", func(c *ws.Config) { c.ValueRate, c.ValueBurst = 0.001, 3 },
			[]map[string]string{{"a": "1", "b": "1", "c": "1", "d": "1", "e": "1"}},
			[]string{"q.a=1", "q.b=1", "q.c=1"}, "value_rate", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startGateway(t, tt.change)
			all := bustest.Subscribe(t, e.nc, "node.>")
			p := dialPeer(t, e.url+"?id=q", nil)
			bustest.Next(t, all, bus.SubjectNodeCheck, 5*time.Second) // the one of its connection
			for _, f := range tt.frames {
				send(t, p.c, f)
			}
			if got := values(t, drain(t, e, all, int64(len(tt.want))+tt.refused)); !slices.Equal(got, tt.want) {
				t.Errorf("published %v, want %v", got, tt.want)
			}
			if st := e.gw.Stats(); st.Refusals[tt.reason] != tt.refused || st.BadFrames != 0 || !p.open() {
				t.Errorf("refusals %v, bad frames %d, open %v: want %s=%d on an open socket", st.Refusals, st.BadFrames, p.open(), tt.reason, tt.refused)
			}
		})
	}
}

func TestNewNodeIDsPerSource(t *testing.T) {
	// One new id per 1000 s from 127.0.0.1: the second is over the rate.
	e := startGateway(t, func(c *ws.Config) { c.NewIDsPerSource = 0.001 })
	all := bustest.Subscribe(t, e.nc, "node.>")
	first := dialPeer(t, e.url+"?id=first", nil)
	bustest.Next(t, all, bus.SubjectNodeCheck, 5*time.Second) // the one of its connection
	tests := []struct{ name, query string }{
		{"named id", "?id=second"},
		{"generated id", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := refusedDial(t, e.url+tt.query, nil)
			if code != http.StatusTooManyRequests || !strings.Contains(body, "new node ids") {
				t.Errorf("refused with %d %q, want 429 about new node ids", code, body)
			}
			if got := e.gw.Stats().Refusals["new_ids_rate"]; got != int64(i+1) {
				t.Errorf("new_ids_rate refusals %d, want %d", got, i+1)
			}
		})
	}
	// The node already in is served as before.
	send(t, first.c, map[string]string{"v": "1"})
	if got := values(t, drain(t, e, all, 1)); !slices.Equal(got, []string{"first.v=1"}) || !first.open() {
		t.Errorf("values %v (open %v), want first.v=1 from the open first node", got, first.open())
	}
	if n := e.gw.Nodes(); len(n) != 1 || n[0].ID != "first" {
		t.Errorf("nodes %v, want only first", n)
	}
}

func TestServiceStats(t *testing.T) {
	e := startGateway(t, nil)
	refusedDial(t, e.url, http.Header{"Origin": {"http://evil.example"}})
	bustest.Eventually(t, 10*time.Second, "the micro service", func() error {
		m, err := e.nc.Request("$SRV.STATS."+ws.ServiceName, nil, time.Second)
		return bustest.Want(err == nil && strings.Contains(string(m.Data), `"origin":1`))
	})
}

func TestParseTokens(t *testing.T) {
	_, line, err := ws.NewToken("n1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file string
		n          int // nodes listed; -1: an error
	}{
		{"empty", "", 0},
		{"comments and blanks", "# tokens\n\n" + line + "\n", 1},
		{"listed twice", line + "\n" + line + "\n", -1},
		{"the token, not its hash", "n1 " + strings.Repeat("A", 43), -1},
		{"bad id", "a.b " + strings.Fields(line)[1], -1},
		{"three fields", line + " x", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokens, err := ws.ParseTokens(strings.NewReader(tt.file))
			if (err != nil) != (tt.n < 0) || (err == nil && tokens.Len() != tt.n) {
				t.Errorf("ParseTokens = %d nodes, %v; want %d", tokens.Len(), err, tt.n)
			}
		})
	}
}
