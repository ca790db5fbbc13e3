package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/services/dashboard"
)

// withFlag returns args with flag's value replaced (or the pair added).
func withFlag(args []string, flag, value string) []string {
	out := append([]string(nil), args...)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == flag {
			out[i+1] = value
			return out
		}
	}
	return append(out, flag, value)
}

// TestExposureRefused is rows 8 and 10: a hub whose leaf listener takes
// anyone, and a NATS listener other hosts reach without --auth, refuse to
// start with one line that says what to do.
func TestExposureRefused(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"hub with default flags", []string{"hub"}, "--insecure-leafs"},
		{"run: nats on every interface without auth", append([]string{"run"}, withFlag(randomPorts(t), "--nats-listen", "0.0.0.0:0")...), "--insecure-nats"},
		{"run: nats on an empty host without auth", append([]string{"run"}, withFlag(randomPorts(t), "--nats-listen", ":0")...), "--insecure-nats"},
		{"hub: nats on every interface without auth", append([]string{"hub", "--insecure-leafs"}, withFlag(randomPorts(t), "--nats-listen", "0.0.0.0:0")...), "--insecure-nats"},
		{"auth and auth-dir", append([]string{"run", "--auth", "a.json", "--auth-dir", "keys"}, randomPorts(t)...), "give one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stderr := runAiot(t, nil, tt.args...)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s", code, stderr)
			}
			if last := lastLine(stderr); !strings.Contains(last, tt.want) {
				t.Fatalf("last line %q does not contain %q", last, tt.want)
			}
			t.Logf("%s", lastLine(stderr))
		})
	}
}

// TestExposureAccepted is rows 8 and 10: the same exposures start when the
// operator accepts them (--insecure-leafs, --insecure-nats) or signs
// clients in (--auth-dir makes the keys on first start); a hub's /sites
// follows the dashboard's login.
func TestExposureAccepted(t *testing.T) {
	t.Run("hub with --insecure-leafs; /sites behind the dashboard login", func(t *testing.T) {
		users := filepath.Join(t.TempDir(), "users")
		if err := dashboard.SetUser(users, "ann", "ann-pw", dashboard.RoleViewer); err != nil {
			t.Fatal(err)
		}
		p := startAiot(t, append([]string{"hub", "--insecure-leafs", "--leaf-listen", "127.0.0.1:0", "--users", users}, randomPorts(t)...)...)
		base := p.url(t, "http")
		if code := getStatus(t, base+"/sites", nil); code != http.StatusOK {
			t.Fatalf("anonymous viewer on /sites: %d, want 200 (as on /ws)", code)
		}
		p2 := startAiot(t, append([]string{"hub", "--insecure-leafs", "--leaf-listen", "127.0.0.1:0", "--users", users, "--anonymous", "none"}, randomPorts(t)...)...)
		base = p2.url(t, "http")
		if code := getStatus(t, base+"/sites", nil); code != http.StatusUnauthorized {
			t.Fatalf("/sites before login: %d, want 401", code)
		}
		cookie := login(t, base, "ann", "ann-pw")
		if code := getStatus(t, base+"/sites", cookie); code != http.StatusOK {
			t.Fatalf("/sites after login: %d, want 200", code)
		}
	})
	t.Run("run with --insecure-nats", func(t *testing.T) {
		p := startAiot(t, append([]string{"run"}, append(withFlag(randomPorts(t), "--nats-listen", "0.0.0.0:0"), "--insecure-nats")...)...)
		nc, err := nats.Connect(p.url(t, "nats"))
		if err != nil {
			t.Fatalf("anonymous client on an accepted insecure listener: %v", err)
		}
		nc.Close()
	})
	t.Run("run with --auth-dir on every interface", func(t *testing.T) {
		keys := filepath.Join(t.TempDir(), "keys")
		p := startAiot(t, append([]string{"run", "--auth-dir", keys}, withFlag(randomPorts(t), "--nats-listen", "0.0.0.0:0")...)...)
		natsURL := p.url(t, "nats")
		p.url(t, "http") // the NODES stream exists
		if !strings.Contains(p.logText(), "nats keys generated") {
			t.Fatalf("no log line telling where the keys are:\n%s", p.logText())
		}
		if nc, err := nats.Connect(natsURL); err == nil {
			nc.Close()
			t.Fatal("anonymous client let in")
		}
		viewer, err := nats.NkeyOptionFromSeed(filepath.Join(keys, "viewer.nk"))
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(natsURL, viewer, nats.CustomInboxPrefix(bus.InboxPrefix(bus.RoleViewer)))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := js.Stream(ctx, bus.NodesStream); err != nil {
			t.Fatalf("viewer key from --auth-dir: %v", err)
		}
		if _, err := os.Stat(filepath.Join(keys, "admin.nk")); err != nil {
			t.Fatal(err)
		}
	})
}

func getStatus(t *testing.T, url string, cookie *http.Cookie) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// login logs in to the dashboard at base and returns the session cookie.
func login(t *testing.T, base, user, password string) *http.Cookie {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(`{"user":"`+user+`","password":"`+password+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", base)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == dashboard.SessionCookie {
			return c
		}
	}
	t.Fatalf("login: %s, no session cookie", resp.Status)
	return nil
}
