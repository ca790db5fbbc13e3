package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goaiot/goaiot/internal/tlsconfig"
	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
)

// trust is a TLS client config that trusts the PEM certificate in file.
func trust(t *testing.T, file string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s: no certificate", file)
	}
	return &tls.Config{RootCAs: pool}
}

// getJSON GETs url with client and decodes the JSON answer into v.
func getJSON(t *testing.T, client *http.Client, url string, v any) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(v) != nil {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
}

// TestHTTPSelfSigned: --tls-self-signed serves the dashboard, /ws and
// /healthz over TLS with a certificate kept in the data dir; a real TLS
// client that trusts it gets in, a plain HTTP request does not.
func TestHTTPSelfSigned(t *testing.T) {
	ports := randomPorts(t)
	data := ports[len(ports)-3] // --data DIR
	p := startAiot(t, append([]string{"run", "--tls-self-signed"}, ports...)...)
	url := p.url(t, "http")
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("http listener %s, want https", url)
	}
	certFile := filepath.Join(data, "tls", "self-signed.crt")
	if fi, err := os.Stat(filepath.Join(data, "tls", "self-signed.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	conf := trust(t, certFile)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: conf}, Timeout: 10 * time.Second}
	var health struct{ Status string }
	getJSON(t, client, url+"/healthz", &health)
	if health.Status != "ok" {
		t.Errorf("healthz %+v", health)
	}
	dialer := websocket.Dialer{TLSClientConfig: conf}
	conn, _, err := dialer.Dial("wss"+strings.TrimPrefix(url, "https")+"/ws?ext=1", nil)
	if err != nil {
		t.Fatalf("wss: %v", err)
	}
	var hello struct{ Type, Role string }
	if err := conn.ReadJSON(&hello); err != nil || hello.Type != "hello" || hello.Role != "operator" {
		t.Errorf("hello %+v %v", hello, err)
	}
	conn.Close()
	if resp, err := http.Get("http" + strings.TrimPrefix(url, "https") + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP answered 200 on the TLS listener")
		}
	}
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get(url + "/healthz"); err == nil {
		t.Error("a client that does not trust the certificate got in")
	}
}

// TestNATSTLS: --nats-tls-cert makes the embedded NATS require TLS; a plain
// client is refused, a TLS client that trusts the certificate gets in, and
// `aiot dashboard --nats tls://… --nats-ca` (a separate process) connects;
// --tls-cert/--tls-key serve HTTP with the same certificate.
func TestNATSTLS(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, _, err := tlsconfig.MakeSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startAiot(t, append([]string{"run", "--nats-tls-cert", cert, "--nats-tls-key", key, "--tls-cert", cert, "--tls-key", key}, randomPorts(t)...)...)
	natsURL := p.url(t, "nats")
	httpURL := p.url(t, "http")
	if !strings.HasPrefix(natsURL, "tls://") {
		t.Errorf("nats listener announced as %s, want tls://", natsURL)
	}
	hostPort := natsURL[strings.Index(natsURL, "://")+3:]

	t.Run("plain client refused", func(t *testing.T) {
		if nc, err := nats.Connect("nats://"+hostPort, nats.Timeout(3*time.Second)); err == nil {
			nc.Close()
			t.Fatal("a client without TLS was let in")
		}
	})
	t.Run("TLS client", func(t *testing.T) {
		nc, err := nats.Connect("tls://"+hostPort, nats.Secure(trust(t, cert)))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if !nc.TLSRequired() {
			t.Error("connection not TLS")
		}
		if _, err := nc.Request("$SRV.PING.aiot-dashboard", nil, 5*time.Second); err != nil {
			t.Errorf("in-process dashboard not reachable over the TLS server: %v", err)
		}
	})
	t.Run("role process with --nats-ca", func(t *testing.T) {
		d := startAiot(t, "dashboard", "--nats", "tls://"+hostPort, "--nats-ca", cert, "--http", "127.0.0.1:0", "--log-level", "info")
		url := d.url(t, "http")
		client := &http.Client{Timeout: 5 * time.Second}
		deadline := time.Now().Add(20 * time.Second)
		for {
			var h struct{ NATS string }
			getJSON(t, client, url+"/healthz", &h)
			if h.NATS == "CONNECTED" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("dashboard never connected over TLS: %s", h.NATS)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	t.Run("HTTP with --tls-cert", func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: trust(t, cert)}, Timeout: 10 * time.Second}
		var h struct{ Status string }
		getJSON(t, client, httpURL+"/healthz", &h)
	})
}

// TestPasswdAndLogin: `aiot passwd` writes a users file that `aiot run
// --users` logs browsers in with; the anonymous local browser is then a
// viewer.
func TestPasswdAndLogin(t *testing.T) {
	bin, err := buildAiot()
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(t.TempDir(), "users")
	for _, u := range []struct{ name, role, pw string }{{"ops", "operator", "s3cret pass"}, {"guest", "viewer", "guest-pw"}} {
		cmd := exec.Command(bin, "passwd", "--users", users, "--role", u.role, u.name)
		cmd.Stdin = strings.NewReader(u.pw + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("aiot passwd: %v\n%s", err, out)
		}
	}
	data, _ := os.ReadFile(users)
	if !bytes.Contains(data, []byte("ops:$2a$")) || bytes.Contains(data, []byte("s3cret")) {
		t.Fatalf("users file:\n%s", data)
	}
	p := startAiot(t, append([]string{"run", "--users", users}, randomPorts(t)...)...)
	url := p.url(t, "http")
	login := func(user, pw string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, url+"/login", strings.NewReader(`{"user":"`+user+`","password":"`+pw+`"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st struct{ Role string }
		_ = json.NewDecoder(resp.Body).Decode(&st)
		return resp.StatusCode, st.Role
	}
	if code, role := login("ops", "s3cret pass"); code != 200 || role != "operator" {
		t.Errorf("ops: %d %s", code, role)
	}
	if code, role := login("guest", "guest-pw"); code != 200 || role != "viewer" {
		t.Errorf("guest: %d %s", code, role)
	}
	if code, _ := login("ops", "guess"); code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", code)
	}
	var st struct{ Role string }
	getJSON(t, http.DefaultClient, url+"/login", &st)
	if st.Role != "viewer" {
		t.Errorf("anonymous local browser with a users file: %s, want viewer", st.Role)
	}
}
