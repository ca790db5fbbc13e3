package coap

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"

	"github.com/goaiot/goaiot/internal/coapreply"
)

// Paths the gateway serves.
const (
	PathAlive  = "/alive"
	PathServer = "/server"
)

func (g *Gateway) router(secure bool) *mux.Router {
	r := mux.NewRouter()
	must(r.Handle(PathAlive, mux.HandlerFunc(func(w mux.ResponseWriter, m *mux.Message) { g.handleAlive(w, m, secure) })))
	must(r.Handle(PathServer, mux.HandlerFunc(func(w mux.ResponseWriter, m *mux.Message) { g.handleServer(w, m, secure) })))
	r.DefaultHandleFunc(g.handleUnknown)
	return r
}

// must panics on a programming error (a bad route pattern), never on input.
func must(err error) {
	if err != nil {
		panic(err)
	}
}

func (g *Gateway) handleAlive(w mux.ResponseWriter, m *mux.Message, secure bool) {
	body, ok := g.readPost(w, m)
	if !ok {
		return
	}
	b, err := ParseBeacon(body)
	if err != nil {
		g.reject(w, m, codes.BadRequest, PathAlive, err)
		return
	}
	src, err := g.sourceOf(w.Conn(), secure)
	if err != nil {
		g.reject(w, m, codes.BadRequest, PathAlive, err)
		return
	}
	src = src.withDestination(m)
	// Acknowledged = its commands reach it: the tracker takes them as soon
	// as it owns the node (one subscription for every node, made at start).
	_, err = g.beacon(src, w.Conn(), b)
	if err != nil {
		code := codes.ServiceUnavailable
		if errors.Is(err, errSecured) {
			code = codes.Forbidden
		}
		g.reject(w, m, code, PathAlive, err)
		return
	}
	g.beacons.Add(1)
	acknowledge(w, m)
}

func (g *Gateway) handleServer(w mux.ResponseWriter, m *mux.Message, secure bool) {
	body, ok := g.readPost(w, m)
	if !ok {
		return
	}
	u, err := ParseUpdate(body)
	if err != nil {
		g.reject(w, m, codes.BadRequest, PathServer, err)
		return
	}
	src, err := g.sourceOf(w.Conn(), secure)
	if err != nil {
		g.reject(w, m, codes.BadRequest, PathServer, err)
		return
	}
	if err := g.update(src, u); err != nil {
		g.reject(w, m, codes.NotFound, PathServer, err)
		return
	}
	acknowledge(w, m)
}

func (g *Gateway) handleUnknown(w mux.ResponseWriter, m *mux.Message) {
	if !coapreply.IsRequest(m.Code()) {
		// A response nobody waits for (a late answer to a discovery GET, a
		// node answering the gateway's answer): never answered back.
		g.log.Debug("coap response without a request dropped", "from", w.Conn().RemoteAddr(), "code", CodeText(m.Code()))
		return
	}
	path, _ := m.Path()
	g.reject(w, m, codes.NotFound, path, fmt.Errorf("no resource %q (%s)", path, m.Code()))
}

// readPost checks the method and reads a bounded body.
func (g *Gateway) readPost(w mux.ResponseWriter, m *mux.Message) ([]byte, bool) {
	holdConfirmable(w, m)
	path, _ := m.Path()
	if m.Code() != codes.POST {
		g.reject(w, m, codes.MethodNotAllowed, path, fmt.Errorf("method %s: only POST", m.Code()))
		return nil, false
	}
	if from, err := remoteAddrPort(w.Conn().RemoteAddr()); err == nil && !g.limiter.Allow(from.Addr().Unmap()) {
		g.limited.Add(1)
		g.reject(w, m, codes.TooManyRequests, path, fmt.Errorf("source %s over %g requests/s", from.Addr(), g.cfg.SourceRate))
		return nil, false
	}
	body, err := readBody(m.Body(), MaxPayload)
	if err != nil {
		g.reject(w, m, codes.RequestEntityTooLarge, path, err)
		return nil, false
	}
	return body, true
}

// readBody reads at most limit bytes of b (nil is an empty body). A body
// that can seek (go-coap's) is read at its size in one allocation.
func readBody(b io.Reader, limit int) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	if s, ok := b.(io.Seeker); ok {
		if n, err := bodyLeft(s); err == nil {
			if n > int64(limit) {
				return nil, fmt.Errorf("%w: more than %d bytes", ErrPayloadTooLarge, limit)
			}
			data := make([]byte, n)
			if _, err := io.ReadFull(b, data); err != nil {
				return nil, fmt.Errorf("read body: %w", err)
			}
			return data, nil
		}
	}
	data, err := io.ReadAll(io.LimitReader(b, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(data) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrPayloadTooLarge, limit)
	}
	return data, nil
}

// bodyLeft is how many bytes s has from where it is, where it stays.
func bodyLeft(s io.Seeker) (int64, error) {
	at, err := s.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	end, err := s.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	if _, err := s.Seek(at, io.SeekStart); err != nil {
		return 0, err
	}
	return end - at, nil
}

// remoteAddrPort is a peer's address: a *net.UDPAddr as it is (go-coap's
// UDP and DTLS peers), anything else parsed from its text.
func remoteAddrPort(a net.Addr) (netip.AddrPort, error) {
	if ua, ok := a.(*net.UDPAddr); ok && ua != nil {
		if ap := ua.AddrPort(); ap.IsValid() {
			return ap, nil
		}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("source address %q: %w", a, err)
	}
	return ap, nil
}

// reject answers an error code with the reason as diagnostic payload and
// logs it.
func (g *Gateway) reject(w mux.ResponseWriter, m *mux.Message, code codes.Code, path string, err error) {
	g.rejected.Add(1)
	g.bad.Warn("coap request rejected", "from", w.Conn().RemoteAddr(), "path", path, "code", CodeText(code), "err", err)
	msg := err.Error()
	if len(msg) > 128 {
		msg = msg[:128]
	}
	respond(w, m, code, msg)
}

// acknowledge answers a handled request 2.04: piggybacked on the ACK of
// a confirmable one, as a NON response to a NON one (package coapreply).
func acknowledge(w mux.ResponseWriter, m *mux.Message) {
	respond(w, m, codes.Changed, "")
}

// respond answers m with code and text, unless its No-Response option
// declines that class; a failed write (a closed conn) has nobody to tell.
func respond(w mux.ResponseWriter, m *mux.Message, code codes.Code, text string) {
	holdConfirmable(w, m)
	_ = coapreply.Reply(w, m, code, text)
}

// holdConfirmable keeps the peer of a confirmable request for PeerIdle:
// go-coap answers its retransmissions from the peer's response cache.
func holdConfirmable(w mux.ResponseWriter, m *mux.Message) {
	if m.Type() == message.Confirmable {
		if h := holdOf(w.Conn()); h != nil {
			h.confirmable.Store(true)
		}
	}
}

// CodeText renders a CoAP code as RFC 7252 writes it: "4.00 Bad Request".
func CodeText(c codes.Code) string {
	name := c.String()
	var b []byte
	for i, r := range []byte(name) {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b = append(b, ' ')
		}
		b = append(b, r)
	}
	return fmt.Sprintf("%d.%02d %s", c>>5, c&0x1f, b)
}
