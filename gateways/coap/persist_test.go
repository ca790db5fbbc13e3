package coap

import (
	"encoding/json"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus"
)

func TestNodeEntryRoundTrip(t *testing.T) {
	since := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	tests := []struct {
		name string
		n    *node
	}{
		{"plain", &node{uid: "AB582D8277D4D97", since: since,
			src: source{from: netip.MustParseAddrPort("[fd00:dead:beef::1]:54457")}}},
		{"wildcard listener", &node{uid: "n1", since: since,
			src: source{from: netip.MustParseAddrPort("10.0.0.7:40000"), to: net.ParseIP("10.0.0.1")}}},
		{"dtls, zoned", &node{uid: "n2", since: since,
			src: source{from: netip.MustParseAddrPort("[fe80::1%eth0]:5684"), secure: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.n.entry())
			if err != nil {
				t.Fatal(err)
			}
			e, err := decodeEntry(tt.n.uid, b)
			if err != nil {
				t.Fatalf("decode %s: %v", b, err)
			}
			if e != tt.n.entry() {
				t.Fatalf("decoded %+v, want %+v", e, tt.n.entry())
			}
		})
	}
}

func TestDecodeEntryRefuses(t *testing.T) {
	tests := []struct {
		name, uid, data string
	}{
		{"not json", "n1", "\x00garbage"},
		{"another version", "n1", `{"v":2,"uid":"n1","from":"10.0.0.1:1"}`},
		{"another node's", "n1", `{"v":1,"uid":"n2","from":"10.0.0.1:1"}`},
		{"unsafe uid", "a.b", `{"v":1,"uid":"a.b","from":"10.0.0.1:1"}`},
		{"reserved uid", "check", `{"v":1,"uid":"check","from":"10.0.0.1:1"}`},
		{"no source", "n1", `{"v":1,"uid":"n1"}`},
		{"source port 0", "n1", `{"v":1,"uid":"n1","from":"10.0.0.1:0"}`},
		{"unspecified source", "n1", `{"v":1,"uid":"n1","from":"0.0.0.0:5683"}`},
		{"a name, not an address", "n1", `{"v":1,"uid":"n1","from":"evil.example:5683"}`},
		{"bad gateway address", "n1", `{"v":1,"uid":"n1","from":"10.0.0.1:1","to":"nowhere"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if e, err := decodeEntry(tt.uid, []byte(tt.data)); err == nil {
				t.Fatalf("decoded %+v", e)
			}
		})
	}
}

// FuzzDecodeEntry: whatever the bucket holds under a key, an entry either
// is refused or names that node, a safe uid and a usable source.
func FuzzDecodeEntry(f *testing.F) {
	f.Add("AB582D8277D4D97", []byte(`{"v":1,"uid":"AB582D8277D4D97","from":"[fd00::1]:54457","since":"2026-01-02T03:04:05Z"}`))
	f.Add("n1", []byte(`{"v":1,"uid":"n1","from":"10.0.0.7:4","to":"10.0.0.1","dtls":true}`))
	f.Add("n1", []byte(`{"v":1,"uid":"n1","from":"[fe80::1%eth0]:5684"}`))
	f.Add("n1", []byte(`{"v":1,"uid":"n1","from":"10.0.0.7:4","since":"nope"}`))
	g := &Gateway{cfg: Config{NodePort: DefaultNodePort}}
	f.Fuzz(func(t *testing.T, uid string, data []byte) {
		e, err := decodeEntry(uid, data)
		if err != nil {
			return
		}
		if e.UID != uid || bus.ValidateNodeID(e.UID) != nil {
			t.Fatalf("entry of %q under %q", e.UID, uid)
		}
		from, err := entrySource(e.From)
		if err != nil || from.Port() == 0 {
			t.Fatalf("source %q: %v", e.From, err)
		}
		src := g.sourceAt(from, e.DTLS)
		if src.key == "" || !g.nodeAddr(src).IsValid() {
			t.Fatalf("source %+v of %q", src, e.From)
		}
	})
}
