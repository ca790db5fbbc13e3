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
	for _, f := range expanded(x.snapshot(true)) {
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

// A snapshot shows the index as it was when taken, however the index
// changes while the browser's writer expands and encodes it (on another
// goroutine, as the writer does: -race checks that nothing it reads is
// changed).
func TestSnapshotIsTheIndexWhenTaken(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var x *index
	state := func(uid, st string, at time.Time) {
		x.apply(event{kind: bus.KindNodeState, uid: uid, ts: at, state: bus.State{
			State: st, Protocol: bus.ProtocolCoAP, Gateway: "gw", Address: "[fd00::1]:5683", Time: at}})
	}
	value := func(uid, v string, at time.Time) {
		x.apply(event{kind: bus.KindNodeValue, uid: uid, endpoint: "temperature", value: v, ts: at})
	}
	const (
		newA = `{"type":"new","uid":"a","gateway":"gw","protocol":"CoAP","address":"[fd00::1]:5683","state":"online","ts":1796083200000}`
		newB = `{"type":"new","uid":"b","gateway":"gw","protocol":"CoAP","address":"[fd00::1]:5683","state":"online","ts":1796083200000}`
		newC = `{"type":"new","uid":"c","gateway":"gw","protocol":"CoAP","address":"[fd00::1]:5683","state":"offline","ts":1796083200000}`
		outC = `{"type":"out","uid":"c","ts":1796083200000}`
		valA = `{"type":"update","uid":"a","endpoint":"temperature","data":"1","ts":1796083200000}`
		valB = `{"type":"update","uid":"b","endpoint":"temperature","data":"1","ts":1796083200000}`
	)
	seeds := func(uid string) string {
		return `{"type":"update","uid":"` + uid + `","endpoint":"protocol","data":"CoAP","ts":1796083200000}` + "\n" +
			`{"type":"update","uid":"` + uid + `","endpoint":"ip","data":"fd00::1","ts":1796083200000}`
	}
	tests := []struct {
		name string
		ext  bool
		want []string
	}{
		{"goaiot page", true, []string{newA, valA, newB, valB, newC, outC, `{"type":"synced","nodes":3}`}},
		{"Pyaiot page", false, []string{newA, seeds("a"), valA, newB, seeds("b"), valB}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x = newIndex()
			state("a", bus.StateOnline, t0)
			value("a", "1", t0)
			state("b", bus.StateOnline, t0)
			value("b", "1", t0)
			state("c", bus.StateOffline, t0)
			snap := x.snapshot(tt.ext)
			at := t0.Add(time.Minute)
			value("a", "2", at)             // a changed value
			value("a", "x", at)             // a new resource
			state("b", bus.StateReset, at)  // values gone
			state("c", bus.StateOnline, at) // back
			done := make(chan string)
			go func() {
				var texts []string
				for _, f := range expanded(snap) {
					texts = append(texts, string(f.data()))
				}
				done <- strings.Join(texts, "\n")
			}()
			state("d", bus.StateOnline, at)  // a new node
			value("b", "3", at)              // while the snapshot is expanded
			state("a", bus.StateOffline, at) // gone
			x.forget(at.Add(time.Hour))      // and forgotten
			if got, want := <-done, strings.Join(tt.want, "\n"); got != want {
				t.Errorf("snapshot:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
