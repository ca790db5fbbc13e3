package mqttsn

import (
	"strings"
	"testing"

	"github.com/goaiot/goaiot/bus"
)

// FuzzParseTopics: any predefined topics file is refused or gives ids in
// 1..65534 whose topics map to subjects.
func FuzzParseTopics(f *testing.F) {
	f.Add("# id topic\n1 gateway/check\n0x10 node/check\n")
	f.Add("0 a\n")
	f.Add("65535 a\n1 a/../b\n")
	f.Fuzz(func(t *testing.T, in string) {
		topics, err := ParseTopics(strings.NewReader(in))
		if err != nil {
			return
		}
		for id, name := range topics {
			if _, err := bus.TopicToSubject(name); id == 0 || id == 0xFFFF || err != nil {
				t.Fatalf("accepted topic %d %q: %v", id, name, err)
			}
		}
	})
}
