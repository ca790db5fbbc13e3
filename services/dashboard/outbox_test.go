package dashboard

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus"
)

func TestOutbox(t *testing.T) {
	upd := func(key, v string) *frame {
		return mustFrame(updateMsg{Type: typeUpdate, UID: key, Endpoint: "e", Data: v}, key, false)
	}
	life := func(uid string) *frame { return mustFrame(nodeEventMsg{Type: typeOut, UID: uid}, "", true) }
	tests := []struct {
		name      string
		limit     int
		slowAfter int
		push      []*frame
		results   []pushResult
		want      []string // the data of what is queued, "" for lifecycle frames
	}{
		{"queue below slow-after keeps every value", 10, 3,
			[]*frame{upd("a", "1"), upd("a", "2"), upd("a", "3")},
			[]pushResult{queued, queued, queued}, []string{"1", "2", "3"}},
		{"slow: a value replaces the queued one of its resource", 10, 2,
			[]*frame{upd("a", "1"), upd("b", "1"), upd("c", "1"), upd("a", "2"), upd("b", "2")},
			[]pushResult{queued, queued, queued, coalesced, coalesced}, []string{"2", "2", "1"}},
		{"a lifecycle message is a barrier", 10, 0,
			[]*frame{upd("a", "1"), life("a"), upd("a", "2"), upd("a", "3")},
			[]pushResult{queued, queued, queued, coalesced}, []string{"1", "", "3"}},
		{"lifecycle messages overflow instead of dropping", 2, 0,
			[]*frame{life("a"), life("b"), life("c")},
			[]pushResult{queued, queued, overflow}, []string{"", ""}},
		{"a full queue still coalesces", 2, 0,
			[]*frame{upd("a", "1"), upd("b", "1"), upd("a", "2"), upd("c", "1")},
			[]pushResult{queued, queued, coalesced, overflow}, []string{"2", "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOutbox(tt.limit, tt.slowAfter, nil)
			var got []pushResult
			for _, f := range tt.push {
				got = append(got, o.push(f))
			}
			if !slices.Equal(got, tt.results) {
				t.Errorf("push results %v, want %v", got, tt.results)
			}
			if q := queuedData(o); !slices.Equal(q, tt.want) {
				t.Errorf("queued %q, want %q", q, tt.want)
			}
		})
	}
	t.Run("taken frames are not replaced", func(t *testing.T) {
		o := newOutbox(10, 0, nil)
		o.push(upd("a", "1"))
		o.push(upd("b", "1"))
		if got := o.take(nil, 1); len(got) != 1 {
			t.Fatalf("took %d", len(got))
		}
		o.push(upd("a", "2")) // "a"=1 left the queue: this one queues
		o.push(upd("b", "2")) // replaces "b"=1, still queued
		if q := queuedData(o); !slices.Equal(q, []string{"2", "2"}) {
			t.Errorf("queued %q", q)
		}
	})
	t.Run("a snapshot raises the limit", func(t *testing.T) {
		o := newOutbox(2, 0, nil)
		snap := []*frame{life("a"), life("b"), life("c"), life("d")}
		if r := o.pushSnapshot(snap); r != queued {
			t.Fatalf("pushAll: %v", r)
		}
		if r := o.push(life("e")); r != queued {
			t.Errorf("push after snapshot: %v", r)
		}
	})
	t.Run("a taken snapshot leaves the limit as it was", func(t *testing.T) {
		o := newOutbox(2, 0, nil)
		if r := o.pushSnapshot([]*frame{life("a"), life("b"), life("c"), life("d")}); r != queued {
			t.Fatalf("pushAll: %v", r)
		}
		if got := o.take(nil, 4); len(got) != 4 {
			t.Fatalf("took %d", len(got))
		}
		got := []pushResult{o.push(life("e")), o.push(life("f")), o.push(life("g"))}
		if want := []pushResult{queued, queued, overflow}; !slices.Equal(got, want) {
			t.Errorf("pushes after the snapshot was taken: %v, want %v", got, want)
		}
	})
	t.Run("a partly taken snapshot allows what is left of it", func(t *testing.T) {
		o := newOutbox(1, 0, nil)
		o.pushSnapshot([]*frame{life("a"), life("b"), life("c")})
		o.take(nil, 2)
		got := []pushResult{o.push(life("d")), o.push(life("e"))}
		if want := []pushResult{queued, overflow}; !slices.Equal(got, want) {
			t.Errorf("pushes: %v, want %v", got, want)
		}
	})
	t.Run("closed", func(t *testing.T) {
		o := newOutbox(2, 0, nil)
		o.push(life("a"))
		if n, _ := o.close(); n != 1 {
			t.Errorf("close dropped %d, want 1", n)
		}
		if r := o.push(life("b")); r != discarded {
			t.Errorf("push after close: %v", r)
		}
	})
}

