package main

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
)

// TestAuthRoles runs `aiot keys`, then the whole demo system with --auth:
// nodes of every protocol still come online (in-process parts sign in with
// their own roles, MQTT nodes anonymously as nodes), a viewer reads but
// cannot command, the dashboard key commands, strangers are refused.
func TestAuthRoles(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	if code, stderr := runAiot(t, nil, "keys", "--dir", keys); code != 0 {
		t.Fatalf("aiot keys: exit %d\n%s", code, stderr)
	}
	args := append([]string{"run", "--demo", "--auth", filepath.Join(keys, "auth.json"),
		"--coap-nodes", "1", "--mqtt-nodes", "1", "--mqttsn-nodes", "1", "--ws-nodes", "1",
		"--sim-coap-from", testLoopback()}, randomPorts(t)...)
	p := startAiot(t, args...)
	natsURL := p.url(t, "nats")
	p.url(t, "http") // announced once the NODES stream exists
	viewerOpt, err := nats.NkeyOptionFromSeed(filepath.Join(keys, "viewer.nk"))
	if err != nil {
		t.Fatal(err)
	}
	viewerInbox := nats.CustomInboxPrefix(bus.InboxPrefix(bus.RoleViewer))
	ids := []string{"sim-coap-1", "sim-mqtt-1", "sim-mqttsn-1", "sim-ws-1"}
	waitOnline(t, natsURL, ids, viewerOpt, viewerInbox)

	t.Run("anonymous refused", func(t *testing.T) {
		if nc, err := nats.Connect(natsURL); err == nil {
			nc.Close()
			t.Fatal("a NATS client without a key was let in")
		}
	})
	t.Run("viewer cannot command", func(t *testing.T) {
		nc, err := nats.Connect(natsURL, viewerOpt, viewerInbox)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_, err = nc.Request(bus.GatewaySet("sim-ws-1", "led"), []byte("1"), 2*time.Second)
		if err == nil {
			t.Fatal("a viewer's command was answered")
		}
	})
	t.Run("dashboard key commands", func(t *testing.T) {
		opt, err := nats.NkeyOptionFromSeed(filepath.Join(keys, "dashboard.nk"))
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(natsURL, opt, nats.CustomInboxPrefix(bus.InboxPrefix(bus.RoleDashboard)))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		m, err := nc.Request(bus.GatewaySet("sim-ws-1", "led"), []byte("1"), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := bus.ParseReply(m.Data); err != nil || !r.OK {
			t.Fatalf("reply %s, %v", m.Data, err)
		}
	})
	t.Run("stranger key refused", func(t *testing.T) {
		id, err := bus.NewIdentity(bus.RoleAdmin)
		if err != nil {
			t.Fatal(err)
		}
		_, err = nats.Connect(natsURL, id.Option())
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") && !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("stranger: %v", err)
		}
	})
}
