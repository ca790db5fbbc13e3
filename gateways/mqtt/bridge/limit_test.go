package bridge

import (
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// Distinct node ids never lock the bridge: idle nodes' limiters make room,
// and only while every tracked node is busy is a new one refused.
func TestNodeLimitersForget(t *testing.T) {
	b := &Bridge{cfg: Config{NodeRate: 1, NodeBurst: 1, MaxNodes: 2}, limiters: make(map[string]*rate.Limiter)}
	t0 := time.Now()
	if !b.allowAt("a", t0) || !b.allowAt("b", t0) {
		t.Fatal("first two nodes refused")
	}
	if b.allowAt("c", t0) {
		t.Fatal("a third node admitted while both tracked nodes are busy")
	}
	later := t0.Add(2 * time.Second) // a and b idle again
	for i, id := range []string{"c", "d", "e"} {
		at := later.Add(time.Duration(i) * 2 * time.Second)
		if !b.allowAt(id, at) {
			t.Fatalf("node %s refused after the others went idle", id)
		}
		if len(b.limiters) > 2 {
			t.Fatalf("%d limiters, cap 2", len(b.limiters))
		}
	}
}
