package dashboard

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/goaiot/goaiot/bus"
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

// FuzzValueText: the fast path of a value payload gives what
// bus.ParseValue and Value.Text give, or leaves the payload to them.
func FuzzValueText(f *testing.F) {
	for _, s := range []string{
		`{"value":"21.5"}`,
		`{"value":"21.5°C","ts":"2026-12-02T18:30:53.123456789Z"}`,
		`{"value":"x","ts":"2026-12-02T18:30:53+01:00"}`,
		`{"value":"a\"b"}`, `{"value":"\u00e9"}`, "{\"value\":\"\xff\"}", `{"value":"x","ts":"nope"}`,
		`{"value":"x","ts":""}`, `{"value":"x","ts":"2026-12-02T18:30:53Z","value":"y"}`,
		`{"value":{"lat":1}}`, `{"value":"x"} `, `{"value":"x","ts":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, ts, ok := plainValue(data)
		if !ok {
			return
		}
		v, err := bus.ParseValue(data)
		if err != nil {
			t.Fatalf("fast path took %q, bus.ParseValue refuses it: %v", data, err)
		}
		if v.Text() != s || !v.Time.Equal(ts) || v.Time.String() != ts.String() {
			t.Fatalf("%q: fast path %q %v, bus %q %v", data, s, ts, v.Text(), v.Time)
		}
	})
}

// FuzzNewFrame: a "new" built without reflection (the index's, encoded
// for a snapshot or live) is byte for byte what encoding/json makes of
// newMsg.
func FuzzNewFrame(f *testing.F) {
	f.Add("n1", "site-a", "gw-1", "CoAP", "[fd00::1]:5683", "online", int64(1764700000000))
	f.Add("n<1>", "", "", "", "", "offline", int64(0))
	f.Add("é", "\u2028", "a&b", "\"\\\x01", "\xff", "reset", int64(-1))
	f.Fuzz(func(t *testing.T, uid, site, gateway, protocol, address, state string, ts int64) {
		st := bus.State{State: state, Protocol: protocol, Gateway: gateway, Site: site, Address: address}
		if ts != 0 {
			st.Time = time.UnixMilli(ts)
		}
		wire, hdr := newWire(uid, &st)
		want := mustFrame(newMsg{Type: typeNew, UID: uid, Site: site, Gateway: gateway, Protocol: protocol,
			Address: address, State: state, TS: millis(st.Time)}, "", true)
		if !bytes.Equal(wire, want.wire) || hdr != want.hdr {
			t.Fatalf("newWire %q\nencoding/json %q", wire, want.wire)
		}
	})
}

// FuzzUpdateFrame: an "update" built without reflection is byte for byte
// what encoding/json makes of updateMsg.
func FuzzUpdateFrame(f *testing.F) {
	f.Add("n1", "temperature", "21.5°C", int64(1764700000000))
	f.Add("n<1>", "a&b", "\u2028\"\\\x01\xff", int64(0))
	f.Add("é", "", "{\"lat\":1}", int64(-1))
	f.Fuzz(func(t *testing.T, uid, endpoint, data string, ts int64) {
		got := updateFrame(uid, endpoint, data, ts, "k")
		want := mustFrame(updateMsg{Type: typeUpdate, UID: uid, Endpoint: endpoint, Data: data, TS: ts}, "k", false)
		if !bytes.Equal(got.wire, want.wire) || got.hdr != want.hdr {
			t.Fatalf("updateFrame %q\nencoding/json %q", got.wire, want.wire)
		}
	})
}
