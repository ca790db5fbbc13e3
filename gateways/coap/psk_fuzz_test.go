package coap

import (
	"strings"
	"testing"
)

// FuzzParsePSKeys: any keys file is refused or gives keys of at least 16
// bytes under non-empty identities without white space.
func FuzzParsePSKeys(f *testing.F) {
	f.Add("# keys\nnode-1 000102030405060708090a0b0c0d0e0f\n")
	f.Add("a b c\n")
	f.Add("id 00\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		keys, err := ParsePSKeys(strings.NewReader(in))
		if err != nil {
			return
		}
		for id, k := range keys {
			if id == "" || strings.ContainsAny(id, " \t\r\n") || len(k) < 16 {
				t.Fatalf("accepted identity %q with a %d-byte key", id, len(k))
			}
		}
	})
}
