package bus_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

// publishValues has a gateway store n values of node.n1.led and returns the
// gateway's connection.
func publishValues(t *testing.T, s *bus.Server, id *bus.Identity, n int) *nats.Conn {
	t.Helper()
	gw := connectAs(t, s, id, nil)
	for i := range n {
		if err := gw.Publish("node.n1.led", fmt.Appendf(nil, `{"value":"%d"}`, i%2)); err != nil {
			t.Fatal(err)
		}
	}
	if err := gw.Flush(); err != nil {
		t.Fatal(err)
	}
	return gw
}

// streamState is the NODES stream's message and consumer counts, as the
// admin sees them.
func streamState(t *testing.T, s *bus.Server, admin *bus.Identity) jetstream.StreamState {
	t.Helper()
	js, err := jetstream.New(connectAs(t, s, admin, nil))
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), bus.NodesStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State
}

// readHistory reads node.n1.led's history with an ordered consumer, the
// honest reader's way, and returns how many values it got.
func readHistory(t *testing.T, js jetstream.JetStream) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, bus.NodesStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"node.n1.led"}})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	batch, err := c.FetchNoWait(1000)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	n := 0
	for range batch.Messages() {
		n++
	}
	return n
}

// TestReaderConsumerLimits is row 7: a viewer or dashboard key may make
// consumers on NODES, but none that lasts, none past the bound, and none
// through the durable endpoint; the stream keeps every value and ordered
// consumers keep working.
func TestReaderConsumerLimits(t *testing.T) {
	s, ids := authServer(t)
	publishValues(t, s, ids[bus.RoleGateway], 10)
	for _, role := range []bus.Role{bus.RoleViewer, bus.RoleDashboard} {
		t.Run(string(role), func(t *testing.T) {
			var v violations
			nc := connectAs(t, s, ids[role], &v)
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			t.Run("legacy durable endpoint refused by permission", func(t *testing.T) {
				subject := "$JS.API.CONSUMER.DURABLE.CREATE.NODES.d1"
				_, err := nc.Request(subject, []byte(`{"stream_name":"NODES","config":{"durable_name":"d1"}}`), 500*time.Millisecond)
				if err == nil {
					t.Fatal("durable created through the durable endpoint")
				}
				bustest.Eventually(t, 5*time.Second, fmt.Sprintf("a permissions violation for %s", subject), func() error { return bustest.Want(v.has(subject)) })
			})
			t.Run("a durable does not outlive its idle limit", func(t *testing.T) {
				c, err := js.CreateConsumer(ctx, bus.NodesStream, jetstream.ConsumerConfig{Durable: "keep-" + string(role)})
				if err != nil {
					t.Fatal(err)
				}
				if got := c.CachedInfo().Config.InactiveThreshold; got != bus.NodesConsumerIdle {
					t.Fatalf("durable's inactive threshold %s, want %s", got, bus.NodesConsumerIdle)
				}
				_, err = js.CreateConsumer(ctx, bus.NodesStream, jetstream.ConsumerConfig{Durable: "forever-" + string(role), InactiveThreshold: 24 * time.Hour})
				var apiErr *jetstream.APIError
				if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10153 {
					t.Fatalf("durable asking for a day: %v, want 10153 consumer inactive threshold exceeds system limit", err)
				}
				if err := js.DeleteConsumer(ctx, bus.NodesStream, "keep-"+string(role)); err != nil {
					t.Fatalf("deleting its own consumer: %v", err)
				}
			})
			t.Run("consumer names are not listed", func(t *testing.T) {
				subject := "$JS.API.CONSUMER.NAMES.NODES"
				if _, err := nc.Request(subject, nil, 500*time.Millisecond); err == nil {
					t.Fatal("consumer names listed")
				}
				bustest.Eventually(t, 5*time.Second, fmt.Sprintf("a permissions violation for %s", subject), func() error { return bustest.Want(v.has(subject)) })
			})
		})
	}
	t.Run("300 durables: refused past the bound", func(t *testing.T) {
		js, err := jetstream.New(connectAs(t, s, ids[bus.RoleViewer], nil))
		if err != nil {
			t.Fatal(err)
		}
		created := 0
		var last error
		for i := range 300 {
			_, last = js.CreateConsumer(context.Background(), bus.NodesStream, jetstream.ConsumerConfig{Durable: fmt.Sprintf("d%d", i)})
			if last != nil {
				break
			}
			created++
		}
		if !errors.Is(last, jetstream.ErrMaximumConsumersLimit) {
			t.Fatalf("after %d consumers: %v, want %v", created, last, jetstream.ErrMaximumConsumersLimit)
		}
		if created > bus.MaxNodesConsumers {
			t.Fatalf("%d consumers created, bound %d", created, bus.MaxNodesConsumers)
		}
		t.Logf("viewer: %d consumers created, then %q", created, last)
		if st := streamState(t, s, ids[bus.RoleAdmin]); st.Msgs != 10 {
			t.Fatalf("NODES holds %d values, want 10", st.Msgs)
		}
		// Once the attacker's consumers are gone, honest readers read again.
		admin, _ := jetstream.New(connectAs(t, s, ids[bus.RoleAdmin], nil))
		for i := range created {
			if err := admin.DeleteConsumer(context.Background(), bus.NodesStream, fmt.Sprintf("d%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		if n := readHistory(t, js); n != 10 {
			t.Fatalf("viewer read %d values with an ordered consumer, want 10", n)
		}
	})
}

// TestPushConsumerOntoCommand is row 7: a viewer points a push consumer at
// a command subject (and at the JetStream API). Nothing it delivers passes
// for a command, and the stream is intact.
func TestPushConsumerOntoCommand(t *testing.T) {
	s, ids := authServer(t)
	gw := publishValues(t, s, ids[bus.RoleGateway], 3)
	cmds, err := gw.SubscribeSync(bus.GatewaySet("n1", "led")) // literal: the consumer sees interest
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Flush(); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(connectAs(t, s, ids[bus.RoleViewer], nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, deliver := range []string{bus.GatewaySet("n1", "led"), "$JS.API.STREAM.PURGE.NODES"} {
		if _, err := js.CreateConsumer(context.Background(), bus.NodesStream, jetstream.ConsumerConfig{DeliverSubject: deliver, AckPolicy: jetstream.AckNonePolicy}); err != nil {
			t.Fatalf("push consumer onto %s: %v (the server does not check deliver subjects: this test shows the receiver's guard)", deliver, err)
		}
	}
	for i := range 3 {
		m, err := cmds.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
		if bus.IsCommandRequest(m) {
			t.Fatalf("JetStream delivery taken for a command: subject %s reply %q", m.Subject, m.Reply)
		}
	}
	if st := streamState(t, s, ids[bus.RoleAdmin]); st.Msgs != 3 {
		t.Fatalf("NODES holds %d values, want 3", st.Msgs)
	}
	t.Run("a real request still is a command", func(t *testing.T) {
		dash := connectAs(t, s, ids[bus.RoleDashboard], nil)
		sub, err := gw.SubscribeSync(bus.GatewaySet("n2", "led"))
		if err != nil {
			t.Fatal(err)
		}
		_ = gw.Flush()
		if err := dash.PublishRequest(bus.GatewaySet("n2", "led"), dash.NewRespInbox(), []byte("1")); err != nil {
			t.Fatal(err)
		}
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !bus.IsCommandRequest(m) {
			t.Fatalf("dashboard request refused: reply %q", m.Reply)
		}
	})
}

func TestIsCommandRequest(t *testing.T) {
	tests := []struct {
		name string
		msg  *nats.Msg
		want bool
	}{
		{"request", &nats.Msg{Subject: "gateway.n1.led.set", Reply: "_INBOX_dashboard.x.y"}, true},
		{"no reply", &nats.Msg{Subject: "gateway.n1.led.set"}, false},
		{"jetstream ack reply", &nats.Msg{Subject: "gateway.n1.led.set", Reply: "$JS.ACK.NODES.c.1.1.1.1.0"}, false},
		{"flow control", &nats.Msg{Subject: "gateway.n1.led.set", Reply: "$JS.FC.NODES.x"}, false},
		{"heartbeat", &nats.Msg{Subject: "gateway.n1.led.set", Reply: "_INBOX.x", Header: nats.Header{"Status": {"100"}}}, false},
		{"stream header", &nats.Msg{Subject: "gateway.n1.led.set", Reply: "_INBOX.x", Header: nats.Header{nats.JSStream: {"NODES"}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bus.IsCommandRequest(tt.msg); got != tt.want {
				t.Fatalf("IsCommandRequest = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestInboxesPerRole is row 7: no role reads or answers another's replies,
// and each role's own requests still get their answers.
func TestInboxesPerRole(t *testing.T) {
	s, ids := authServer(t)
	gw := connectAs(t, s, ids[bus.RoleGateway], nil)
	if _, err := gw.Subscribe(bus.GatewaySet("n1", "led"), func(m *nats.Msg) { _ = m.Respond([]byte(`{"ok":true}`)) }); err != nil {
		t.Fatal(err)
	}
	_ = gw.Flush()
	for _, tt := range []struct {
		role    bus.Role
		subject string
	}{
		{bus.RoleViewer, "_INBOX.>"},
		{bus.RoleViewer, "_INBOX_dashboard.>"},
		{bus.RoleDashboard, "_INBOX.>"},
		{bus.RoleGateway, "_INBOX_dashboard.>"},
	} {
		t.Run(string(tt.role)+" reads "+tt.subject, func(t *testing.T) {
			var v violations
			nc := connectAs(t, s, ids[tt.role], &v)
			if _, err := nc.SubscribeSync(tt.subject); err != nil {
				t.Fatal(err)
			}
			_ = nc.Flush()
			bustest.Eventually(t, 5*time.Second, fmt.Sprintf("%s refused subscribing %s", tt.role, tt.subject), func() error { return bustest.Want(v.has(tt.subject)) })
		})
		t.Run(string(tt.role)+" forges "+tt.subject, func(t *testing.T) {
			var v violations
			nc := connectAs(t, s, ids[tt.role], &v)
			subject := strings.TrimSuffix(tt.subject, ">") + "forged"
			_ = nc.Publish(subject, []byte(`{"ok":true}`))
			_ = nc.Flush()
			bustest.Eventually(t, 5*time.Second, fmt.Sprintf("%s refused publishing %s", tt.role, subject), func() error { return bustest.Want(v.has(subject)) })
		})
	}
	t.Run("dashboard's command answered in its own inbox", func(t *testing.T) {
		m, err := connectAs(t, s, ids[bus.RoleDashboard], nil).Request(bus.GatewaySet("n1", "led"), []byte("1"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(m.Subject, bus.InboxPrefix(bus.RoleDashboard)+".") {
			t.Fatalf("answered on %s", m.Subject)
		}
	})
}

// TestViewerWithNatsCLI is row 7 with the nats CLI and the viewer key from
// `aiot keys`: a push consumer onto a command and a durable beyond the idle
// limit are refused or bounded; `nats stream view` and `nats sub` work.
func TestViewerWithNatsCLI(t *testing.T) {
	cli := bustest.Peer(t, "nats")
	dir := filepath.Join(t.TempDir(), "keys")
	auth, err := bus.GenerateKeys(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServer(t, bus.ServerConfig{Listen: "127.0.0.1:0", Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := bus.LoadIdentity(filepath.Join(dir, "admin.nk"), bus.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	gwID, err := bus.LoadIdentity(filepath.Join(dir, "gateway.nk"), bus.RoleGateway)
	if err != nil {
		t.Fatal(err)
	}
	ajs, err := jetstream.New(connectAs(t, s, admin, nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.EnsureNodesStream(context.Background(), ajs, bus.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	publishValues(t, s, gwID, 4)
	run := func(args ...string) (string, error) {
		base := []string{"--server", s.ClientURL(), "--nkey", filepath.Join(dir, "viewer.nk"),
			"--inbox-prefix", bus.InboxPrefix(bus.RoleViewer), "--timeout", "3s"}
		out, err := exec.Command(cli, append(base, args...)...).CombinedOutput()
		return string(out), err
	}
	t.Run("durable asking for a day refused", func(t *testing.T) {
		out, err := run("consumer", "add", "NODES", "forever", "--pull", "--defaults", "--inactive-threshold", "24h")
		if err == nil || !strings.Contains(out, "10153") {
			t.Fatalf("nats consumer add: %v\n%s", err, out)
		}
	})
	t.Run("push consumer onto a command: created, but never a command", func(t *testing.T) {
		gw, err := connectAs(t, s, gwID, nil).SubscribeSync(bus.GatewaySet("n1", "led"))
		if err != nil {
			t.Fatal(err)
		}
		out, err := run("consumer", "add", "NODES", "push", "--target", bus.GatewaySet("n1", "led"), "--defaults")
		if err != nil {
			t.Fatalf("nats consumer add --target: %v\n%s", err, out)
		}
		for range 4 { // the stored values, delivered onto the command subject
			m, err := gw.NextMsg(10 * time.Second)
			if err != nil {
				t.Fatalf("delivery: %v", err)
			}
			if bus.IsCommandRequest(m) {
				t.Fatalf("a JetStream delivery passes for a command: reply %q", m.Reply)
			}
		}
	})
	t.Run("stream view", func(t *testing.T) {
		script := bustest.Peer(t, "script") // stream view wants a terminal
		line := strings.Join([]string{cli, "--server", s.ClientURL(), "--nkey", filepath.Join(dir, "viewer.nk"),
			"--inbox-prefix", bus.InboxPrefix(bus.RoleViewer), "stream", "view", "NODES"}, " ")
		out, err := exec.Command(script, "-qec", line, "/dev/null").CombinedOutput()
		if err != nil || strings.Count(string(out), "node.n1.led") != 4 {
			t.Fatalf("nats stream view NODES: %v\n%s", err, out)
		}
	})
	t.Run("sub from the stream", func(t *testing.T) {
		out, err := run("sub", "node.>", "--stream", "NODES", "--all", "--count", "4")
		if err != nil || strings.Count(out, "node.n1.led") != 4 {
			t.Fatalf("nats sub --stream NODES: %v\n%s", err, out)
		}
	})
	if st := streamState(t, s, admin); st.Msgs != 4 {
		t.Fatalf("NODES holds %d values, want 4", st.Msgs)
	}
}
