package dashboard

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

// testUsers is a users file with an operator alice (password "alice-pw")
// and a viewer bob ("bob-pw"), hashed at bcrypt's lowest cost to keep tests
// quick; alice's hash is written the way htpasswd -B writes it ($2y$).
func testUsers(t testing.TB) *Users {
	t.Helper()
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	file := "# dashboard users\nalice:" + strings.Replace(hash("alice-pw"), "$2a$", "$2y$", 1) + "\n\nbob:" + hash("bob-pw") + ":viewer\n"
	u, err := ParseUsers(strings.NewReader(file))
	if err != nil {
		t.Fatalf("parse users: %v", err)
	}
	return u
}

// answerCommands makes a NATS responder accept every command to node n1.
func answerCommands(t testing.TB, srv *bus.Server) {
	t.Helper()
	nc := bustest.Connect(t, srv)
	sub, err := nc.Subscribe("gateway.n1.*.set", func(m *nats.Msg) { _ = m.Respond([]byte(`{"ok":true}`)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// dialAs opens /ws with header and returns the browser and its hello.
func dialAs(t testing.TB, td *testDashboard, header http.Header) (*browser, msg) {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(td.wsURL(), header)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { conn.Close() })
	b := &browser{t: t, conn: conn}
	hello := b.next()
	if hello.Type != typeHello {
		t.Fatalf("first message %+v, want hello", hello)
	}
	return b, hello
}

// command sends a led command to n1 and returns the result.
func (b *browser) command() msg {
	b.t.Helper()
	b.send(`{"type":"update","data":{"uid":"n1","endpoint":"led","payload":"1"},"id":"x"}`)
	return b.nextOf(typeResult)
}

// post sends a JSON POST with the Origin of the dashboard's own page.
func post(t testing.TB, client *http.Client, url, body string, header http.Header) (*http.Response, loginStatus) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", strings.TrimSuffix(strings.TrimSuffix(url, "/login"), "/logout"))
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st loginStatus
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("POST %s: %d %q: %v", url, resp.StatusCode, b, err)
	}
	return resp, st
}

// login logs in and returns the session cookie as a request header.
func login(t testing.TB, td *testDashboard, user, password string) http.Header {
	t.Helper()
	resp, st := post(t, td.http.Client(), td.http.URL+"/login", `{"user":"`+user+`","password":"`+password+`"}`, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login %s: %d %+v", user, resp.StatusCode, st)
	}
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie {
			return http.Header{"Cookie": {c.Name + "=" + c.Value}}
		}
	}
	t.Fatalf("login %s: no session cookie", user)
	return nil
}

func TestAnonymousRoles(t *testing.T) {
	srv := bustest.StartServer(t)
	answerCommands(t, srv)
	td := startDashboard(t, srv)
	port := td.http.URL[strings.LastIndex(td.http.URL, ":"):]
	tests := []struct {
		name   string
		header http.Header
		role   string
	}{
		{"browser on this machine", nil, RoleOperator},
		{"localhost page", http.Header{"Origin": {"http://localhost:5173"}}, RoleOperator},
		{"through a reverse proxy", http.Header{"X-Forwarded-For": {"203.0.113.7"}}, RoleViewer},
		{"through a proxy (RFC 7239)", http.Header{"Forwarded": {"for=203.0.113.7"}}, RoleViewer},
		{"DNS rebinding: a foreign name on loopback", http.Header{"Host": {"evil.example" + port}, "Origin": {"http://evil.example" + port}}, RoleViewer},
		{"by a public name", http.Header{"Host": {"dashboard.example" + port}}, RoleViewer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, hello := dialAs(t, td, tt.header)
			if hello.Role != tt.role || hello.User != "" || hello.Login {
				t.Fatalf("hello %+v, want anonymous %s without login", hello, tt.role)
			}
			res := b.command()
			if tt.role == RoleOperator && !res.OK {
				t.Errorf("operator's command refused: %+v", res)
			}
			if tt.role == RoleViewer && (res.OK || !strings.Contains(res.Error, "forbidden: role viewer")) {
				t.Errorf("viewer's command: %+v, want forbidden", res)
			}
		})
	}
	if n := metric(t, td, "aiot_dashboard_command_results_total", "outcome", outcomeForbidden); n != 4 {
		t.Errorf("forbidden commands counted %v, want 4", n)
	}
	t.Run("configured", func(t *testing.T) {
		for _, anon := range []string{AnonymousViewer, AnonymousOperator} {
			tdc := startDashboard(t, srv, func(c *Config) { c.Anonymous = anon })
			if _, hello := dialAs(t, tdc, http.Header{"X-Forwarded-For": {"203.0.113.7"}}); hello.Role != anon {
				t.Errorf("--anonymous %s: hello role %q", anon, hello.Role)
			}
		}
	})
}

