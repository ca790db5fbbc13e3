package queue

import "testing"

// FuzzParseKey: any bucket key parses or is refused without a panic, and
// what parses makes a key that parses back to the same node and resource.
func FuzzParseKey(f *testing.F) {
	f.Add(key("node-1", "led"))
	f.Add("bm9kZQ.")
	f.Add("no-dot")
	f.Add("!!.??")
	f.Fuzz(func(t *testing.T, k string) {
		node, res, err := parseKey(k)
		if err != nil {
			return
		}
		n2, r2, err := parseKey(key(node, res))
		if err != nil || n2 != node || r2 != res {
			t.Fatalf("key(%q, %q) parses to %q %q %v", node, res, n2, r2, err)
		}
	})
}

// FuzzParseEntry: any stored value is read or refused without a panic, and
// what is read names the node and resource of its key and encodes back to
// an entry that reads the same.
func FuzzParseEntry(f *testing.F) {
	good := &entry{Command: "c1", Node: "node-1", Resource: "led", Payload: []byte("1")}
	f.Add(good.key(), good.encode())
	f.Add(good.key(), []byte(`{"command":"c1","uid":"other","endpoint":"led"}`))
	f.Add("x.y", []byte(`{`))
	f.Fuzz(func(t *testing.T, k string, value []byte) {
		e, err := parseEntry(k, value)
		if err != nil {
			return
		}
		if e.key() != k || e.Command == "" {
			t.Fatalf("read %+v for key %q", e, k)
		}
		again, err := parseEntry(k, e.encode())
		if err != nil || again.Command != e.Command || again.Node != e.Node || again.Resource != e.Resource || string(again.Payload) != string(e.Payload) {
			t.Fatalf("re-encoded entry reads %+v, %v; want %+v", again, err, e)
		}
	})
}
