package persist

import (
	"errors"
	"fmt"
	"strings"
)

// Key is the bucket key of node id in the table of gateway (an instance
// name) of kind: "<kind>.<gateway>.<id>", each token escaped.
func Key(kind, gateway, id string) string {
	return Prefix(kind, gateway) + escape(id)
}

// Prefix is what every key of one gateway's table starts with.
func Prefix(kind, gateway string) string {
	return escape(kind) + "." + escape(gateway) + "."
}

// ParseKey returns the node id of key, a key of the table prefix (see
// Prefix) holds.
func ParseKey(prefix, key string) (string, error) {
	tok, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return "", fmt.Errorf("key %q: not under %q", key, prefix)
	}
	id, err := unescape(tok)
	if err != nil {
		return "", fmt.Errorf("key %q: %w", key, err)
	}
	return id, nil
}

const hexDigits = "0123456789ABCDEF"

// plain reports whether b stands for itself in a key token.
func plain(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-'
}

// escape makes s one key token: bytes outside [A-Za-z0-9_-] become =XX.
// The empty string becomes "=", which unescape refuses: no table has an
// empty id.
func escape(s string) string {
	if s == "" {
		return "="
	}
	var b strings.Builder
	for i := range len(s) {
		c := s[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xF])
	}
	return b.String()
}

var errBadToken = errors.New("not an escaped key token")

// unescape reverses escape, strictly: the one spelling escape makes.
func unescape(tok string) (string, error) {
	if tok == "" {
		return "", errBadToken
	}
	var b strings.Builder
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		if c != '=' || i+2 >= len(tok) {
			return "", errBadToken
		}
		hi, lo := strings.IndexByte(hexDigits, tok[i+1]), strings.IndexByte(hexDigits, tok[i+2])
		if hi < 0 || lo < 0 {
			return "", errBadToken
		}
		v := byte(hi<<4 | lo)
		if plain(v) {
			return "", errBadToken // escape never writes it so
		}
		b.WriteByte(v)
		i += 2
	}
	return b.String(), nil
}
