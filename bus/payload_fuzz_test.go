package bus

import (
	"encoding/json"
	"testing"
)

// FuzzParsePayloads: every payload parser of the subject tree (values,
// $state, resources, node.check, command replies and results) refuses any
// input or returns what its contract promises; none panics.
func FuzzParsePayloads(f *testing.F) {
	for _, s := range []string{
		`{"value":"21.5"}`, `{"value":{"lat":1}}`, `{"value":null}`, `{}`,
		`{"state":"online","protocol":"coap","ts":"2026-01-01T00:00:00Z"}`, `{"state":"gone"}`,
		`["temperature","led"]`, `["a.b"]`, `{"id":"node-1"}`, `{"id":"*"}`, `{"id":"a\"b"}`, `{"id":"é"}`, `{"id":""}`,
		`{"ok":false,"error":"timeout","code":"timeout"}`,
		`{"command":"c1","uid":"n","endpoint":"led","ok":true,"code":"delivered"}`, `{`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if v, err := ParseValue(data); err == nil && len(v.Value) == 0 {
			t.Fatalf("value without value: %q", data)
		}
		if s, err := ParseState(data); err == nil && s.State != StateOnline && s.State != StateOffline && s.State != StateReset {
			t.Fatalf("state %q accepted", s.State)
		}
		if names, err := ParseResources(data); err == nil {
			for _, n := range names {
				if ValidateResource(n) != nil {
					t.Fatalf("resource %q accepted", n)
				}
			}
		}
		if c, err := ParseCheck(data); err == nil && ValidateNodeID(c.ID) != nil {
			t.Fatalf("check id %q accepted", c.ID)
		}
		if got, err := AppendCheck(nil, string(data)); err != nil {
			t.Fatal(err)
		} else if want, _ := json.Marshal(Check{ID: string(data)}); string(got) != string(want) {
			t.Fatalf("AppendCheck(%q) = %s, encoding/json: %s", data, got, want)
		}
		if c, ok := plainCheck(data); ok {
			if j, err := parseCheckJSON(data); err != nil || j != c {
				t.Fatalf("plain check %q read as %+v, encoding/json: %+v, %v", data, c, j, err)
			}
		}
		_, _ = ParseReply(data)
		if r, err := ParseCommandResult(data); err == nil && (ValidateNodeID(r.Node) != nil || ValidateResource(r.Resource) != nil || r.Command == "") {
			t.Fatalf("command result %+v accepted", r)
		}
	})
}
