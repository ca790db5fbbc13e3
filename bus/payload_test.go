package bus

import (
	"encoding/json"
	"testing"
	"time"
)

func TestValueText(t *testing.T) {
	tests := []struct {
		name, payload, text string
		wantErr             bool
	}{
		{"unit string", `{"value":"21.5°C"}`, "21.5°C", false},
		{"number", `{"value":42}`, "42", false},
		{"object", `{"value":{"lat":48.71,"lng":2.2}}`, `{"lat":48.71,"lng":2.2}`, false},
		{"with time", `{"value":"1","ts":"2026-11-25T10:00:00Z"}`, "1", false},
		{"no value", `{"val":"1"}`, "", true},
		{"not json", `21.5`, "", true},
		{"empty", ``, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := ParseValue([]byte(tt.payload))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseValue(%s) error %v, wantErr %v", tt.payload, err, tt.wantErr)
			}
			if err == nil && v.Text() != tt.text {
				t.Fatalf("Text() = %q, want %q", v.Text(), tt.text)
			}
		})
	}
}

func TestStringValueRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, s := range []string{"21.5°C", `quote " and \ backslash`, "", " suit_state: 2"} {
		t.Run(s, func(t *testing.T) {
			b := mustJSON(t, StringValue(s, now))
			v, err := ParseValue(b)
			if err != nil {
				t.Fatal(err)
			}
			if v.Text() != s || !v.Time.Equal(now) {
				t.Fatalf("round trip = %q %v, want %q %v", v.Text(), v.Time, s, now)
			}
		})
	}
}

func TestParseState(t *testing.T) {
	tests := []struct {
		name, payload string
		ok            bool
	}{
		{"online", `{"state":"online","protocol":"CoAP","gateway":"coap@h","site":"s","address":"[::1]:5683"}`, true},
		{"offline", `{"state":"offline"}`, true},
		{"reset", `{"state":"reset"}`, true},
		{"unknown", `{"state":"sleeping"}`, false},
		{"bad json", `{`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseState([]byte(tt.payload)); (err == nil) != tt.ok {
				t.Fatalf("ParseState(%s) = %v, want ok=%v", tt.payload, err, tt.ok)
			}
		})
	}
}

func TestParseResourcesAndCheck(t *testing.T) {
	tests := []struct {
		name    string
		parse   func([]byte) error
		payload string
		ok      bool
	}{
		{"resources", parseResources, `["board","led","temperature"]`, true},
		{"resources unsafe", parseResources, `["board","a.b"]`, false},
		{"resources reserved", parseResources, `["$state"]`, false},
		{"resources not list", parseResources, `{"a":1}`, false},
		{"check", parseCheck, `{"id":"mqtt-2"}`, true},
		{"check riot spacing", parseCheck, `{"id": "mqtt-2"}`, true},
		{"check unsafe", parseCheck, `{"id":"a>b"}`, false},
		{"check empty", parseCheck, `{}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.parse([]byte(tt.payload)); (err == nil) != tt.ok {
				t.Fatalf("parse(%s) = %v, want ok=%v", tt.payload, err, tt.ok)
			}
		})
	}
}

// The plain node.check form is read without encoding/json, and exactly as
// encoding/json reads it; anything else is left to encoding/json.
func TestPlainCheckAgreesWithJSON(t *testing.T) {
	tests := []struct {
		name, payload string
		plain         bool
	}{
		{"gateway's form", `{"id":"coap-1"}`, true},
		{"empty id", `{"id":""}`, true},
		{"riot spacing", `{"id": "mqtt-2"}`, false},
		{"escaped quote", `{"id":"a\"b"}`, false},
		{"escape sequence", `{"id":"a\u0041"}`, false},
		{"not ascii", `{"id":"é"}`, false},
		{"trailing field", `{"id":"a","x":1}`, false},
		{"not closed", `{"id":"a"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := plainCheck([]byte(tt.payload))
			if ok != tt.plain {
				t.Fatalf("plainCheck(%s) ok=%v, want %v", tt.payload, ok, tt.plain)
			}
			if !ok {
				return
			}
			if j, err := parseCheckJSON([]byte(tt.payload)); err != nil || j != c {
				t.Fatalf("plainCheck(%s) = %+v, encoding/json: %+v, %v", tt.payload, c, j, err)
			}
		})
	}
}

// AppendCheck writes what encoding/json writes, by hand when it can.
func TestAppendCheckIsJSON(t *testing.T) {
	for _, id := range []string{"coap-1", "", "a\"b", "a\\b", "é", "<&>", "tab\t"} {
		t.Run(id, func(t *testing.T) {
			got, err := AppendCheck([]byte("x"), id)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(Check{ID: id})
			if string(got) != "x"+string(want) {
				t.Fatalf("AppendCheck(%q) = %s, want x%s", id, got, want)
			}
		})
	}
}

func parseResources(b []byte) error { _, err := ParseResources(b); return err }
func parseCheck(b []byte) error     { _, err := ParseCheck(b); return err }
