package dashboard

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeRequest: any browser frame decodes into a well-formed request
// or is refused with a reason that fits a websocket close frame (at most
// 123 bytes of valid UTF-8, RFC 6455 §5.5 and §7.1.6).
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"type":"new","data":"client"}`,
		`{"type":"update","data":{"uid":"n1","endpoint":"/led","payload":"1"},"id":"c1"}`,
		`{"type":"update","data":{"uid":"n1","endpoint":"led","payload":7}}`,
		`{"type":"history","data":{"uid":"n1","endpoint":"temperature","limit":5000},"id":"h"}`,
		`{"type":"\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"}`,
		`{"type":"update","data":{"uid":"n1","endpoint":"led","payload":{"x":1}}}`,
		`{"type":"update","data":[]}`,
		`{"type":"` + strings.Repeat(`\u0001`, 40) + `"}`,
		` [1,2]`,
		`{"type":`,
	} {
		f.Add([]byte(s))
	}
	const maxHistory = 1000
	f.Fuzz(func(t *testing.T, frame []byte) {
		req, err := decodeRequest(frame, maxHistory)
		if err != nil {
			if _, ok := err.(*badFrame); !ok {
				t.Fatalf("error %T %v is not a badFrame", err, err)
			}
			if r := err.Error(); len(r) > 123 || !utf8.ValidString(r) {
				t.Fatalf("close reason %q (%d bytes) does not fit a close frame", r, len(r))
			}
			return
		}
		if len(req.id) > maxIDLen {
			t.Fatalf("id of %d bytes accepted", len(req.id))
		}
		switch req.kind {
		case typeNew:
		case typeUpdate:
			if req.payload == nil {
				t.Fatalf("command without payload from %q", frame)
			}
		case typeHistory:
			if req.limit < 1 || req.limit > maxHistory {
				t.Fatalf("history limit %d", req.limit)
			}
		default:
			t.Fatalf("request of kind %q accepted", req.kind)
		}
	})
}
