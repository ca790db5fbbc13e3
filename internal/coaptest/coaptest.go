// Package coaptest is a raw CoAP peer for tests: it sends datagrams built
// field by field (types, message ids, options such as No-Response that
// higher-level clients hide) from a loopback address of its choice and
// reads every datagram that comes back, answers that should not come
// included.
package coaptest

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// Peer is a UDP socket speaking raw CoAP to one server.
type Peer struct {
	conn *net.UDPConn
	to   *net.UDPAddr
}

// NewPeer opens a socket on ip (an ephemeral port) toward server; it is
// closed when the test ends.
func NewPeer(t testing.TB, ip string, server net.Addr) *Peer {
	t.Helper()
	to, ok := server.(*net.UDPAddr)
	if !ok {
		t.Fatalf("coaptest: server address %v is not UDP", server)
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatalf("coaptest: listen on %s: %v", ip, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &Peer{conn: c, to: to}
}

// Request builds a request of type typ (message.Confirmable or
// NonConfirmable) to path with token tok; opts are extra options (see
// NoResponse).
func Request(typ message.Type, mid uint16, tok string, code codes.Code, path, payload string, opts ...message.Option) message.Message {
	m := message.Message{Type: typ, MessageID: int32(mid), Token: []byte(tok), Code: code, Payload: []byte(payload)}
	buf := make([]byte, 256)
	o, n, err := message.Options{}.SetPath(buf, path)
	if err != nil {
		panic(err) // a test's path, not input
	}
	if payload != "" {
		o, _, _ = o.SetContentFormat(buf[n:], message.TextPlain)
	}
	for _, opt := range opts {
		o = o.Add(opt)
	}
	m.Options = o
	return m
}

// NoResponse is RFC 7967's option with value v (nil: present and empty).
func NoResponse(v []byte) message.Option {
	return message.Option{ID: message.NoResponse, Value: v}
}

// Send writes m to the server.
func (p *Peer) Send(t testing.TB, m message.Message) {
	t.Helper()
	size, err := coder.DefaultCoder.Size(m)
	if err != nil {
		t.Fatalf("coaptest: size of %v %v: %v", m.Type, m.Code, err)
	}
	buf := make([]byte, size)
	n, err := coder.DefaultCoder.Encode(m, buf)
	if err != nil {
		t.Fatalf("coaptest: encode %v %v: %v", m.Type, m.Code, err)
	}
	if _, err := p.conn.WriteToUDP(buf[:n], p.to); err != nil {
		t.Fatalf("coaptest: send: %v", err)
	}
}

// SendRaw writes a datagram as it is (a captured one, a malformed one).
func (p *Peer) SendRaw(t testing.TB, data []byte) {
	t.Helper()
	if _, err := p.conn.WriteToUDP(data, p.to); err != nil {
		t.Fatalf("coaptest: send: %v", err)
	}
}

// Token matches a message by its token.
func Token(tok string) func(message.Message) bool {
	return func(m message.Message) bool { return string(m.Token) == tok }
}

// MessageID matches a message by its id (an ACK or RST has no token).
func MessageID(mid uint16) func(message.Message) bool {
	return func(m message.Message) bool { return m.MessageID == int32(mid) }
}

// Until reads datagrams until one matches, within timeout, and returns
// every datagram read, that one last. Each must come from the server's
// address (a client that connected its socket would drop any other).
func (p *Peer) Until(t testing.TB, match func(message.Message) bool, timeout time.Duration) []message.Message {
	t.Helper()
	got, ok := p.Within(t, match, timeout)
	if !ok {
		t.Fatalf("coaptest: no awaited answer within %s (got %v)", timeout, got)
	}
	return got
}

// Within is Until that reports a timeout (ok false) instead of failing.
func (p *Peer) Within(t testing.TB, match func(message.Message) bool, timeout time.Duration) (got []message.Message, ok bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1500)
	for {
		_ = p.conn.SetReadDeadline(deadline)
		n, from, err := p.conn.ReadFromUDP(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return got, false
		}
		if err != nil {
			t.Fatalf("coaptest: read: %v", err)
		}
		if !from.IP.Equal(p.to.IP) || from.Port != p.to.Port {
			t.Fatalf("coaptest: datagram from %v, want from the server %v", from, p.to)
		}
		m := message.Message{Options: make(message.Options, 0, 16)}
		if _, err := coder.DefaultCoder.Decode(bytes.Clone(buf[:n]), &m); err != nil {
			t.Fatalf("coaptest: decode % x: %v", buf[:n], err)
		}
		got = append(got, m)
		if match(m) {
			return got, true
		}
	}
}
