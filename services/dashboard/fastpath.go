package dashboard

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/goaiot/goaiot/bus"
)

// The dashboard decodes every value once and encodes its "update" once, on
// the one goroutine that reads node.> (the order of a node's messages is
// kept that way). These two steps are that goroutine's cost per value, so
// the payloads the gateways publish and the updates they become take a
// path without reflection; anything else takes encoding/json. Both paths
// give the same result (FuzzValueText, FuzzUpdateFrame).

// valueText is the text and the time of a node.<node>.<res> payload, as
// bus.ParseValue and bus.Value.Text give them.
func valueText(data []byte) (string, time.Time, error) {
	if s, ts, ok := plainValue(data); ok {
		return s, ts, nil
	}
	v, err := bus.ParseValue(data)
	if err != nil {
		return "", time.Time{}, err
	}
	return v.Text(), v.Time, nil
}

var (
	valuePrefix = []byte(`{"value":"`)
	tsPrefix    = []byte(`,"ts":`)
)

// plainValue parses exactly {"value":"S"} or {"value":"S","ts":"T"} (what
// bus.StringValue encodes) where S needs no unescaping; ok is false for
// anything else.
func plainValue(data []byte) (s string, ts time.Time, ok bool) {
	rest, ok := bytes.CutPrefix(data, valuePrefix)
	if !ok {
		return "", time.Time{}, false
	}
	i := bytes.IndexByte(rest, '"')
	if i < 0 || !plainText(rest[:i]) {
		return "", time.Time{}, false
	}
	text, rest := rest[:i], rest[i+1:]
	if len(rest) == 1 && rest[0] == '}' {
		return string(text), time.Time{}, true
	}
	quoted, ok := bytes.CutPrefix(rest, tsPrefix)
	if !ok || len(quoted) < 3 || quoted[0] != '"' || quoted[len(quoted)-1] != '}' {
		return "", time.Time{}, false
	}
	quoted = quoted[:len(quoted)-1]
	if bytes.IndexByte(quoted[1:], '"') != len(quoted)-2 || bytes.IndexByte(quoted, '\\') >= 0 {
		return "", time.Time{}, false
	}
	if err := ts.UnmarshalJSON(quoted); err != nil {
		return "", time.Time{}, false
	}
	return string(text), ts, true
}

// plainText reports whether b is the same inside a JSON string as
// decoded: valid UTF-8 without escapes or control characters.
func plainText(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == '\\' || c == '"' {
			return false
		}
	}
	return utf8.Valid(b)
}

// updateFrame is mustFrame(updateMsg{…}, key, false) built without
// reflection: one allocation, the header written in front of the JSON.
func updateFrame(uid, endpoint, data string, ts int64, key string) *frame {
	wire, hdr := updateWire(uid, endpoint, data, ts)
	return &frame{wire: wire, hdr: hdr, key: key}
}

// updateWire is the text frame of an "update" and its header's length.
func updateWire(uid, endpoint, data string, ts int64) ([]byte, uint8) {
	b := make([]byte, wireRoom, wireRoom+len(`{"type":"update","uid":"","endpoint":"","data":"","ts":}`)+len(uid)+len(endpoint)+len(data)+20)
	b = append(b, `{"type":"update","uid":`...)
	b = appendString(b, uid)
	b = append(b, `,"endpoint":`...)
	b = appendString(b, endpoint)
	b = append(b, `,"data":`...)
	b = appendString(b, data)
	b = appendTS(b, ts)
	return framed(append(b, '}'))
}

// newWire is the text frame of node uid's "new" in state st, as
// encoding/json writes newMsg, and its header's length.
func newWire(uid string, st *bus.State) ([]byte, uint8) {
	b := make([]byte, wireRoom, wireRoom+len(`{"type":"new","uid":"","site":"","gateway":"","protocol":"","address":"","state":"","ts":}`)+
		len(uid)+len(st.Site)+len(st.Gateway)+len(st.Protocol)+len(st.Address)+len(st.State)+20)
	b = append(b, `{"type":"new","uid":`...)
	b = appendString(b, uid)
	b = appendField(b, `,"site":`, st.Site)
	b = appendField(b, `,"gateway":`, st.Gateway)
	b = appendField(b, `,"protocol":`, st.Protocol)
	b = appendField(b, `,"address":`, st.Address)
	b = append(b, `,"state":`...)
	b = appendString(b, st.State)
	b = appendTS(b, millis(st.Time))
	return framed(append(b, '}'))
}

// appendField appends name and s, unless s is empty (omitempty).
func appendField(b []byte, name, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, name...), s)
}

// appendTS appends the "ts" field, unless ts is 0 (omitempty).
func appendTS(b []byte, ts int64) []byte {
	if ts == 0 {
		return b
	}
	return strconv.AppendInt(append(b, `,"ts":`...), ts, 10)
}

// wireRoom is the room left in front of a JSON text for its frame header:
// the longest header.
const wireRoom = 10

// framed writes the header of the text frame in front of the JSON text
// that follows b's first wireRoom bytes; it returns the frame and the
// header's length.
func framed(b []byte) ([]byte, uint8) {
	n := len(b) - wireRoom
	h := headerLen(n)
	putHeader(b[wireRoom-h:wireRoom], n)
	return b[wireRoom-h:], uint8(h)
}

// appendString appends s as encoding/json writes it.
func appendString(b []byte, s string) []byte {
	if safeString(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

// safeString reports whether encoding/json writes s as it is, between
// quotes: no character it escapes (control, quote, backslash, <, >, &,
// U+2028, U+2029) and valid UTF-8.
func safeString(s string) bool {
	ascii := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		case c >= 0x80:
			ascii = false
		}
	}
	return ascii || (utf8.ValidString(s) && !strings.ContainsAny(s, "\u2028\u2029"))
}
