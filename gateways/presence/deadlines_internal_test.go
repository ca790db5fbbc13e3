package presence

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

// A sweep looks only at the entries filed in buckets that have begun, and
// files again those kept, by their new deadline.
func TestDeadlinesDueLooksOnlyAtDueBuckets(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		now        time.Duration // after t0
		wantLooked int           // of 100 entries, one deadline per second from t0
	}{
		{"before the first deadline's bucket", -time.Second, 0},
		{"within the first bucket", 500 * time.Millisecond, 1},
		{"ten seconds on", 9*time.Second + time.Millisecond, 10},
		{"past every deadline", time.Hour, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDeadlines(time.Second)
			for i := range 100 {
				d.file(&entry{Node: Node{ID: fmt.Sprint(i)}}, t0.Add(time.Duration(i)*time.Second))
			}
			looked := 0
			d.due(t0.Add(tt.now), func(*entry) (time.Time, bool) { looked++; return t0.Add(2 * time.Hour), true })
			if looked != tt.wantLooked {
				t.Errorf("looked at %d entries, want %d", looked, tt.wantLooked)
			}
			if n := d.len(); n != 100 {
				t.Errorf("%d entries filed after the sweep, want the 100 kept", n)
			}
			looked = 0
			d.due(t0.Add(tt.now), func(*entry) (time.Time, bool) { looked++; return time.Time{}, false })
			if looked != 0 {
				t.Errorf("a second sweep at the same time looked at %d entries, want 0 (the kept ones are refiled later)", looked)
			}
		})
	}
}

// Buckets before 1970 (a test clock) are floor-divided like the others.
func TestDeadlinesSlotBefore1970(t *testing.T) {
	d := newDeadlines(time.Second)
	tests := []struct {
		name string
		at   time.Time
		want int64
	}{
		{"epoch", time.Unix(0, 0), 0},
		{"just before", time.Unix(0, -1), -1},
		{"a second before", time.Unix(-1, 0), -1},
		{"just after", time.Unix(0, 1), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := d.slot(tt.at); got != tt.want {
				t.Errorf("slot(%v) = %d, want %d", tt.at, got, tt.want)
			}
		})
	}
}

// The tracker times nodes out exactly as a sweep over every node did: a
// node goes at the first sweep after it was silent for longer than the
// timeout, a refreshed one stays, and a node forgotten and seen again is
// timed by its new life only.
func TestSweepTimesOutByDeadline(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := t0
	var expired []string
	srv := bustest.StartServer(t)
	tr, err := New(Config{Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t), Protocol: bus.ProtocolCoAP,
		Gateway: "coap@test", Timeout: 10 * time.Second,
		Now:      func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		OnExpire: func(id string) { expired = append(expired, id) }})
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) { mu.Lock(); now = t0.Add(d); mu.Unlock() }
	see := func(ids ...string) {
		for _, id := range ids {
			if _, err := tr.Seen(id, "addr"); err != nil {
				t.Fatal(err)
			}
		}
	}
	steps := []struct {
		name string
		at   time.Duration
		do   func()
		want []string // expired by the sweep at that time
	}{
		{"seen", 0, func() { see("n1", "n2", "n3", "n4") }, nil},
		{"n2 refreshed", 5 * time.Second, func() { see("n2") }, nil},
		{"n3 forgotten, seen again", 6 * time.Second, func() { tr.Forget("n3"); see("n3") }, nil},
		{"n4 reset (a sign of life)", 7 * time.Second, func() { tr.Reset("n4") }, nil},
		{"silent for exactly the timeout: still online", 10 * time.Second, nil, nil},
		{"silent for longer", 10*time.Second + time.Millisecond, nil, []string{"n1"}},
		{"n2's timeout", 15*time.Second + time.Millisecond, nil, []string{"n2"}},
		{"n3's second life ends", 16*time.Second + time.Millisecond, nil, []string{"n3"}},
		{"n4 after its reset", 17*time.Second + time.Millisecond, nil, []string{"n4"}},
		{"nothing left", time.Hour, nil, nil},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			at(s.at)
			if s.do != nil {
				s.do()
			}
			expired = nil
			tr.sweep()
			if !slices.Equal(expired, s.want) {
				t.Errorf("expired %v, want %v", expired, s.want)
			}
		})
	}
	if n := tr.due.len(); n != 0 {
		t.Errorf("%d entries still filed with no node left", n)
	}
}
