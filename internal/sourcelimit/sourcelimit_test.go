package sourcelimit

import (
	"net/netip"
	"testing"
	"time"
)

func TestKey(t *testing.T) {
	tests := []struct{ addr, key string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::"},
		{"2001:db8:1:2:bbbb::7", "2001:db8:1:2::"},
		{"fe80::1%eth0", "fe80::"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if got := Key(netip.MustParseAddr(tt.addr)); got.String() != tt.key {
				t.Fatalf("sourceKey = %s, want %s", got, tt.key)
			}
		})
	}
}

// One host cannot escape its limit by changing the low 64 bits of its IPv6
// address, and a flooding source keeps its empty bucket when idle sources
// make room for new ones.
func TestLimiterBounds(t *testing.T) {
	l := New(1, 2)
	l.max = 8
	a := netip.MustParseAddr("2001:db8::1")
	b := netip.MustParseAddr("2001:db8::2")
	if !l.Allow(a) || !l.Allow(b) || l.Allow(a) {
		t.Fatal("two addresses of one /64 did not share one bucket of 2")
	}
	for i := range l.max - 1 { // other sources: one request each
		l.Allow(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}))
	}
	if len(l.peers) != l.max {
		t.Fatalf("%d limiters, want %d", len(l.peers), l.max)
	}
	// 1.5 s later the others' buckets are full again, the flooder's is not.
	l.evictLocked(time.Now().Add(1500 * time.Millisecond))
	if len(l.peers) != 1 {
		t.Fatalf("%d limiters after eviction, want the flooder's only", len(l.peers))
	}
	if _, kept := l.peers[Key(a)]; !kept {
		t.Fatal("the flooding source lost its empty bucket")
	}
	for i := range 4 * l.max { // and the cap holds whatever comes
		l.Allow(netip.AddrFrom4([4]byte{10, 0, 1, byte(i)}))
		if len(l.peers) > l.max {
			t.Fatalf("%d limiters kept, cap %d", len(l.peers), l.max)
		}
	}
}
