package packet

import (
	"reflect"
	"testing"
)

// FuzzUnmarshal checks that no datagram makes Unmarshal panic, and that
// whatever decodes encodes back to the same message. Seeds are in
// testdata/fuzz/FuzzUnmarshal (RIOT emcute captures and one of each type).
func FuzzUnmarshal(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Unmarshal(b)
		if err != nil {
			return
		}
		enc, err := Marshal(p)
		if err != nil {
			t.Fatalf("marshal %#v: %v", p, err)
		}
		q, err := Unmarshal(enc)
		if err != nil {
			t.Fatalf("re-decode %x (from %x): %v", enc, b, err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip: %#v != %#v", p, q)
		}
	})
}
