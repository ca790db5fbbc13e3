package presence

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

// Ids claimed by other gateways (ids a device may choose: spoofed CoAP uids)
// are bounded, and forgotten once nobody refreshes them for the timeout.
func TestForeignClaimsBoundedAndForgotten(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	o := newOwners(Config{Protocol: bus.ProtocolWebSocket, Gateway: "ws@a", Timeout: time.Minute, Now: func() time.Time { return now }})
	o.max = 100
	for i := range 1000 {
		o.onState(fmt.Sprintf("spoof%d", i), bus.State{State: bus.StateOnline, Protocol: bus.ProtocolCoAP, Gateway: "coap@a", Time: now})
	}
	if n := len(o.byID); n != o.max {
		t.Fatalf("%d foreign claims after a flood, want the bound %d", n, o.max)
	}
	if _, owned := o.owner("spoof1"); !owned {
		t.Fatal("a fresh claim was not kept")
	}
	now = now.Add(2 * time.Minute) // nobody refreshed them
	o.prune()
	if n := len(o.byID); n != 0 {
		t.Fatalf("%d foreign claims after the timeout, want 0", n)
	}
	o.onState("back", bus.State{State: bus.StateOnline, Protocol: bus.ProtocolCoAP, Gateway: "coap@a", Time: now})
	if _, owned := o.owner("back"); !owned {
		t.Fatal("room for new claims after pruning")
	}
}

// A node.check refreshes another gateway's claim when the node itself or
// its owner's gateway sends it, not when a third gateway does.
func TestHandleCheckRefreshesClaims(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		owner     string // the check's Aiot-Owner header; "": the node's own
		payload   string
		refreshed bool
	}{
		{"by the owner's gateway", "coap@a", `{"id":"x"}`, true},
		{"by the node itself", "", `{"id":"x"}`, true},
		{"by the node itself, spaced", "", `{"id": "x"}`, true},
		{"by another gateway", "coap@b", `{"id":"x"}`, false},
		{"by this tracker's own gateway", "ws@a", `{"id":"x"}`, false},
		{"malformed", "", `{"id":"x"`, false},
	}
	nc := bustest.Connect(t, bustest.StartServer(t))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := t0
			tr, err := New(Config{Conn: nc, Logger: bustest.Logger(t), Protocol: bus.ProtocolWebSocket,
				Gateway: "ws@a", Timeout: time.Minute, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			tr.owners.onState("x", bus.State{State: bus.StateOnline, Protocol: bus.ProtocolCoAP, Gateway: "coap@a", Time: t0})
			now = t0.Add(50 * time.Second)
			m := &nats.Msg{Subject: bus.SubjectNodeCheck, Data: []byte(tt.payload), Header: nats.Header{}}
			if tt.owner != "" {
				m.Header.Set(bus.HeaderOwner, tt.owner)
			}
			tr.HandleCheck(m)
			now = t0.Add(90 * time.Second) // a minute after 50 s, not after 0 s
			if _, owned := tr.owners.owner("x"); owned != tt.refreshed {
				t.Errorf("claim still owned: %v, want %v", owned, tt.refreshed)
			}
		})
	}
}

// Trackers that share a table keep one claim per node, each sees the other
// gateways' claims only, each by its own timeout, and the table forgets a
// claim only after the longest of them.
func TestSharedClaims(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	table := NewClaims()
	view := func(protocol, gateway string, timeout time.Duration) *owners {
		return newOwners(Config{Protocol: protocol, Gateway: gateway, Timeout: timeout, Now: clock, Claims: table})
	}
	coap := view(bus.ProtocolCoAP, "coap@a", time.Minute)
	mqtt := view(bus.ProtocolMQTT, "mqtt@a", 5*time.Minute)
	ws := view(bus.ProtocolWebSocket, "ws@a", time.Minute)
	online := bus.State{State: bus.StateOnline, Protocol: bus.ProtocolWebSocket, Gateway: "ws@a", Time: now}
	for i := range 100 {
		id := fmt.Sprint("n", i)
		// Every other tracker of the process hears the owner's $state.
		for _, o := range []*owners{coap, mqtt, ws} {
			o.onState(id, online)
		}
	}
	if n := len(table.byID); n != 100 {
		t.Fatalf("%d claims kept for 100 nodes, want one each", n)
	}
	tests := []struct {
		name  string
		after time.Duration
		view  *owners
		owned bool
	}{
		{"another gateway sees the claim", 0, coap, true},
		{"the owner's own gateway does not", 0, ws, false},
		{"stale for a one-minute tracker", 2 * time.Minute, coap, false},
		{"not yet for a five-minute one", 2 * time.Minute, mqtt, true},
		{"stale for every tracker", 6 * time.Minute, mqtt, false},
	}
	t0 := now
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = t0.Add(tt.after)
			if _, owned := tt.view.owner("n1"); owned != tt.owned {
				t.Fatalf("owned = %v, want %v", owned, tt.owned)
			}
		})
	}
	now = t0.Add(2 * time.Minute)
	coap.prune()
	if n := len(table.byID); n != 100 {
		t.Fatalf("pruned to %d claims before the longest timeout, want 100", n)
	}
	now = t0.Add(8 * time.Minute) // prunes at most once per longest timeout: the last was at 2 min
	coap.prune()
	if n := len(table.byID); n != 0 {
		t.Fatalf("%d claims after the longest timeout, want 0", n)
	}
}

