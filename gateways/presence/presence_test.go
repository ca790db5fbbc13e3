package presence_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/presence"
	"github.com/goaiot/goaiot/gateways/queue/queuetest"
)

// start runs a tracker on a real embedded server until the test ends.
func start(t *testing.T, cfg presence.Config) (*presence.Tracker, *nats.Conn) {
	t.Helper()
	srv := bustest.StartServer(t)
	cfg.Conn = bustest.Connect(t, srv)
	cfg.Logger = bustest.Logger(t)
	cfg.Protocol = bus.ProtocolCoAP
	cfg.Gateway = "coap@test"
	cfg.Site = "lab"
	tr, err := presence.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return tr, bustest.Connect(t, srv)
}

func state(t *testing.T, m *nats.Msg) bus.State {
	t.Helper()
	s, err := bus.ParseState(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLifecycle(t *testing.T) {
	var expired sync.Map
	tr, nc := start(t, presence.Config{Timeout: 300 * time.Millisecond, OnExpire: func(id string) { expired.Store(id, true) }})
	states := bustest.Subscribe(t, nc, "node.*.$state")

	isNew, err := tr.Seen("n1", "[::1]:5683")
	if err != nil || !isNew {
		t.Fatalf("first Seen = %v, %v", isNew, err)
	}
	s := state(t, bustest.Next(t, states, bus.NodeState("n1"), 2*time.Second))
	want := bus.State{State: bus.StateOnline, Protocol: bus.ProtocolCoAP, Gateway: "coap@test", Site: "lab", Address: "[::1]:5683"}
	s.Time = time.Time{}
	if s != want {
		t.Fatalf("state = %+v, want %+v", s, want)
	}
	if isNew, _ := tr.Seen("n1", "[::1]:5683"); isNew {
		t.Fatal("second Seen reported new")
	}
	tr.Reset("n1")
	if s := state(t, bustest.Next(t, states, bus.NodeState("n1"), 2*time.Second)); s.State != bus.StateReset {
		t.Fatalf("after reset: %s", s.State)
	}
	// The next sign of life after a reboot says online again, even from
	// the same address.
	if _, err := tr.Seen("n1", "[::1]:5683"); err != nil {
		t.Fatal(err)
	}
	if s := state(t, bustest.Next(t, states, bus.NodeState("n1"), 2*time.Second)); s.State != bus.StateOnline {
		t.Fatalf("after the reset and a sign of life: %s", s.State)
	}
	if _, err := tr.Seen("n1", "[::2]:5683"); err != nil {
		t.Fatal(err)
	}
	if s := state(t, bustest.Next(t, states, bus.NodeState("n1"), 2*time.Second)); s.State != bus.StateOnline || s.Address != "[::2]:5683" {
		t.Fatalf("after move: %+v", s)
	}
	// Silence: offline within the timeout plus a sweep.
	if s := state(t, bustest.Next(t, states, bus.NodeState("n1"), 3*time.Second)); s.State != bus.StateOffline {
		t.Fatalf("after silence: %s", s.State)
	}
	if _, ok := expired.Load("n1"); !ok {
		t.Fatal("OnExpire not called")
	}
	if _, ok := tr.Lookup("n1"); ok {
		t.Fatal("expired node still known")
	}
	st := tr.Stats()
	if st.Added != 1 || st.Expired != 1 || st.Online != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestSeenRejects(t *testing.T) {
	tr, _ := start(t, presence.Config{MaxNodes: 1})
	if _, err := tr.Seen("a.b", ""); !errors.Is(err, bus.ErrUnsafeToken) {
		t.Fatalf("unsafe id: %v", err)
	}
	if _, err := tr.Seen("n1", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Seen("n2", ""); !errors.Is(err, presence.ErrTooManyNodes) {
		t.Fatalf("over the limit: %v", err)
	}
}

func TestCommands(t *testing.T) {
	led := make(chan string, 1)
	commands := func(ctx context.Context, node, res string, payload []byte) error {
		switch string(payload) {
		case "0", "1":
			led <- node + "/" + res + "=" + string(payload)
			return nil
		case "slow":
			<-ctx.Done()
			return ctx.Err()
		}
		return errors.New("4.00 Bad Request")
	}
	tr, nc := start(t, presence.Config{Commands: commands, CommandTimeout: 200 * time.Millisecond})
	if _, err := tr.Seen("n1", ""); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, subject, payload string
		want                   bus.Reply
	}{
		{"ok", "gateway.n1.led.set", "1", bus.Reply{OK: true, Code: bus.CodeOK}},
		{"refused", "gateway.n1.led.set", "5", bus.Reply{Error: "4.00 Bad Request", Code: bus.CodeRefused}},
		{"timeout", "gateway.n1.led.set", "slow", bus.Reply{Error: presence.ErrCommandTimeout.Error(), Code: bus.CodeTimeout}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := nc.Request(tt.subject, []byte(tt.payload), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			r, err := bus.ParseReply(m.Data)
			if err != nil || r != tt.want {
				t.Fatalf("reply = %+v (%v), want %+v", r, err, tt.want)
			}
		})
	}
	select {
	case got := <-led:
		if got != "n1/led=1" {
			t.Fatalf("command carried out as %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("command never carried out")
	}
	// Alone on the bus (no queue), a tracker says nothing of nodes it does
	// not own: the owner, or the queue, answers them (replies_test.go).
	if _, err := tr.Seen("n2", ""); err != nil {
		t.Fatal(err)
	}
	barrier := []string{bus.GatewaySet("n2", "resources")}
	t.Run("a node it does not own: no answer", func(t *testing.T) {
		if got := queuetest.Replies(t, nc, "gateway.n9.led.set", nil, "1", 0, barrier); len(got) != 0 {
			t.Fatalf("replies %+v, want none", got)
		}
	})
	t.Run("a node it forgot: no answer", func(t *testing.T) {
		tr.Forget("n1")
		if got := queuetest.Replies(t, nc, "gateway.n1.led.set", nil, "1", 0, barrier); len(got) != 0 {
			t.Fatalf("replies %+v, want none", got)
		}
	})
}

func TestStopMarksOffline(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	states := bustest.Subscribe(t, nc, "node.*.$state")
	tr, err := presence.New(presence.Config{Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t), Protocol: "CoAP", Gateway: "g"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	if _, err := tr.Seen("n1", ""); err != nil {
		t.Fatal(err)
	}
	bustest.Next(t, states, bus.NodeState("n1"), 2*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := state(t, bustest.Next(t, states, bus.NodeState("n1"), 2*time.Second)); s.State != bus.StateOffline {
		t.Fatalf("on stop: %s", s.State)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	log := bustest.Logger(t)
	tests := []struct {
		name string
		cfg  presence.Config
	}{
		{"no conn", presence.Config{Logger: log, Protocol: "p", Gateway: "g"}},
		{"no logger", presence.Config{Conn: nc, Protocol: "p", Gateway: "g"}},
		{"no protocol", presence.Config{Conn: nc, Logger: log, Gateway: "g"}},
		{"no gateway", presence.Config{Conn: nc, Logger: log, Protocol: "p"}},
		{"negative timeout", presence.Config{Conn: nc, Logger: log, Protocol: "p", Gateway: "g", Timeout: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := presence.New(tt.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// A node online for StateRefresh has its online $state published again at
// its next sign of life, with its first time, so that the stream never
// ages the last $state of an online node out.
func TestStateRefresh(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(t0.UnixNano())
	at := func(d time.Duration) { now.Store(t0.Add(d).UnixNano()) }
	tr, nc := start(t, presence.Config{Timeout: 1000 * time.Hour, Now: func() time.Time { return time.Unix(0, now.Load()).UTC() }})
	states := bustest.Subscribe(t, nc, bus.NodeState("n1"))
	steps := []struct {
		name  string
		do    func()
		state string
		stamp time.Time
	}{
		{"new: online", func() { at(0); mustSee(t, tr, "n1") }, bus.StateOnline, t0},
		{"a sign of life within the refresh: nothing (the reset comes next)", func() {
			at(time.Hour)
			mustSee(t, tr, "n1")
			tr.Reset("n1")
		}, bus.StateReset, t0.Add(time.Hour)},
		{"back after the reset: online now", func() { at(2 * time.Hour); mustSee(t, tr, "n1") }, bus.StateOnline, t0.Add(2 * time.Hour)},
		{"a sign of life a refresh later: online again, its first time", func() {
			at(2*time.Hour + presence.StateRefresh)
			mustSee(t, tr, "n1")
		}, bus.StateOnline, t0},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.do()
			got := state(t, bustest.Next(t, states, bus.NodeState("n1"), 10*time.Second))
			if got.State != s.state || !got.Time.Equal(s.stamp) {
				t.Fatalf("$state %s at %s, want %s at %s", got.State, got.Time, s.state, s.stamp)
			}
		})
	}
}

func mustSee(t *testing.T, tr *presence.Tracker, id string) {
	t.Helper()
	if _, err := tr.Seen(id, "addr"); err != nil {
		t.Fatal(err)
	}
}