func TestLogin(t *testing.T) {
	srv := bustest.StartServer(t)
	answerCommands(t, srv)
	td := startDashboard(t, srv, func(c *Config) { c.Users = testUsers(t) })
	client := td.http.Client()

	t.Run("anonymous is a viewer once users exist, even locally", func(t *testing.T) {
		b, hello := dialAs(t, td, nil)
		if hello.Role != RoleViewer || !hello.Login {
			t.Fatalf("hello %+v", hello)
		}
		if res := b.command(); res.OK || !strings.Contains(res.Error, "forbidden") {
			t.Errorf("anonymous command %+v", res)
		}
	})
	t.Run("cookie", func(t *testing.T) {
		resp, st := post(t, client, td.http.URL+"/login", `{"user":"alice","password":"alice-pw"}`, nil)
		if resp.StatusCode != 200 || st.User != "alice" || st.Role != RoleOperator {
			t.Fatalf("login: %d %+v", resp.StatusCode, st)
		}
		cookies := resp.Cookies()
		if len(cookies) != 1 {
			t.Fatalf("cookies %v", cookies)
		}
		c := cookies[0]
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure || c.Path != "/" || len(c.Value) < 40 || c.MaxAge <= 0 {
			t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, not Secure over http, Path /, a long random value, an expiry", c)
		}
		if resp2, _ := post(t, client, td.http.URL+"/login", `{"user":"alice","password":"alice-pw"}`, nil); resp2.Cookies()[0].Value == c.Value {
			t.Error("two logins got the same session id")
		}
	})
	t.Run("operator sends commands", func(t *testing.T) {
		b, hello := dialAs(t, td, login(t, td, "alice", "alice-pw"))
		if hello.Role != RoleOperator || hello.User != "alice" {
			t.Fatalf("hello %+v", hello)
		}
		if res := b.command(); !res.OK {
			t.Errorf("alice's command %+v", res)
		}
	})
	t.Run("viewer account sends none", func(t *testing.T) {
		b, hello := dialAs(t, td, login(t, td, "bob", "bob-pw"))
		if hello.Role != RoleViewer || hello.User != "bob" {
			t.Fatalf("hello %+v", hello)
		}
		if res := b.command(); res.OK || !strings.Contains(res.Error, "forbidden: role viewer") {
			t.Errorf("bob's command %+v", res)
		}
	})
	t.Run("refused", func(t *testing.T) {
		tests := []struct {
			name   string
			path   string
			body   string
			header http.Header
			code   int
		}{
			{"wrong password", "/login", `{"user":"alice","password":"nope"}`, nil, http.StatusUnauthorized},
			{"unknown user", "/login", `{"user":"mallory","password":"alice-pw"}`, nil, http.StatusUnauthorized},
			{"empty password", "/login", `{"user":"alice","password":""}`, nil, http.StatusUnauthorized},
			{"not JSON", "/login", `user=alice`, nil, http.StatusBadRequest},
			{"too big", "/login", `{"user":"alice","password":"` + strings.Repeat("x", 5000) + `"}`, nil, http.StatusBadRequest},
			{"form post (CSRF)", "/login", `{"user":"alice","password":"alice-pw"}`, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, http.StatusUnsupportedMediaType},
			{"foreign page (CSRF)", "/login", `{"user":"alice","password":"alice-pw"}`, http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden},
			{"foreign logout (CSRF)", "/logout", `{}`, http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, st := post(t, client, td.http.URL+tt.path, tt.body, tt.header)
				if resp.StatusCode != tt.code || st.Error == "" || len(resp.Cookies()) != 0 {
					t.Errorf("%d %+v cookies %v, want %d, an error and no cookie", resp.StatusCode, st, resp.Cookies(), tt.code)
				}
			})
		}
		if n := metric(t, td, "aiot_dashboard_logins_total", "outcome", loginBad); n != 3 {
			t.Errorf("bad logins counted %v, want 3", n)
		}
	})
	t.Run("GET /login says who", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, td.http.URL+"/login", nil)
		req.Header = login(t, td, "bob", "bob-pw")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st loginStatus
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || st.User != "bob" || st.Role != RoleViewer || !st.Login {
			t.Errorf("status %+v (%v)", st, err)
		}
	})
	t.Run("logout ends the session, also on open sockets", func(t *testing.T) {
		cookie := login(t, td, "alice", "alice-pw")
		b, _ := dialAs(t, td, cookie)
		resp, st := post(t, client, td.http.URL+"/logout", `{}`, cookie)
		if resp.StatusCode != 200 || st.User != "" || st.Role != RoleViewer {
			t.Fatalf("logout: %d %+v", resp.StatusCode, st)
		}
		if c := resp.Cookies(); len(c) != 1 || c[0].MaxAge >= 0 {
			t.Errorf("logout cookies %v: want the cookie cleared", c)
		}
		if res := b.command(); res.OK || !strings.Contains(res.Error, "session ended") {
			t.Errorf("command after logout %+v", res)
		}
		if _, hello := dialAs(t, td, cookie); hello.Role != RoleViewer || hello.User != "" {
			t.Errorf("old cookie still signs in: %+v", hello)
		}
	})
}