// Trackers that share a table read the bus each at its own pace: one that
// is behind replays older $states, which must not erase or replace the
// claims the others recorded since.
func TestSharedClaimsLaggingTracker(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	state := func(st, protocol, gateway string) bus.State {
		return bus.State{State: st, Protocol: protocol, Gateway: gateway, Time: now}
	}
	remoteOnline := state(bus.StateOnline, bus.ProtocolCoAP, "coap@c")
	remoteOffline := state(bus.StateOffline, bus.ProtocolCoAP, "coap@c")
	localOnline := state(bus.StateOnline, bus.ProtocolCoAP, "coap@a")
	tests := []struct {
		name string
		// fast and slow are the $states each tracker reads, in order;
		// the fast one reads all of its first.
		fast, slow []bus.State
		owner      string // who ws@a sees owning the id; "": nobody
	}{
		{
			name:  "a node moves here from a remote gateway",
			fast:  []bus.State{remoteOnline, remoteOffline, localOnline},
			slow:  []bus.State{remoteOnline, remoteOffline},
			owner: "CoAP/coap@a",
		},
		{
			name:  "a remote claim outlives the local one it disputed",
			fast:  []bus.State{remoteOnline, localOnline, state(bus.StateOffline, bus.ProtocolCoAP, "coap@a")},
			slow:  []bus.State{remoteOnline},
			owner: "CoAP/coap@c",
		},
		{
			name:  "the remote gateway lets go",
			fast:  []bus.State{remoteOnline, remoteOffline},
			slow:  []bus.State{remoteOnline, remoteOffline},
			owner: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := NewClaims()
			view := func(gateway string) *owners {
				return newOwners(Config{Protocol: bus.ProtocolCoAP, Gateway: gateway, Timeout: time.Minute, Now: clock, Claims: table})
			}
			ws := newOwners(Config{Protocol: bus.ProtocolWebSocket, Gateway: "ws@a", Timeout: time.Minute, Now: clock, Claims: table})
			coap := view("coap@a")
			for _, st := range tt.fast {
				ws.onState("n", st)
			}
			for _, st := range tt.slow {
				coap.onState("n", st)
			}
			c, owned := ws.owner("n")
			if got := map[bool]string{true: c.owner}[owned]; got != tt.owner {
				t.Fatalf("ws@a sees the id owned by %q, want %q", got, tt.owner)
			}
		})
	}
}

// Claims on one id are bounded too: many gateways claiming one id (or a
// gateway account inventing names) keep at most maxOwnersPerID claims,
// the first claimant stays the owner, and the id is forgotten once they
// all said offline.
func TestClaimsOnOneIDBounded(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	o := newOwners(Config{Protocol: bus.ProtocolWebSocket, Gateway: "ws@a", Timeout: time.Minute, Now: func() time.Time { return now }})
	state := func(st string, i int) bus.State {
		return bus.State{State: st, Protocol: bus.ProtocolCoAP, Gateway: fmt.Sprint("coap@", i), Time: now.Add(time.Duration(i))}
	}
	for i := range 100 {
		o.onState("x", state(bus.StateOnline, i))
	}
	set := o.byID["x"]
	if n := 1 + len(set.more); n != maxOwnersPerID {
		t.Fatalf("%d claims on one id after 100 claimants, want the bound %d", n, maxOwnersPerID)
	}
	if c, owned := o.owner("x"); !owned || c.owner != "CoAP/coap@0" {
		t.Fatalf("owner %q (%v), want the first claimant", c.owner, owned)
	}
	for i := range 100 {
		o.onState("x", state(bus.StateOffline, i))
	}
	if n := len(o.byID); n != 0 {
		t.Fatalf("%d ids kept after every claimant went offline, want 0", n)
	}
}
