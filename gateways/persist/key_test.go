package persist_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/goaiot/goaiot/gateways/persist"
)

// kvKey is what nats.go accepts as a key-value key.
var kvKey = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

func TestKey(t *testing.T) {
	tests := []struct {
		name, gateway, id, key string
	}{
		{"riot uid", "coap@lab", "AB582D8277D4D97", "coap.coap=40lab.AB582D8277D4D97"},
		{"emcute client id", "mqttsn@lab", "mqtt-2", "mqttsn.mqttsn=40lab.mqtt-2"},
		{"dots and wildcards", "gw", "a.b*>", "coap.gw.a=2Eb=2A=3E"},
		{"equals sign", "gw", "=", "coap.gw.=3D"},
		{"utf-8", "gw", "nœud", "coap.gw.n=C5=93ud"},
		{"spaces and slashes", "g w/1", "x y", "coap.g=20w=2F1.x=20y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind := strings.SplitN(tt.key, ".", 2)[0]
			key := persist.Key(kind, tt.gateway, tt.id)
			if key != tt.key {
				t.Fatalf("Key = %q, want %q", key, tt.key)
			}
			if !kvKey.MatchString(key) {
				t.Fatalf("%q is not a valid key-value key", key)
			}
			id, err := persist.ParseKey(persist.Prefix(kind, tt.gateway), key)
			if err != nil || id != tt.id {
				t.Fatalf("ParseKey = %q, %v; want %q", id, err, tt.id)
			}
		})
	}
}

func TestParseKeyRefuses(t *testing.T) {
	prefix := persist.Prefix("coap", "gw")
	for _, key := range []string{
		"coap.other.n1",       // another gateway's
		"mqttsn.gw.n1",        // another kind
		"coap.gw.",            // no id
		"coap.gw.=",           // the empty id
		"coap.gw.=4",          // cut short
		"coap.gw.=zz",         // not hex
		"coap.gw.=3d",         // lower-case hex: not escape's spelling
		"coap.gw.=41",         // "A" escaped: not escape's spelling
		"coap.gw.a.b",         // a raw dot
		"coap.gw.a/b",         // a raw slash
		"coap.gw.n1=2" + "E=", // a trailing '='
	} {
		t.Run(key, func(t *testing.T) {
			if id, err := persist.ParseKey(prefix, key); err == nil {
				t.Fatalf("ParseKey(%q) = %q, want an error", key, id)
			}
		})
	}
}

// FuzzParseKey: a key either does not parse or is exactly the key of the
// id it parses to; and every id has a valid key that parses back to it.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"AB582D8277D4D97", "mqtt-2", "a=2Eb", "=3D", "n=C5=93ud", "=", "=4", "x.y"} {
		f.Add(s)
	}
	prefix := persist.Prefix("coap", "gw")
	f.Fuzz(func(t *testing.T, s string) {
		if id, err := persist.ParseKey(prefix, prefix+s); err == nil {
			if k := persist.Key("coap", "gw", id); k != prefix+s {
				t.Fatalf("%q parses to %q, whose key is %q", s, id, k)
			}
		}
		if s == "" {
			return
		}
		key := persist.Key("coap", "gw", s)
		if !kvKey.MatchString(key) {
			t.Fatalf("key %q of %q is not a valid key-value key", key, s)
		}
		if id, err := persist.ParseKey(prefix, key); err != nil || id != s {
			t.Fatalf("key %q of %q parses to %q, %v", key, s, id, err)
		}
	})
}
