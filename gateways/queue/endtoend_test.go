package queue_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/coap"
	"github.com/goaiot/goaiot/gateways/coap/coapsim"
)

// TestCoAPNodeComesBack queues a command to a CoAP node gone offline; the
// node boots again (coapsim, a new port), its LED turns on and the result
// is published.
func TestCoAPNodeComesBack(t *testing.T) {
	nc := bustest.Connect(t, bustest.StartServer(t))
	states := bustest.Subscribe(t, nc, bus.NodeState("q1"))
	results := bustest.Subscribe(t, nc, bus.SubjectAllCommandResults)
	gw := startCoAP(t, nc)
	startQueue(t, nc, nil)

	_, stopSim := startNode(t, gw)
	waitState(t, states, bus.StateOnline)
	stopSim()
	waitState(t, states, bus.StateOffline)
	followed(t, nc, "q1")

	r := mustQueue(t, nc, "q1", "led", "1", "10m")
	sim, _ := startNode(t, gw)
	res := nextResult(t, results, "q1", "led")
	if res.Command != r.Command || res.Code != bus.CodeDelivered || !res.OK {
		t.Fatalf("result %+v, want %s delivered", res, r.Command)
	}
	if !sim.LED() {
		t.Fatal("delivered, but the node's LED is off")
	}
}

func startCoAP(t *testing.T, nc *nats.Conn) *coap.Gateway {
	t.Helper()
	g, err := coap.New(coap.Config{Conn: nc, Logger: bustest.Logger(t).With("component", "coap"),
		Listen: "127.0.0.1:0", Gateway: "coap@test", NodePort: coap.SourcePort,
		NodeTimeout: 2 * time.Second, CommandTimeout: 5 * time.Second, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, g.Run)
	select {
	case <-g.Ready():
	case <-time.After(wait):
		t.Fatal("coap gateway not ready")
	}
	return g
}

// startNode boots node q1 against g; it beacons every 100 ms.
func startNode(t *testing.T, g *coap.Gateway) (*coapsim.Node, context.CancelFunc) {
	t.Helper()
	n, err := coapsim.New(coapsim.Config{UID: "q1", Listen: "127.0.0.1:0", Gateway: g.Addr().String(),
		PostFromListener: true, BeaconInterval: 100 * time.Millisecond, Logger: bustest.Logger(t).With("component", "sim")})
	if err != nil {
		t.Fatal(err)
	}
	stop := bustest.Run(t, n.Run)
	select {
	case <-n.Ready():
	case <-time.After(wait):
		t.Fatal("node not ready")
	}
	return n, stop
}

func waitState(t *testing.T, ch <-chan *nats.Msg, want string) {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case m := <-ch:
			if s, err := bus.ParseState(m.Data); err == nil && s.State == want {
				return
			}
		case <-deadline:
			t.Fatalf("no $state %s within %s", want, wait)
		}
	}
}

// TestRoles runs the queue signed in as a gateway (its rights suffice)
// and checks who may queue: a dashboard may, a node may not.
func TestRoles(t *testing.T) {
	conns, violations := authServer(t)
	q, _ := startQueue(t, conns[bus.RoleGateway], nil)
	publishState(t, conns[bus.RoleGateway], "n1", bus.StateOffline)
	bustest.Eventually(t, wait, "the queue to follow n1", func() error {
		r, err := queueCommand(t, conns[bus.RoleDashboard], "n1", "probe", "", "bad")
		return bustest.Want(err == nil && r.Code == bus.CodeBadRequest)
	})
	t.Run("dashboard queues", func(t *testing.T) {
		mustQueue(t, conns[bus.RoleDashboard], "n1", "led", "1", "10m")
	})
	for _, role := range []bus.Role{bus.RoleNode, bus.RoleViewer} {
		t.Run(string(role)+" cannot", func(t *testing.T) {
			m := nats.NewMsg(bus.GatewaySet("n1", "led"))
			m.Header.Set(bus.HeaderQueueFor, "10m")
			if err := conns[role].PublishMsg(m); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-violations[role]:
				if !strings.Contains(err.Error(), "Permissions Violation") || !strings.Contains(err.Error(), "gateway.n1.led.set") {
					t.Fatalf("error %v, want a permissions violation on gateway.n1.led.set", err)
				}
			case <-time.After(wait):
				t.Fatal("the server did not refuse the publish")
			}
			if s := q.Stats(); s.Queued != 1 {
				t.Fatalf("stats %+v: only the dashboard's command may wait", s)
			}
		})
	}
}

// authServer starts a server requiring auth and connects once per role
// (the node user is node n1); each connection's async errors (permission
// violations) arrive on its channel.
func authServer(t *testing.T) (map[bus.Role]*nats.Conn, map[bus.Role]chan error) {
	t.Helper()
	ids := map[bus.Role]*bus.Identity{}
	auth := &bus.Auth{}
	for _, r := range bus.Roles() {
		id, err := bus.NewIdentity(r)
		if err != nil {
			t.Fatal(err)
		}
		ids[r] = id
		name := string(r)
		if r == bus.RoleNode {
			name = "n1"
		}
		auth.Users = append(auth.Users, id.User(name))
	}
	s, err := bus.NewServer(bus.ServerConfig{Name: "auth", DataDir: t.TempDir(), Listen: "127.0.0.1:0", Auth: auth,
		Logger: bustest.Logger(t).With("component", "nats-server")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	conns, violations := map[bus.Role]*nats.Conn{}, map[bus.Role]chan error{}
	for r, id := range ids {
		ch := make(chan error, 16)
		violations[r] = ch
		report := nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case ch <- err:
			default:
			}
		})
		nc, err := nats.Connect(s.ClientURL(), nats.Name(string(r)), id.Option(), report)
		if err != nil {
			t.Fatalf("connect as %s: %v", r, err)
		}
		t.Cleanup(nc.Close)
		conns[r] = nc
	}
	js, err := jetstream.New(conns[bus.RoleAdmin])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := bus.EnsureNodesStream(ctx, js, bus.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	return conns, violations
}
