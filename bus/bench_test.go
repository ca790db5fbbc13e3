package bus_test

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

// BenchmarkPublishAsNode measures what a node's rights cost the server: one
// publisher sends values on node.n1.temperature as an admin (no
// permissions) and as the node n1 (bus.NodePermissions); Flush at the end
// waits until the server handled them all.
func BenchmarkPublishAsNode(b *testing.B) {
	ids := map[bus.Role]*bus.Identity{}
	auth := &bus.Auth{}
	for _, r := range []bus.Role{bus.RoleAdmin, bus.RoleNode} {
		id, err := bus.NewIdentity(r)
		if err != nil {
			b.Fatal(err)
		}
		ids[r] = id
		name := string(r)
		if r == bus.RoleNode {
			name = "n1"
		}
		auth.Users = append(auth.Users, id.User(name))
	}
	s, err := bus.NewServer(bus.ServerConfig{Listen: "127.0.0.1:0", Auth: auth, DataDir: b.TempDir(), Logger: bustest.Quiet()})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown()
	payload := []byte(`{"value":"21.5°C","ts":"2026-12-02T13:00:00Z"}`)
	for _, r := range []bus.Role{bus.RoleAdmin, bus.RoleNode} {
		b.Run(string(r), func(b *testing.B) {
			nc, err := nats.Connect(s.ClientURL(), ids[r].Option())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				if err := nc.Publish("node.n1.temperature", payload); err != nil {
					b.Fatal(err)
				}
			}
			if err := nc.Flush(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
