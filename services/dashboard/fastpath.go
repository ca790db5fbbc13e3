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
	const room = 10 // the longest frame header
	b := make([]byte, room, room+len(`{"type":"update","uid":"","endpoint":"","data":"","ts":}`)+len(uid)+len(endpoint)+len(data)+20)
	b = append(b, `{"type":"update","uid":`...)
	b = appendString(b, uid)
	b = append(b, `,"endpoint":`...)
	b = appendString(b, endpoint)
	b = append(b, `,"data":`...)
	b = appendString(b, data)
	if ts != 0 {
		b = append(b, `,"ts":`...)
		b = strconv.AppendInt(b, ts, 10)
	}
	b = append(b, '}')
	n := len(b) - room
	h := headerLen(n)
	putHeader(b[room-h:room], n)
	return &frame{wire: b[room-h:], hdr: h, key: key}
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
