package coap

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/goaiot/goaiot/bus"
)

// FuzzParseLinkFormat: any document parses or fails cleanly, and every
// resource name that comes out of it is a safe subject token.
func FuzzParseLinkFormat(f *testing.F) {
	for _, s := range []string{
		"</board>,</led>,</mcu>,</name>,</os>",
		`</>;title="General Info";ct=0,</time>;if="clock";rt="ticks";title="Internal Clock";ct=0;obs,</async>;ct=0`,
		`</a>;title="x, \"y\"; z",<coap://h/x>;anchor="/"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		links, err := ParseLinkFormat(doc)
		if err != nil {
			return
		}
		if len(links) > MaxLinks {
			t.Fatalf("%d links, max %d", len(links), MaxLinks)
		}
		for _, r := range resources(links, func(string, error) {}) {
			if err := bus.ValidateResource(r.name); err != nil {
				t.Fatalf("unsafe resource %q from %q: %v", r.name, doc, err)
			}
		}
	})
}

// FuzzParsePayload: /alive and /server payloads parse into safe tokens or
// fail cleanly; a parsed update rebuilds the payload exactly.
func FuzzParsePayload(f *testing.F) {
	for _, s := range []string{"alive:AB582D8277D4D97", "reset:1234", "temperature:21.5°C", "suit_state: 2", "a:b:c", ":", "\xff:x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		if b, err := ParseBeacon(payload); err == nil {
			if bus.ValidateNodeID(b.UID) != nil || (b.Kind != KindAlive && b.Kind != KindReset) {
				t.Fatalf("beacon %+v from %q", b, payload)
			}
		}
		u, err := ParseUpdate(payload)
		if err != nil {
			return
		}
		if bus.ValidateResource(u.Resource) != nil || !utf8.ValidString(u.Value) {
			t.Fatalf("update %+v from %q", u, payload)
		}
		if u.Resource+":"+u.Value != string(payload) || strings.Contains(u.Resource, ":") {
			t.Fatalf("update %+v does not rebuild %q", u, payload)
		}
	})
}
