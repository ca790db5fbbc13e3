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