func TestLoginModes(t *testing.T) {
	srv := bustest.StartServer(t)
	t.Run("anonymous none: log in first", func(t *testing.T) {
		td := startDashboard(t, srv, func(c *Config) { c.Users, c.Anonymous = testUsers(t), AnonymousNone })
		_, resp, err := websocket.DefaultDialer.Dial(td.wsURL(), nil)
		if err == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("anonymous handshake: %v %v, want 401", err, resp)
		}
		if _, hello := dialAs(t, td, login(t, td, "bob", "bob-pw")); hello.Role != RoleViewer {
			t.Errorf("hello %+v", hello)
		}
		if n := metric(t, td, "aiot_dashboard_unauthenticated_total"); n != 1 {
			t.Errorf("unauthenticated counted %v", n)
		}
	})
	t.Run("read-only caps operators", func(t *testing.T) {
		td := startDashboard(t, srv, func(c *Config) { c.Users, c.ReadOnly = testUsers(t), true })
		b, hello := dialAs(t, td, login(t, td, "alice", "alice-pw"))
		if hello.Role != RoleViewer || hello.User != "alice" {
			t.Fatalf("hello %+v", hello)
		}
		if res := b.command(); res.OK || !strings.Contains(res.Error, "read-only") {
			t.Errorf("command %+v", res)
		}
	})
	t.Run("no users: login is off", func(t *testing.T) {
		td := startDashboard(t, srv)
		if resp, st := post(t, td.http.Client(), td.http.URL+"/login", `{"user":"a","password":"b"}`, nil); resp.StatusCode != http.StatusNotFound || st.Login {
			t.Errorf("%d %+v", resp.StatusCode, st)
		}
	})
	t.Run("sessions expire", func(t *testing.T) {
		td := startDashboard(t, srv, func(c *Config) { c.Users, c.SessionTTL = testUsers(t), 300*time.Millisecond })
		cookie := login(t, td, "alice", "alice-pw")
		deadline := time.Now().Add(wait)
		for {
			if _, hello := dialAs(t, td, cookie); hello.User == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("session never expired")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	t.Run("password guessing is rate limited", func(t *testing.T) {
		td := startDashboard(t, srv, func(c *Config) { c.Users, c.LoginRate = testUsers(t), 1 })
		limited := 0
		for range 10 {
			resp, st := post(t, td.http.Client(), td.http.URL+"/login", `{"user":"alice","password":"guess"}`, nil)
			if resp.StatusCode == http.StatusTooManyRequests {
				limited++
				if st.Error == "" || resp.Header.Get("Retry-After") == "" {
					t.Errorf("429 without reason or Retry-After: %+v", st)
				}
			}
		}
		if limited < 5 {
			t.Errorf("%d of 10 quick guesses limited, want most", limited)
		}
		if n := metric(t, td, "aiot_dashboard_logins_total", "outcome", loginLimited); int(n) != limited {
			t.Errorf("limited logins counted %v, saw %d", n, limited)
		}
		t.Logf("10 quick password guesses: %d refused with 429", limited)
	})
	t.Run("TLS: the cookie is Secure, /ws works as wss", func(t *testing.T) {
		d, err := New(Config{Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t), Users: testUsers(t)})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewTLSServer(d.Handler())
		t.Cleanup(hs.Close)
		resp, st := post(t, hs.Client(), hs.URL+"/login", `{"user":"alice","password":"alice-pw"}`, nil)
		if resp.StatusCode != 200 || len(resp.Cookies()) != 1 || !resp.Cookies()[0].Secure {
			t.Fatalf("login over TLS: %d %+v cookies %v", resp.StatusCode, st, resp.Cookies())
		}
		if resp.TLS == nil {
			t.Fatal("not TLS")
		}
		close(d.ready) // not running: no snapshot needed for the hello
		dialer := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: hs.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}}
		conn, _, err := dialer.Dial("wss"+strings.TrimPrefix(hs.URL, "https")+"/ws?ext=1",
			http.Header{"Cookie": {SessionCookie + "=" + resp.Cookies()[0].Value}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		b := &browser{t: t, conn: conn}
		if hello := b.next(); hello.User != "alice" || hello.Role != RoleOperator {
			t.Errorf("hello over wss %+v", hello)
		}
	})
}

func TestUsersFile(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	h := string(hash)
	tests := []struct {
		name string
		file string
		n    int
		err  string
	}{
		{"htpasswd -B line", "ann:" + strings.Replace(h, "$2a$", "$2y$", 1) + "\n", 1, ""},
		{"with roles and comments", "# x\nann:" + h + ":viewer\n\nbob:" + h + ":operator\n", 2, ""},
		{"bad role", "ann:" + h + ":admin\n", 0, `role "admin"`},
		{"not bcrypt", "ann:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", 0, "not a bcrypt hash"},
		{"md5 apr1", "ann:$apr1$x$y\n", 0, "not a bcrypt hash"},
		{"twice", "ann:" + h + "\nann:" + h + "\n", 0, "given twice"},
		{"no hash", "ann\n", 0, "want name:bcrypt-hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := ParseUsers(strings.NewReader(tt.file))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || u.Len() != tt.n {
				t.Fatalf("%v, %d users", err, u.Len())
			}
			if _, ok := u.authenticate("ann", "pw"); !ok {
				t.Error("ann's password refused")
			}
		})
	}
	t.Run("SetUser adds and replaces, keeps the rest, mode 0600", func(t *testing.T) {
		defer func(c int) { hashCost = c }(hashCost)
		hashCost = bcrypt.MinCost
		path := filepath.Join(t.TempDir(), "users")
		if err := os.WriteFile(path, []byte("# keep me\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct{ name, pw, role string }{{"ann", "one", RoleViewer}, {"bob", "two", RoleOperator}, {"ann", "three", RoleOperator}} {
			if err := SetUser(path, step.name, step.pw, step.role); err != nil {
				t.Fatal(err)
			}
		}
		data, _ := os.ReadFile(path)
		u, err := LoadUsers(path)
		if err != nil || u.Len() != 2 || !bytes.HasPrefix(data, []byte("# keep me\n")) {
			t.Fatalf("%v %d users:\n%s", err, u.Len(), data)
		}
		if ann, ok := u.authenticate("ann", "three"); !ok || ann.Role != RoleOperator {
			t.Errorf("ann %+v %v", ann, ok)
		}
		if _, ok := u.authenticate("ann", "one"); ok {
			t.Error("ann's old password still works")
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v", fi.Mode().Perm())
		}
		if err := SetUser(path, "a:b", "x", RoleViewer); err == nil {
			t.Error("a name with ':' accepted")
		}
	})
}
