package dashboard

import (
	"strings"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

// Nodes offline for longer than the retention leave the index and the
// snapshots; online nodes and recently offline ones stay.
func TestIndexForgetsLongOfflineNodes(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	x := newIndex()
	state := func(uid, st string, at time.Time) {
		x.apply(event{kind: bus.KindNodeState, uid: uid, ts: at, state: bus.State{State: st, Protocol: bus.ProtocolCoAP, Time: at}})
	}
	value := func(uid string, at time.Time) {
		x.apply(event{kind: bus.KindNodeValue, uid: uid, endpoint: "temperature", value: "1", ts: at})
	}
	state("gone", bus.StateOnline, t0)
	value("gone", t0)
	state("gone", bus.StateOffline, t0.Add(time.Minute))
	state("recent", bus.StateOnline, t0)
	state("recent", bus.StateOffline, t0.Add(23*time.Hour))
	state("alive", bus.StateOnline, t0)
	value("alive", t0.Add(time.Hour))

	if n := x.forget(t0.Add(time.Hour)); n != 1 {
		t.Fatalf("forgot %d nodes, want 1", n)
	}
	if known, online := x.stats(); known != 2 || online != 1 {
		t.Fatalf("known %d online %d, want 2 and 1", known, online)
	}
	var snap []string
	for _, f := range x.snapshot(true) {
		snap = append(snap, string(f.data()))
	}
	all := strings.Join(snap, "\n")
	if strings.Contains(all, `"gone"`) || !strings.Contains(all, `"recent"`) || !strings.Contains(all, `"alive"`) {
		t.Fatalf("snapshot after forgetting:\n%s", all)
	}
	// A forgotten node that comes back is new again.
	if frames := x.apply(event{kind: bus.KindNodeState, uid: "gone", ts: t0.Add(2 * time.Hour),
		state: bus.State{State: bus.StateOnline, Time: t0.Add(2 * time.Hour)}}); len(frames) != 1 {
		t.Fatalf("comeback frames %d, want a new", len(frames))
	}
}

// The dashboard sweeps its index: a spoofed id that went offline is gone
// from memory and from a later browser's snapshot after the retention.
func TestDashboardForgetsOfflineNodes(t *testing.T) {
	srv := bustest.StartServer(t)
	td := startDashboard(t, srv, func(c *Config) { c.ForgetAfter = 300 * time.Millisecond })
	pub := publisher{t: t, nc: bustest.Connect(t, srv)}
	now := time.Now().UTC()
	pub.json(bus.NodeState("spoof1"), bus.State{State: bus.StateOnline, Protocol: bus.ProtocolCoAP, Time: now})
	pub.json(bus.NodeState("spoof1"), bus.State{State: bus.StateOffline, Protocol: bus.ProtocolCoAP, Time: now})
	pub.json(bus.NodeState("kept"), bus.State{State: bus.StateOnline, Protocol: bus.ProtocolCoAP, Time: now})
	bustest.Eventually(t, wait, "both nodes known", func() error { return bustest.Want(metric(t, td, "aiot_dashboard_nodes") == 2) })
	bustest.Eventually(t, wait, "the offline node forgotten", func() error { return bustest.Want(metric(t, td, "aiot_dashboard_nodes") == 1) })
	for _, m := range dial(t, td, nil).subscribe() {
		if m.UID == "spoof1" {
			t.Fatalf("forgotten node in the snapshot: %+v", m)
		}
	}
}
