package coap

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/goaiot/goaiot/bus"
)

// MaxPayload is the largest /alive or /server body accepted, in bytes.
// RIOT's gcoap buffers are 128 bytes; 1 KiB leaves room for JSON values.
const MaxPayload = 1024

// Beacon kinds carried in an /alive payload.
const (
	KindAlive = "alive"
	KindReset = "reset"
)

// Errors of payload parsing; test with errors.Is.
var (
	ErrEmptyPayload    = errors.New("empty payload")
	ErrPayloadTooLarge = errors.New("payload too large")
	ErrNotUTF8         = errors.New("payload not UTF-8")
	ErrNoSeparator     = errors.New("payload has no ':'")
	ErrUnknownKind     = errors.New("unknown beacon kind")
)

// Beacon is a parsed /alive payload.
type Beacon struct {
	Kind string // KindAlive or KindReset
	UID  string
}

// ParseBeacon parses an /alive payload, "alive:<uid>" or "reset:<uid>".
// Unlike Pyaiot, which takes the text after the last ':', the uid is the
// whole text after the first ':' (never silently cut), validated as a
// subject token.
func ParseBeacon(payload []byte) (Beacon, error) {
	kind, uid, err := splitPayload(payload)
	if err != nil {
		return Beacon{}, fmt.Errorf("alive: %w", err)
	}
	if kind != KindAlive && kind != KindReset {
		return Beacon{}, fmt.Errorf("alive: %w %q", ErrUnknownKind, kind)
	}
	if err := bus.ValidateNodeID(uid); err != nil {
		return Beacon{}, fmt.Errorf("alive: %w", err)
	}
	return Beacon{Kind: kind, UID: uid}, nil
}

// Update is a parsed /server payload: one value of one resource.
type Update struct {
	Resource string
	Value    string
}

// ParseUpdate parses a /server payload "<res>:<value>", split at the first
// ':'. The value is kept exactly as sent (RIOT's SUIT fork sends a leading
// space), and may be empty.
func ParseUpdate(payload []byte) (Update, error) {
	res, value, err := splitPayload(payload)
	if err != nil {
		return Update{}, fmt.Errorf("server: %w", err)
	}
	if err := bus.ValidateResource(res); err != nil {
		return Update{}, fmt.Errorf("server: %w", err)
	}
	return Update{Resource: res, Value: value}, nil
}

func splitPayload(payload []byte) (string, string, error) {
	switch {
	case len(payload) == 0:
		return "", "", ErrEmptyPayload
	case len(payload) > MaxPayload:
		return "", "", fmt.Errorf("%w: %d bytes, max %d", ErrPayloadTooLarge, len(payload), MaxPayload)
	case !utf8.Valid(payload):
		return "", "", ErrNotUTF8
	}
	head, tail, ok := strings.Cut(string(payload), ":")
	if !ok {
		return "", "", ErrNoSeparator
	}
	return head, tail, nil
}

// checkValue accepts a resource value read from a node: UTF-8, bounded.
func checkValue(b []byte) error {
	switch {
	case len(b) > MaxValue:
		return fmt.Errorf("value: %w: %d bytes, max %d", ErrPayloadTooLarge, len(b), MaxValue)
	case !utf8.Valid(b):
		return fmt.Errorf("value: %w", ErrNotUTF8)
	}
	return nil
}

// MaxValue is the largest resource value read from a node and published.
const MaxValue = 4096