// queuedData lists the data of the queued frames ("" for non-updates).
func queuedData(o *outbox) []string {
	var out []string
	for _, f := range o.take(nil, 1<<20) {
		var m struct{ Data string }
		_ = jsonUnmarshal(f, &m)
		out = append(out, m.Data)
	}
	return out
}

// TestOutboxPushClaim: an answer pushed while no writer runs makes its
// pusher the writer (no writer goroutine started); while one runs, or
// once the queue is full or closed, it does not.
func TestOutboxPushClaim(t *testing.T) {
	answer := func() *frame { return mustFrame(resultMsg{Type: typeResult, ID: "c1"}, "", false) }
	tests := []struct {
		name        string
		limit       int
		before      func(o *outbox)
		wantResult  pushResult
		wantClaimed bool
		wantStarted int // writer goroutines started by the outbox
	}{
		{"no writer runs: the pusher writes", 4, func(*outbox) {}, queued, true, 0},
		{"a writer runs: it writes", 4, func(o *outbox) { o.push(answer()) }, queued, false, 1},
		{"writer gone idle: the pusher writes", 4, func(o *outbox) {
			o.push(answer())
			o.take(nil, 10)
			o.idle()
		}, queued, true, 1},
		{"queue full", 1, func(o *outbox) { o.push(answer()) }, overflow, false, 1},
		{"closed", 4, func(o *outbox) { o.close() }, discarded, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			started, claimed := 0, 0
			o := newOutbox(tt.limit, 0, func() { started++ })
			tt.before(o)
			r, write := o.pushClaim(answer(), func() { claimed++ })
			if r != tt.wantResult || write != tt.wantClaimed {
				t.Errorf("pushClaim = %v, %v; want %v, %v", r, write, tt.wantResult, tt.wantClaimed)
			}
			if want := map[bool]int{true: 1}[tt.wantClaimed]; claimed != want {
				t.Errorf("claim called %d times, want %d", claimed, want)
			}
			if started != tt.wantStarted {
				t.Errorf("writers started %d, want %d", started, tt.wantStarted)
			}
			if tt.wantClaimed {
				if r := o.push(answer()); r != queued || started != tt.wantStarted {
					t.Errorf("push after the claim started a writer (%d) or failed (%v): the claimer is the writer", started, r)
				}
			}
		})
	}
}

// TestOutboxSnapshotPlaceholder: a snapshot is one placeholder in the
// queue, expanded into its nodes' frames as they are taken, a few nodes at
// a time, before what was queued after it; the hub's flusher never claims a
// queue that holds one (it would encode the snapshot itself).
func TestOutboxSnapshotPlaceholder(t *testing.T) {
	x := newIndex()
	for _, uid := range []string{"a", "b", "c"} {
		x.apply(event{kind: bus.KindNodeValue, uid: uid, endpoint: "temperature", value: uid + "1"})
	}
	live := func() *frame { return updateFrame("d", "e", "live", 0, "d\x00e") }
	claims := 0
	o := newOutbox(1, 0, func() {})
	o.claimNow = func(time.Time, []*frame) (claim, time.Time) { claims++; return claimWrite, time.Time{} }
	if r := o.pushSnapshot(x.snapshot(true)); r != queued {
		t.Fatalf("pushSnapshot: %v", r)
	}
	o.idle() // no writer runs
	if r, _, k, _ := o.pushManyClaim([]*frame{live()}, time.Now()); r != queued || k != claimNone || claims != 0 {
		t.Errorf("push behind a snapshot: %v, claim %v (asked %d times), want queued for a writer goroutine", r, k, claims)
	}
	if r := o.push(updateFrame("d", "f", "more", 0, "d\x00f")); r != overflow {
		t.Errorf("third frame besides the snapshot, limit 1: %v, want overflow", r)
	}
	var got []string
	for batch := o.take(nil, 3); len(batch) > 0; batch = o.take(nil, 3) {
		if len(batch) > 3+1 {
			t.Errorf("took %d frames at once, max 3 (a node's frames are not split)", len(batch))
		}
		for _, f := range batch {
			got = append(got, string(f.data()))
		}
	}
	want := []string{
		`{"type":"new","uid":"a","state":"online"}`, `{"type":"update","uid":"a","endpoint":"temperature","data":"a1"}`,
		`{"type":"new","uid":"b","state":"online"}`, `{"type":"update","uid":"b","endpoint":"temperature","data":"b1"}`,
		`{"type":"new","uid":"c","state":"online"}`, `{"type":"update","uid":"c","endpoint":"temperature","data":"c1"}`,
		`{"type":"synced","nodes":3}`, `{"type":"update","uid":"d","endpoint":"e","data":"live"}`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("written:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if o.idle(); o.snaps != 0 {
		t.Errorf("%d snapshots counted after all was taken", o.snaps)
	}
	if _, _, k, _ := o.pushManyClaim([]*frame{live()}, time.Now()); k != claimWrite {
		t.Errorf("push once the snapshot is written: claim %v, want the flusher's", k)
	}
}
