package faults

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

// memberTracker runs a presence tracker of protocol/gateway connected to
// one cluster member, as a gateway process on that member's machine.
func memberTracker(t *testing.T, member *bus.Server, protocol, gateway string) *presence.Tracker {
	t.Helper()
	tr, err := presence.New(presence.Config{Conn: bustest.Connect(t, member), Logger: bustest.Logger(t),
		Protocol: protocol, Gateway: gateway, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return tr
}

// TestClusterIDOwnership: the edges' rule that an online id has one owner
// holds between gateways connected to different members of a NATS
// cluster, because it follows $state, which routes carry like any subject.
func TestClusterIDOwnership(t *testing.T) {
	members := bustest.StartCluster(t, 3)
	observer := bustest.Connect(t, members[2])
	reports := bustest.Subscribe(t, observer, bus.SubjectClaimRefused)

	t.Run("a claim on another member is refused", func(t *testing.T) {
		coap := memberTracker(t, members[0], bus.ProtocolCoAP, "coap@m0")
		ws := memberTracker(t, members[1], bus.ProtocolWebSocket, "ws@m1")
		if _, err := coap.Seen("uid-c1", "[fd00::1]:5683"); err != nil {
			t.Fatal(err)
		}
		bustest.Eventually(t, wait, "the claim through member m1 refused", func() error {
			_, err := ws.Seen("uid-c1", "127.0.0.1:4444")
			return bustest.Want(errors.Is(err, presence.ErrOwnedElsewhere), "err", err)
		})
		var r bus.ClaimRefused
		if err := json.Unmarshal(bustest.Next(t, reports, bus.SubjectClaimRefused, wait).Data, &r); err != nil {
			t.Fatal(err)
		}
		if r.UID != "uid-c1" || r.Owner != "CoAP/coap@m0" || r.Claimant != "WebSocket/ws@m1" {
			t.Fatalf("report = %+v", r)
		}
		if _, ok := coap.Lookup("uid-c1"); !ok {
			t.Fatal("the owner lost its node")
		}
		coap.Forget("uid-c1")
		bustest.Eventually(t, wait, "the id free once offline", func() error {
			_, err := ws.Seen("uid-c1", "127.0.0.1:4444")
			return bustest.Want(err == nil, "err", err)
		})
	})
	t.Run("claims at once on two members settle to one owner", func(t *testing.T) {
		first := memberTracker(t, members[0], bus.ProtocolCoAP, "coap@a")
		second := memberTracker(t, members[2], bus.ProtocolCoAP, "coap@b")
		if _, err := first.Seen("uid-c2", "a"); err != nil {
			t.Fatal(err)
		}
		if _, err := second.Seen("uid-c2", "b"); err != nil && !errors.Is(err, presence.ErrOwnedElsewhere) {
			t.Fatal(err)
		}
		bustest.Eventually(t, wait, "one owner left", func() error {
			_, a := first.Lookup("uid-c2")
			_, b := second.Lookup("uid-c2")
			return bustest.Want(a != b, "first owns", a, "second owns", b)
		})
	})
}
