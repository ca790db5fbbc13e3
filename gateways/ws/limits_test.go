package ws

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus"
)

// TestFitsOnBus compares fitsOnBus with the payload the tracker publishes,
// stamped with a time of the widest form (nine fraction digits).
func TestFitsOnBus(t *testing.T) {
	const max = bus.DefaultMaxValueBytes
	stamp := time.Date(2026, 12, 2, 13, 4, 5, 123456789, time.UTC)
	tests := []struct {
		name  string
		value string
	}{
		{"short", "21.5°C"},
		{"empty", ""},
		{"at the limit", strings.Repeat("x", max-valueEnvelope-2)},
		{"one byte over", strings.Repeat("x", max-valueEnvelope-1)},
		{"escapes push it over", strings.Repeat("<", max/6)},
		{"escapes just fit", strings.Repeat("\n", (max-valueEnvelope-2)/2)},
		{"multi-byte runes", strings.Repeat("é", (max-valueEnvelope-2)/2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(bus.StringValue(tt.value, stamp))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := fitsOnBus(tt.value, max), len(b) <= max; got != want {
				t.Errorf("fitsOnBus = %v, payload %d bytes (max %d)", got, len(b), max)
			}
		})
	}
}
