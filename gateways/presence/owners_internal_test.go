package presence

import (
	"fmt"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus"
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
	if n := len(o.foreign); n != o.max {
		t.Fatalf("%d foreign claims after a flood, want the bound %d", n, o.max)
	}
	if _, owned := o.owner("spoof1"); !owned {
		t.Fatal("a fresh claim was not kept")
	}
	now = now.Add(2 * time.Minute) // nobody refreshed them
	o.prune()
	if n := len(o.foreign); n != 0 {
		t.Fatalf("%d foreign claims after the timeout, want 0", n)
	}
	o.onState("back", bus.State{State: bus.StateOnline, Protocol: bus.ProtocolCoAP, Gateway: "coap@a", Time: now})
	if _, owned := o.owner("back"); !owned {
		t.Fatal("room for new claims after pruning")
	}
}
