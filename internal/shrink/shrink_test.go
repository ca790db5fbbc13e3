package shrink_test

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/goaiot/goaiot/internal/shrink"
)

func TestMap(t *testing.T) {
	tests := []struct {
		name        string
		peak, left  int
		wantRebuilt bool
	}{
		{"small maps are left alone", shrink.MinPeak - 1, 0, false},
		{"a quarter or more left: kept", 1000, 250, false},
		{"less than a quarter left: rebuilt", 1000, 249, true},
		{"emptied: rebuilt", 100_000, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := make(map[string]int)
			var p shrink.Peak
			for i := range tt.peak {
				m[strconv.Itoa(i)] = i
			}
			m = shrink.Map(m, &p) // the sweep sees the peak
			for i := tt.left; i < tt.peak; i++ {
				delete(m, strconv.Itoa(i))
			}
			before := m
			m = shrink.Map(m, &p)
			m["probe"] = -1 // a rebuilt map is another map: the old one does not see this
			_, shared := before["probe"]
			if rebuilt := !shared; rebuilt != tt.wantRebuilt {
				t.Fatalf("rebuilt %v, want %v", rebuilt, tt.wantRebuilt)
			}
			if len(m) != tt.left+1 {
				t.Fatalf("%d entries after, want %d", len(m), tt.left+1)
			}
			for i := range tt.left {
				if v, ok := m[strconv.Itoa(i)]; !ok || v != i {
					t.Fatalf("entry %d lost in the rebuild", i)
				}
			}
		})
	}
}

// The point of it: the memory of the deleted entries comes back.
func TestMapGivesMemoryBack(t *testing.T) {
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	base := heap()
	m := make(map[string][16]byte)
	var p shrink.Peak
	for i := range 200_000 {
		m[strconv.Itoa(i)] = [16]byte{}
	}
	p.Note(len(m))
	for k := range m {
		delete(m, k)
	}
	emptied := heap()
	m = shrink.Map(m, &p)
	after := heap()
	runtime.KeepAlive(m)
	t.Logf("heap above base: %d KB emptied, %d KB after Map", (emptied-base)>>10, (after-base)>>10)
	if emptied-base < 1<<20 {
		t.Fatalf("the emptied map holds only %d KB: the test no longer shows the problem", (emptied-base)>>10)
	}
	if after > base+(emptied-base)/10 {
		t.Fatalf("after Map the heap is %d KB above its base, was %d KB", (after-base)>>10, (emptied-base)>>10)
	}
}
