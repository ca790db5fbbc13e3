package bus_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

// authServer starts a server requiring auth, with one fresh identity per
// role, and the NODES stream created by the admin.
func authServer(t *testing.T) (*bus.Server, map[bus.Role]*bus.Identity) {
	t.Helper()
	ids := map[bus.Role]*bus.Identity{}
	auth := &bus.Auth{MQTTAnonymous: true}
	for _, r := range bus.Roles() {
		id, err := bus.NewIdentity(r)
		if err != nil {
			t.Fatal(err)
		}
		ids[r] = id
		name := string(r)
		if r == bus.RoleNode {
			name = "n1" // a node user is the node its name says
		}
		auth.Users = append(auth.Users, id.User(name))
	}
	s, err := newServer(t, bus.ServerConfig{Listen: "127.0.0.1:0", MQTTListen: "127.0.0.1:0", Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(connectAs(t, s, ids[bus.RoleAdmin], nil))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := bus.EnsureNodesStream(ctx, js, bus.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	return s, ids
}

// violations collects the permission errors the server sends a connection.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) add(err error) {
	v.mu.Lock()
	v.errs = append(v.errs, err.Error())
	v.mu.Unlock()
}

func (v *violations) has(subject string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, e := range v.errs {
		if strings.Contains(e, `"`+subject+`"`) {
			return true
		}
	}
	return false
}

func connectAs(t *testing.T, s *bus.Server, id *bus.Identity, v *violations) *nats.Conn {
	t.Helper()
	opts := []nats.Option{nats.Name(string(id.Role)), id.Option()}
	if v != nil {
		opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { v.add(err) }))
	}
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", id.Role, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestRolePublishPermissions(t *testing.T) {
	s, ids := authServer(t)
	admin := connectAs(t, s, ids[bus.RoleAdmin], nil)
	tests := []struct {
		role    bus.Role
		subject string
		allowed bool
	}{
		{bus.RoleGateway, "node.n1.temperature", true},
		{bus.RoleGateway, "node.n1.$state", true},
		{bus.RoleGateway, "gateway.check", true},
		{bus.RoleGateway, "$JS.API.STREAM.DELETE.NODES", false},
		{bus.RoleGateway, "$KV.AIOT_QUEUE.bjE.bGVk", true}, // the command queue's bucket
		{bus.RoleGateway, "$JS.API.STREAM.DELETE.KV_AIOT_QUEUE", false},
		{bus.RoleGateway, "$KV.OTHER.x", false},
		{bus.RoleDashboard, "$KV.AIOT_QUEUE.bjE.bGVk", false},
		{bus.RoleDashboard, "gateway.n1.led.set", true},
		{bus.RoleDashboard, "node.n1.temperature", false},
		{bus.RoleDashboard, "gateway.check", false},
		{bus.RoleDashboard, "$JS.API.STREAM.DELETE.NODES", false},
		{bus.RoleViewer, "gateway.n1.led.set", false},
		{bus.RoleViewer, "node.n1.$state", false},
		{bus.RoleNode, "node.n1.temperature", true},
		{bus.RoleNode, "node.n2.temperature", false},
		{bus.RoleNode, "node.n1.$state", false},
		{bus.RoleNode, "gateway.n1.led.set", false},
	}
	for _, tt := range tests {
		t.Run(string(tt.role)+" "+tt.subject, func(t *testing.T) {
			sub, err := admin.SubscribeSync(tt.subject)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = sub.Unsubscribe() }()
			if err := admin.Flush(); err != nil {
				t.Fatal(err)
			}
			var v violations
			nc := connectAs(t, s, ids[tt.role], &v)
			if err := nc.Publish(tt.subject, []byte("x")); err != nil {
				t.Fatal(err)
			}
			if tt.allowed {
				if _, err := sub.NextMsg(5 * time.Second); err != nil {
					t.Fatalf("%s publishing %s: not delivered: %v", tt.role, tt.subject, err)
				}
				return
			}
			// Refused: the server says so to the publisher...
			bustest.Eventually(t, 5*time.Second, fmt.Sprintf("a permissions violation reported for %s", tt.subject), func() error { return bustest.Want(v.has(tt.subject)) })
			// ...and delivered nothing: the server handled the publish before
			// answering nc's PING, and queued any delivery to admin before
			// answering admin's, so after both flushes it would be here.
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := admin.Flush(); err != nil {
				t.Fatal(err)
			}
			if m, err := sub.NextMsg(50 * time.Millisecond); err == nil {
				t.Fatalf("%s publishing %s: delivered %q", tt.role, tt.subject, m.Data)
			}
		})
	}
}

