package queue_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/queue"
	"github.com/goaiot/goaiot/gateways/queue/queuetest"
)

func TestNew(t *testing.T) {
	nc := bustest.Connect(t, bustest.StartServer(t))
	tests := []struct {
		name string
		cfg  queue.Config
		ok   bool
	}{
		{"defaults", queue.Config{Conn: nc, Logger: bustest.Quiet()}, true},
		{"no conn", queue.Config{Logger: bustest.Quiet()}, false},
		{"no logger", queue.Config{Conn: nc}, false},
		{"negative max-for", queue.Config{Conn: nc, Logger: bustest.Quiet(), MaxFor: -time.Second}, false},
		{"negative cap", queue.Config{Conn: nc, Logger: bustest.Quiet(), MaxNodes: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := queue.New(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New: err %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestWhoAnswers(t *testing.T) {
	s := bustest.StartServer(t)
	nc := bustest.Connect(t, s)
	q, _ := startQueue(t, nc, nil)
	offline(t, nc, "off1")
	publishState(t, nc, "on1", bus.StateOnline)
	got := gateway(t, nc, "on1", bus.Reply{OK: true})

	t.Run("a node never seen is nobody's: no_gateway, queued or not", func(t *testing.T) {
		for _, d := range []string{"1m", ""} {
			m := nats.NewMsg(bus.GatewaySet("ghost", "led"))
			if d != "" {
				m.Header.Set(bus.HeaderQueueFor, d)
			}
			resp, err := nc.RequestMsg(m, wait)
			if err != nil {
				t.Fatal(err)
			}
			r, err := bus.ParseReply(resp.Data)
			if err != nil || r.OK || r.Code != bus.CodeNoGateway {
				t.Fatalf("Aiot-Queue-For %q: reply %+v (%v), want no_gateway", d, r, err)
			}
		}
	})
	t.Run("an online node is its gateway's", func(t *testing.T) {
		bustest.Eventually(t, wait, "the gateway to answer", func() error {
			r, err := queueCommand(t, nc, "on1", "led", "1", "1m")
			return bustest.Want(err == nil && r.OK && r.Code == "")
		})
		if p := <-got; p != "1" {
			t.Fatalf("gateway got %q", p)
		}
	})
	t.Run("without the header an offline node's command is refused", func(t *testing.T) {
		m, err := nc.Request(bus.GatewaySet("off1", "led"), []byte("1"), wait)
		if err != nil {
			t.Fatal(err)
		}
		r, err := bus.ParseReply(m.Data)
		if err != nil || r.OK || r.Code != bus.CodeOffline || !strings.Contains(r.Error, bus.HeaderQueueFor) {
			t.Fatalf("reply %+v (%v), want offline naming the header", r, err)
		}
	})
	refusals := []struct{ name, d, payload, want string }{
		{"not a duration", "soon", "1", "Aiot-Queue-For"},
		{"zero", "0s", "1", "more than 0"},
		{"negative", "-1m", "1", "more than 0"},
		{"past the longest wait", "25h", "1", "at most 24h"},
		{"payload too large", "1m", strings.Repeat("x", bus.DefaultMaxValueBytes+1), "payload"},
	}
	for _, tt := range refusals {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			r, err := queueCommand(t, nc, "off1", "led", tt.payload, tt.d)
			if err != nil {
				t.Fatal(err)
			}
			if r.OK || r.Code != bus.CodeBadRequest || !strings.Contains(r.Error, tt.want) {
				t.Fatalf("reply %+v, want bad_request naming %q", r, tt.want)
			}
		})
	}
	if s := q.Stats(); s.Queued != 0 || s.Waiting != 0 {
		t.Fatalf("stats %+v: nothing should wait", s)
	}
}

func TestDeliveredWhenOnline(t *testing.T) {
	nc := bustest.Connect(t, bustest.StartServer(t))
	startQueue(t, nc, nil)
	results := bustest.Subscribe(t, nc, bus.SubjectAllCommandResults)
	offline(t, nc, "n1")
	tests := []struct {
		name  string
		reply bus.Reply
		code  string
		err   string
	}{
		{"accepted", bus.Reply{OK: true}, bus.CodeDelivered, ""},
		{"refused by the node", bus.Reply{Error: "4.00 Bad Request"}, bus.CodeFailed, "4.00 Bad Request"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := "n" + string(rune('2'+i))
			offline(t, nc, node)
			r := mustQueue(t, nc, node, "led", "1", "10m")
			got := gateway(t, nc, node, tt.reply)
			publishState(t, nc, node, bus.StateOnline)
			if p := <-got; p != "1" {
				t.Fatalf("gateway got %q", p)
			}
			res := nextResult(t, results, node, "led")
			if res.Command != r.Command || res.Code != tt.code || res.OK != (tt.code == bus.CodeDelivered) || res.Error != tt.err {
				t.Fatalf("result %+v, want code %s error %q for %s", res, tt.code, tt.err, r.Command)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	nc := bustest.Connect(t, bustest.StartServer(t))
	q, _ := startQueue(t, nc, nil)
	results := bustest.Subscribe(t, nc, bus.SubjectAllCommandResults)
	offline(t, nc, "n1")
	r := mustQueue(t, nc, "n1", "led", "1", "200ms")
	res := nextResult(t, results, "n1", "led")
	if res.Command != r.Command || res.Code != bus.CodeExpired || res.OK || !strings.Contains(res.Error, "expired") {
		t.Fatalf("result %+v, want expired", res)
	}
	got := gateway(t, nc, "n1", bus.Reply{OK: true})
	publishState(t, nc, "n1", bus.StateOnline)
	bustest.Eventually(t, wait, "nothing waiting", func() error { return bustest.Want(q.Stats().Waiting == 0) })
	select {
	case p := <-got:
		t.Fatalf("an expired command reached the node: %q", p)
	case <-time.After(200 * time.Millisecond): // a delivery would follow the $state at once
	}
}

func TestNewestReplaces(t *testing.T) {
	nc := bustest.Connect(t, bustest.StartServer(t))
	startQueue(t, nc, nil)
	results := bustest.Subscribe(t, nc, bus.SubjectAllCommandResults)
	offline(t, nc, "n1")
	first := mustQueue(t, nc, "n1", "led", "1", "10m")
	second := mustQueue(t, nc, "n1", "led", "0", "10m")
	res := nextResult(t, results, "n1", "led")
	if res.Command != first.Command || res.Code != bus.CodeReplaced || !strings.Contains(res.Error, second.Command) {
		t.Fatalf("result %+v, want %s replaced by %s", res, first.Command, second.Command)
	}
	got := gateway(t, nc, "n1", bus.Reply{OK: true})
	publishState(t, nc, "n1", bus.StateOnline)
	if p := <-got; p != "0" {
		t.Fatalf("gateway got %q, want the newest command 0", p)
	}
	if res := nextResult(t, results, "n1", "led"); res.Command != second.Command || res.Code != bus.CodeDelivered {
		t.Fatalf("result %+v, want %s delivered", res, second.Command)
	}
}

func TestCaps(t *testing.T) {
	nc := bustest.Connect(t, bustest.StartServer(t))
	q, _ := startQueue(t, nc, func(c *queue.Config) { c.MaxNodes, c.MaxPerNode = 1, 2 })
	offline(t, nc, "n1")
	offline(t, nc, "n2")
	mustQueue(t, nc, "n1", "a", "1", "10m")
	mustQueue(t, nc, "n1", "b", "1", "10m")
	tests := []struct {
		name, node, res string
		queued          bool
		want            string
	}{
		{"a third resource of a node", "n1", "c", false, "node n1 has commands waiting for 2 resources"},
		{"a second node", "n2", "a", false, "1 nodes have commands waiting"},
		{"a newer command for a waiting resource", "n1", "a", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := queueCommand(t, nc, tt.node, tt.res, "0", "10m")
			if err != nil {
				t.Fatal(err)
			}
			if tt.queued {
				if r.Code != bus.CodeQueued {
					t.Fatalf("reply %+v, want queued", r)
				}
				return
			}
			if r.OK || r.Code != bus.CodeQueueFull || !strings.Contains(r.Error, tt.want) {
				t.Fatalf("reply %+v, want queue_full: %s", r, tt.want)
			}
		})
	}
	if s := q.Stats(); s.Waiting != 2 || s.Nodes != 1 {
		t.Fatalf("stats %+v, want 2 waiting for 1 node", s)
	}
}

func TestSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := bustest.StartServer(t, bustest.WithDataDir(dir))
	nc := bustest.Connect(t, s)
	_, stop := startQueue(t, nc, nil)
	offline(t, nc, "n1")
	r := mustQueue(t, nc, "n1", "led", "1", "10m")
	stop()
	nc.Close()
	s.Shutdown()

	s = bustest.StartServer(t, bustest.WithDataDir(dir))
	nc = bustest.Connect(t, s)
	q, _ := startQueue(t, nc, nil)
	if w := q.Stats().Waiting; w != 1 {
		t.Fatalf("%d commands waiting after the restart, want 1", w)
	}
	results := bustest.Subscribe(t, nc, bus.SubjectAllCommandResults)
	got := gateway(t, nc, "n1", bus.Reply{OK: true})
	publishState(t, nc, "n1", bus.StateOnline)
	if p := <-got; p != "1" {
		t.Fatalf("gateway got %q", p)
	}
	if res := nextResult(t, results, "n1", "led"); res.Command != r.Command || res.Code != bus.CodeDelivered {
		t.Fatalf("result %+v, want %s delivered", res, r.Command)
	}
}

// A node offline for longer than ForgetAfter with nothing waiting is no
// longer followed: its commands are answered no_gateway, as for an id never
// seen. One with a command waiting stays.
func TestForgetsLongOfflineNodes(t *testing.T) {
	s := bustest.StartServer(t)
	nc := bustest.Connect(t, s)
	q, _ := startQueue(t, nc, func(c *queue.Config) { c.ForgetAfter = 300 * time.Millisecond })
	offline(t, nc, "gone")
	offline(t, nc, "awaited")
	mustQueue(t, nc, "awaited", "led", "1", "1h")

	bustest.Eventually(t, wait, "the idle offline node forgotten", func() error {
		return bustest.Want(q.Stats().Followed == 1, "followed", q.Stats().Followed)
	})
	tests := []struct{ name, node, code string }{
		{"forgotten: no_gateway", "gone", bus.CodeNoGateway},
		{"a command waiting: still followed (a bad duration refused)", "awaited", bus.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := queueCommand(t, nc, tt.node, "probe", "", "bad")
			if err != nil || r.OK || r.Code != tt.code {
				t.Fatalf("reply %+v (%v), want code %s", r, err, tt.code)
			}
		})
	}
	if st := q.Stats(); st.Waiting != 1 {
		t.Fatalf("stats %+v: the queued command must still wait", st)
	}
}

// Past MaxKnown an id goes unfollowed and may be owned without the queue
// knowing: from then on it answers no id it does not know (no no_gateway
// that could race an owner), and still answers the nodes it follows.
func TestPastMaxKnownUnknownIDsGetNoAnswer(t *testing.T) {
	s := bustest.StartServer(t)
	nc := bustest.Connect(t, s)
	q, _ := startQueue(t, nc, func(c *queue.Config) { c.MaxKnown = 1 })
	offline(t, nc, "known")
	publishState(t, nc, "unfollowed", bus.StateOnline)
	bustest.Eventually(t, wait, "an id unfollowed", func() error {
		return bustest.Want(q.Stats().Unfollowed == 1, "unfollowed", q.Stats().Unfollowed)
	})
	barrier := []string{bus.GatewaySet("known", "led")} // answered offline at once
	tests := []struct{ name, node string }{
		{"the unfollowed id", "unfollowed"},
		{"an id never seen", "ghost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := queuetest.Replies(t, nc, bus.GatewaySet(tt.node, "led"), nil, "1", 0, barrier); len(got) != 0 {
				t.Fatalf("replies %+v, want none", got)
			}
		})
	}
}
