package ws_test

import (
	"strings"
	"testing"

	"github.com/goaiot/goaiot/gateways/ws"
)

// FuzzParseTokens: any tokens file is refused or lists only lines of a
// valid node id and a 64-digit hash; a valid line is always accepted.
func FuzzParseTokens(f *testing.F) {
	_, line, err := ws.NewToken("node-1")
	if err != nil {
		f.Fatal(err)
	}
	f.Add("# tokens\n" + line + "\n")
	f.Add("node-1 abc\n")
	f.Add("a.b " + strings.Repeat("0", 64) + "\n")
	f.Fuzz(func(t *testing.T, in string) {
		tokens, err := ws.ParseTokens(strings.NewReader(in))
		if err != nil {
			return
		}
		if tokens.Len() > strings.Count(in, "\n")+1 {
			t.Fatalf("%d tokens from %d lines", tokens.Len(), strings.Count(in, "\n")+1)
		}
	})
}