func TestRoleSubscribePermissions(t *testing.T) {
	s, ids := authServer(t)
	tests := []struct {
		role    bus.Role
		subject string
		allowed bool
	}{
		{bus.RoleViewer, "node.>", true},
		{bus.RoleViewer, "gateway.>", false},
		{bus.RoleDashboard, "node.>", true},
		{bus.RoleDashboard, "gateway.*.*.set", false},
		{bus.RoleGateway, "gateway.*.*.set", true},
		{bus.RoleNode, "gateway.n1.led.set", true},
		{bus.RoleNode, "gateway.n2.led.set", false},
		{bus.RoleNode, "node.>", false},
	}
	admin := connectAs(t, s, ids[bus.RoleAdmin], nil)
	for _, tt := range tests {
		t.Run(string(tt.role)+" "+tt.subject, func(t *testing.T) {
			var v violations
			nc := connectAs(t, s, ids[tt.role], &v)
			sub, err := nc.SubscribeSync(tt.subject)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.allowed {
				bustest.Eventually(t, 5*time.Second, fmt.Sprintf("%s subscribing %s: a permissions violation reported", tt.role, tt.subject), func() error { return bustest.Want(v.has(tt.subject)) })
				return
			}
			// Allowed: a sentinel published after the subscription (the flush
			// makes the server have it) arrives, and no violation came first.
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			sentinel := concrete(tt.subject)
			if err := admin.Publish(sentinel, []byte("sentinel")); err != nil {
				t.Fatal(err)
			}
			if m, err := sub.NextMsg(5 * time.Second); err != nil || string(m.Data) != "sentinel" {
				t.Fatalf("%s subscribing %s: sentinel on %s not delivered: %v", tt.role, tt.subject, sentinel, err)
			}
			if v.has(tt.subject) {
				t.Fatalf("%s subscribing %s: permissions violation reported", tt.role, tt.subject)
			}
		})
	}
}

// concrete is a subject that subject's wildcards match.
func concrete(subject string) string {
	tokens := strings.Split(subject, ".")
	for i, tok := range tokens {
		if tok == "*" || tok == ">" {
			tokens[i] = "x"
		}
	}
	return strings.Join(tokens, ".")
}

func TestViewerReadsStreamButCannotCommand(t *testing.T) {
	s, ids := authServer(t)
	gw := connectAs(t, s, ids[bus.RoleGateway], nil)
	if _, err := gw.Subscribe("gateway.n1.led.set", func(m *nats.Msg) { _ = m.Respond([]byte(`{"ok":true}`)) }); err != nil {
		t.Fatal(err)
	}
	if err := gw.Publish("node.n1.temperature", []byte(`{"value":"21.5°C"}`)); err != nil {
		t.Fatal(err)
	}
	_ = gw.Flush()
	for _, role := range []bus.Role{bus.RoleViewer, bus.RoleDashboard} {
		t.Run(string(role)+" reads history", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			js, err := jetstream.New(connectAs(t, s, ids[role], nil))
			if err != nil {
				t.Fatal(err)
			}
			st, err := js.Stream(ctx, bus.NodesStream)
			if err != nil {
				t.Fatal(err)
			}
			var m *jetstream.RawStreamMsg
			for m == nil {
				if m, err = st.GetLastMsgForSubject(ctx, "node.n1.temperature"); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
					t.Fatal(err)
				}
			}
			dctx, dcancel := context.WithTimeout(ctx, time.Second)
			defer dcancel()
			if err := js.DeleteStream(dctx, bus.NodesStream); err == nil {
				t.Fatal("stream deleted by a reader")
			}
		})
	}
	t.Run("dashboard commands", func(t *testing.T) {
		if _, err := connectAs(t, s, ids[bus.RoleDashboard], nil).Request("gateway.n1.led.set", []byte("1"), 5*time.Second); err != nil {
			t.Fatalf("dashboard command refused: %v", err)
		}
	})
	t.Run("viewer cannot command", func(t *testing.T) {
		_, err := connectAs(t, s, ids[bus.RoleViewer], nil).Request("gateway.n1.led.set", []byte("1"), time.Second)
		if err == nil {
			t.Fatal("viewer command answered")
		}
	})
}

func TestUnknownKeyRefused(t *testing.T) {
	s, _ := authServer(t)
	stranger, err := bus.NewIdentity(bus.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(s.ClientURL(), stranger.Option()); err == nil {
		nc.Close()
		t.Fatal("unknown key accepted")
	}
	if nc, err := nats.Connect(s.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("anonymous NATS client accepted")
	}
}

func TestGenerateKeysAndLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if _, err := bus.GenerateKeys(dir, true); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.GenerateKeys(dir, true); err == nil {
		t.Fatal("existing keys overwritten")
	}
	auth, err := bus.LoadAuth(filepath.Join(dir, "auth.json"))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "gateway.nk"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("seed file mode: %v %v", fi, err)
	}
	s, err := newServer(t, bus.ServerConfig{Listen: "127.0.0.1:0", Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	id, err := bus.LoadIdentity(filepath.Join(dir, "gateway.nk"), bus.RoleGateway)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := bus.Connect(bus.ConnectConfig{Name: "gw", URL: s.ClientURL(), Identity: id, Logger: bustest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	bustest.Eventually(t, 5*time.Second, "the generated gateway key accepted", func() error { return bustest.Want(nc.IsConnected()) })
	t.Run("bad auth files", func(t *testing.T) {
		for name, body := range map[string]string{
			"not json":   "{",
			"bad role":   `{"users":[{"name":"x","role":"king","nkey":"` + auth.Users[0].Nkey + `"}]}`,
			"bad nkey":   `{"users":[{"name":"x","role":"viewer","nkey":"UXYZ"}]}`,
			"plain pass": `{"users":[{"name":"x","role":"viewer","password_bcrypt":"secret"}]}`,
			"no secret":  `{"users":[{"name":"x","role":"viewer"}]}`,
		} {
			p := filepath.Join(t.TempDir(), "auth.json")
			if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := bus.LoadAuth(p); err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
	})
}
