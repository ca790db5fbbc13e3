package presence_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/presence"
)

// runTracker runs a tracker of protocol/gateway on srv until the test ends;
// claims is its table of claims (nil: its own).
func runTracker(t *testing.T, srv *bus.Server, claims *presence.Claims, protocol, gateway string, expired chan<- string) *presence.Tracker {
	t.Helper()
	tr, err := presence.New(presence.Config{Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t),
		Protocol: protocol, Gateway: gateway, Timeout: time.Minute, Claims: claims,
		OnExpire: func(id string) {
			if expired != nil {
				expired <- id
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return tr
}

// tables are the two ways trackers keep claims: each its own table, or
// one table for the trackers of a process.
var tables = []struct {
	name   string
	claims func() *presence.Claims
}{
	{"own tables", func() *presence.Claims { return nil }},
	{"one shared table", presence.NewClaims},
}

// An online id belongs to the gateway that claimed it first: another
// gateway's claim is refused, counted and reported, and the id is free again
// once its owner says it is offline.
func TestOnlineIDHasOneOwner(t *testing.T) {
	for _, tt := range tables {
		t.Run(tt.name, func(t *testing.T) { testOnlineIDHasOneOwner(t, tt.claims()) })
	}
}

func testOnlineIDHasOneOwner(t *testing.T, claims *presence.Claims) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	reports := bustest.Subscribe(t, nc, bus.SubjectClaimRefused)
	states := bustest.Subscribe(t, nc, "node.*.$state")
	coap := runTracker(t, srv, claims, bus.ProtocolCoAP, "coap@a", nil)
	ws := runTracker(t, srv, claims, bus.ProtocolWebSocket, "ws@a", nil)

	if _, err := coap.Seen("uid1", "[fd00::1]:5683"); err != nil {
		t.Fatal(err)
	}
	bustest.Next(t, states, bus.NodeState("uid1"), 5*time.Second)
	bustest.Eventually(t, 20*time.Second, "the websocket gateway's claim refused", func() error {
		_, err := ws.Seen("uid1", "127.0.0.1:4444")
		return bustest.Want(errors.Is(err, presence.ErrOwnedElsewhere))
	})
	var r bus.ClaimRefused
	if err := json.Unmarshal(bustest.Next(t, reports, bus.SubjectClaimRefused, 5*time.Second).Data, &r); err != nil {
		t.Fatal(err)
	}
	if r.UID != "uid1" || r.Owner != "CoAP/coap@a" || r.Claimant != "WebSocket/ws@a" {
		t.Fatalf("report = %+v", r)
	}
	if st := ws.Stats(); st.OwnedElsewhere == 0 || st.Online != 0 {
		t.Fatalf("ws stats = %+v, want a refusal and no node", st)
	}
	if _, ok := coap.Lookup("uid1"); !ok {
		t.Fatal("the owner lost its node")
	}
	if _, err := coap.Seen("uid1", "[fd00::1]:5683"); err != nil {
		t.Fatalf("the owner's own sign of life refused: %v", err)
	}

	coap.Forget("uid1")
	bustest.Eventually(t, 20*time.Second, "the id free once offline", func() error {
		_, err := ws.Seen("uid1", "127.0.0.1:4444")
		return bustest.Want(err == nil)
	})
}

// Two gateways that claim one id at once: the later claim yields.
func TestSimultaneousClaimsSettle(t *testing.T) {
	for _, tt := range tables {
		t.Run(tt.name, func(t *testing.T) { testSimultaneousClaimsSettle(t, tt.claims()) })
	}
}

func testSimultaneousClaimsSettle(t *testing.T, claims *presence.Claims) {
	srv := bustest.StartServer(t)
	expired := make(chan string, 4)
	first := runTracker(t, srv, claims, bus.ProtocolCoAP, "coap@a", nil)
	second := runTracker(t, srv, claims, bus.ProtocolWebSocket, "ws@b", expired)
	// Claimed before either saw the other's $state.
	if _, err := first.Seen("uid2", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Seen("uid2", "b"); err != nil && !errors.Is(err, presence.ErrOwnedElsewhere) {
		t.Fatal(err)
	}
	bustest.Eventually(t, 20*time.Second, "one owner left", func() error {
		_, a := first.Lookup("uid2")
		_, b := second.Lookup("uid2")
		return bustest.Want(a && !b)
	})
}
