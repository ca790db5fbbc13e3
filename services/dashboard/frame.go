package dashboard

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/gorilla/websocket"

	"github.com/goaiot/goaiot/sites"
)

// frame is one server message, encoded once and shared by every browser it
// goes to. wire is the complete websocket text frame (RFC 6455 §5.2: FIN,
// opcode 1, unmasked as from a server), so that a browser's writer can send
// a batch of frames in one system call. Large messages go to browsers that
// negotiated permessage-deflate through a PreparedMessage instead, which
// compresses once for all of them.
type frame struct {
	wire []byte
	hdr  uint8 // header length: the JSON text is wire[hdr:]
	// key is "uid\x00endpoint" for an update, which a slow browser may see
	// replaced by a later value of the same resource; empty otherwise.
	key string
	// barrier is set for node lifecycle messages (new, out, reset): an
	// update queued before one is never replaced by one queued after it.
	barrier bool
	// ext marks goaiot's extension messages (hello, synced, result,
	// history, site, collision, refused): only browsers that asked for
	// them get them (see client.ext).
	ext bool
	// seed, on a node's "new" or "reset", makes the messages that follow
	// it for Pyaiot's page: the node's seed values (protocol, ip or id),
	// as Pyaiot's gateways sent them. They are made when a Pyaiot page
	// needs them, not kept for every node.
	seed *seed
	// src, on a snapshot's frame, is the message it is encoded from when
	// first written (ensure): the index keeps its nodes' data, not their
	// encoded messages, and a snapshot is encoded by the browser's writer,
	// not under the hub's lock. Such a frame goes to one browser only and
	// is encoded by whoever holds it: the outbox (under its lock) or the
	// writer that took it.
	src *snapMsg
	// snap, on a snapshot's placeholder, is its nodes, expanded into
	// frames as the browser's writer takes them (outbox.take).
	snap *snapSource

	// pm is the message prepared for compressing browsers, made on first
	// use (two browsers may make it at once; either result is right).
	pm atomic.Pointer[websocket.PreparedMessage]
}

// newFrame encodes v as a text frame.
func newFrame(v any, key string, barrier bool) (*frame, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return &frame{wire: textFrame(b), hdr: uint8(headerLen(len(b))), key: key, barrier: barrier, ext: isExtension(v)}, nil
}

// mustFrame is newFrame for the message types, which always encode.
func mustFrame(v any, key string, barrier bool) *frame {
	f, err := newFrame(v, key, barrier)
	if err != nil {
		panic("dashboard: " + err.Error()) // only plain structs of strings and numbers reach here
	}
	return f
}

// data is the message's JSON text.
func (f *frame) data() []byte { return f.bytes()[f.hdr:] }

// size is the length of the JSON text.
func (f *frame) size() int { return len(f.bytes()) - int(f.hdr) }

// bytes is the complete websocket frame, encoded now if it is a
// snapshot's.
func (f *frame) bytes() []byte {
	if f.src != nil {
		f.wire, f.hdr = f.src.encode()
		f.src = nil
	}
	return f.wire
}

// prepared returns the message as a PreparedMessage, made on first use.
func (f *frame) prepared() (*websocket.PreparedMessage, error) {
	if pm := f.pm.Load(); pm != nil {
		return pm, nil
	}
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, f.data())
	if err != nil {
		return nil, fmt.Errorf("prepare message: %w", err)
	}
	f.pm.Store(pm)
	return pm, nil
}

func headerLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xffff:
		return 4
	}
	return 10
}

// textFrame is payload as one unmasked, final text frame.
func textFrame(payload []byte) []byte {
	n := len(payload)
	h := headerLen(n)
	b := make([]byte, h+n)
	putHeader(b[:h], n)
	copy(b[h:], payload)
	return b
}

// putHeader writes the header of a text frame of n bytes into dst, which
// is headerLen(n) long.
func putHeader(dst []byte, n int) {
	dst[0] = 0x80 | websocket.TextMessage // FIN, opcode text
	switch len(dst) {
	case 2:
		dst[1] = byte(n)
	case 4:
		dst[1] = 126
		binary.BigEndian.PutUint16(dst[2:], uint16(n))
	default:
		dst[1] = 127
		binary.BigEndian.PutUint64(dst[2:], uint64(n))
	}
}

// appendBatch appends frames to dst as one text frame whose payload is
// their JSON texts, one a line ('\n' between them; JSON encoding escapes
// every newline inside a message, so a line is always one message).
func appendBatch(dst []byte, frames []*frame) []byte {
	n := len(frames) - 1
	for _, f := range frames {
		n += f.size()
	}
	h := headerLen(n)
	at := len(dst)
	dst = slices.Grow(dst, h+n)[:at+h]
	putHeader(dst[at:], n)
	for i, f := range frames {
		if i > 0 {
			dst = append(dst, '\n')
		}
		dst = append(dst, f.data()...)
	}
	return dst
}

// isExtension reports whether v is one of goaiot's extension messages.
func isExtension(v any) bool {
	switch v.(type) {
	case helloMsg, syncedMsg, resultMsg, historyMsg, outcomeMsg, refused, sites.Collision, sites.Link:
		return true
	}
	return false
}

// framesFor returns what a browser gets of live frames: all of them for
// one that asked for goaiot's extensions; for Pyaiot's page, no extension
// message, and each node's seed values after its "new" or "reset". (A
// snapshot is made for its page: index.snapshot.)
func framesFor(ext bool, frames []*frame) []*frame {
	if ext {
		return frames
	}
	out := make([]*frame, 0, len(frames))
	for _, f := range frames {
		if f.ext {
			continue
		}
		out = append(out, f)
		out = append(out, f.seed.frames()...)
	}
	return out
}
