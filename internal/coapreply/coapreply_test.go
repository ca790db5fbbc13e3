package coapreply_test

import (
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"

	"github.com/goaiot/goaiot/internal/coapreply"
	"github.com/goaiot/goaiot/internal/coaptest"
)

const wait = 10 * time.Second

func TestSuppressed(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  []byte // nil: no option; empty: option with an empty value
		code codes.Code
		want bool
	}{
		{"no option", nil, codes.Changed, false},
		{"empty value wants all", []byte{}, codes.Changed, false},
		{"zero wants all", []byte{0}, codes.BadRequest, false},
		{"2 suppresses 2.04", []byte{2}, codes.Changed, true},
		{"2 suppresses 2.05", []byte{2}, codes.Content, true},
		{"2 keeps 4.00", []byte{2}, codes.BadRequest, false},
		{"8 suppresses 4.29", []byte{8}, codes.TooManyRequests, true},
		{"8 suppresses 4.13", []byte{8}, codes.RequestEntityTooLarge, true},
		{"8 keeps 5.03", []byte{8}, codes.ServiceUnavailable, false},
		{"16 suppresses 5.03", []byte{16}, codes.ServiceUnavailable, true},
		{"26 suppresses all", []byte{26}, codes.NotFound, true},
		{"empty code never", []byte{26}, codes.Empty, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts message.Options
			if tc.opt != nil {
				opts = opts.Add(coaptest.NoResponse(tc.opt))
			}
			if got := coapreply.Suppressed(opts, tc.code); got != tc.want {
				t.Errorf("Suppressed(%v, %v) = %v, want %v", tc.opt, tc.code, got, tc.want)
			}
		})
	}
}

// serve runs a go-coap server on addr whose /ok answers 2.04 "done" and
// /bad 4.00 "why" through Reply; it returns the server's socket and the
// number of requests handled.
func serve(t *testing.T, addr string) (*coapNet.UDPConn, *atomic.Int64) {
	t.Helper()
	var handled atomic.Int64
	r := mux.NewRouter()
	for path, code := range map[string]codes.Code{"/ok": codes.Changed, "/bad": codes.BadRequest} {
		text := map[codes.Code]string{codes.Changed: "done", codes.BadRequest: "why"}[code]
		if err := r.Handle(path, mux.HandlerFunc(func(w mux.ResponseWriter, m *mux.Message) {
			handled.Add(1)
			if err := coapreply.Reply(w, m, code, text); err != nil {
				t.Errorf("reply: %v", err)
			}
		})); err != nil {
			t.Fatal(err)
		}
	}
	l, err := coapNet.NewListenUDP("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := udp.NewServer(options.WithMux(r))
	done := make(chan struct{})
	go func() { _ = s.Serve(l); close(done) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return l, &handled
}

// TestReply: what each kind of request gets back, read off the wire; a
// probe sent after a suppressed answer shows that nothing came before its
// own answer.
func TestReply(t *testing.T) {
	l, _ := serve(t, "127.0.0.1:0")
	for i, tc := range []struct {
		name       string
		typ        message.Type
		path       string
		noResponse []byte
		wantType   message.Type // of the answer; 0 with wantNone
		wantCode   codes.Code
		wantText   string
		wantNone   bool // nothing at all (NON suppressed)
	}{
		{"CON ok piggybacked", message.Confirmable, "/ok", nil, message.Acknowledgement, codes.Changed, "done", false},
		{"CON bad piggybacked", message.Confirmable, "/bad", nil, message.Acknowledgement, codes.BadRequest, "why", false},
		{"NON ok as NON", message.NonConfirmable, "/ok", nil, message.NonConfirmable, codes.Changed, "done", false},
		{"NON bad as NON", message.NonConfirmable, "/bad", nil, message.NonConfirmable, codes.BadRequest, "why", false},
		{"NON empty No-Response wants all", message.NonConfirmable, "/ok", []byte{}, message.NonConfirmable, codes.Changed, "done", false},
		{"NON ok, No-Response 2", message.NonConfirmable, "/ok", []byte{2}, 0, 0, "", true},
		{"NON bad, No-Response 8", message.NonConfirmable, "/bad", []byte{8}, 0, 0, "", true},
		{"NON bad, No-Response 2 keeps errors", message.NonConfirmable, "/bad", []byte{2}, message.NonConfirmable, codes.BadRequest, "why", false},
		{"CON ok, No-Response 2: empty ACK", message.Confirmable, "/ok", []byte{2}, message.Acknowledgement, codes.Empty, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := coaptest.NewPeer(t, "127.0.0.1", l.LocalAddr())
			var opts []message.Option
			if tc.noResponse != nil {
				opts = append(opts, coaptest.NoResponse(tc.noResponse))
			}
			mid := uint16(1000 + i)
			tok := fmt.Sprintf("t%d", i)
			p.Send(t, coaptest.Request(tc.typ, mid, tok, codes.POST, tc.path, "x", opts...))
			if tc.wantNone {
				p.Send(t, coaptest.Request(message.NonConfirmable, mid+100, "probe", codes.POST, "/ok", "x"))
				if got := p.Until(t, coaptest.Token("probe"), wait); len(got) != 1 {
					t.Fatalf("got %v before the probe's answer, want nothing", got[:len(got)-1])
				}
				return
			}
			match := coaptest.Token(tok)
			if tc.typ == message.Confirmable {
				match = coaptest.MessageID(mid) // an empty ACK has no token
			}
			got := p.Until(t, match, wait)
			a := got[len(got)-1]
			if len(got) != 1 || a.Type != tc.wantType || a.Code != tc.wantCode || string(a.Payload) != tc.wantText {
				t.Fatalf("answers %v, want one %v %v %q", got, tc.wantType, tc.wantCode, tc.wantText)
			}
			if a.Type == message.Acknowledgement && a.MessageID != int32(mid) {
				t.Errorf("ACK message id %d, want the request's %d", a.MessageID, mid)
			}
			if a.Type == message.NonConfirmable && a.MessageID == int32(mid) {
				t.Errorf("NON answer reuses the request's message id %d", mid)
			}
		})
	}
}

// TestNONNotCached: a NON request sent twice with one message id is
// handled twice and answered twice (go-coap's response cache, which would
// answer the second from memory for 247 s, is not used); a CON sent twice
// is handled once and its ACK repeated from the cache.
func TestNONNotCached(t *testing.T) {
	for _, tc := range []struct {
		name        string
		typ         message.Type
		wantHandled int64
	}{
		{"NON handled each time", message.NonConfirmable, 2},
		{"CON deduplicated", message.Confirmable, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, handled := serve(t, "127.0.0.1:0")
			p := coaptest.NewPeer(t, "127.0.0.1", l.LocalAddr())
			for i := range 2 {
				// go-coap forgets a message id only once the handler has
				// returned, just after the answer left: a copy that comes
				// in between is an in-flight duplicate, dropped unanswered.
				// So the copy is sent again until it is answered.
				deadline := time.Now().Add(wait)
				for {
					p.Send(t, coaptest.Request(tc.typ, 7, "same", codes.POST, "/ok", "x"))
					got, ok := p.Within(t, coaptest.Token("same"), time.Second)
					if ok && (len(got) != 1 || got[0].Code != codes.Changed) {
						t.Fatalf("send %d: answers %v, want one 2.04", i, got)
					}
					if ok {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("send %d: no answer within %s", i, wait)
					}
				}
			}
			if n := handled.Load(); n != tc.wantHandled {
				t.Errorf("handled %d times, want %d", n, tc.wantHandled)
			}
		})
	}
}

// TestReplyFromWildcard: a server on the wildcard address answers a NON
// from the address the request was sent to, not from another of the
// host's addresses.
func TestReplyFromWildcard(t *testing.T) {
	l, _ := serve(t, "0.0.0.0:0")
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 54, 9), Port: l.LocalAddr().(*net.UDPAddr).Port}
	p := coaptest.NewPeer(t, "127.0.54.10", to)
	for i, typ := range []message.Type{message.NonConfirmable, message.Confirmable} {
		tok := fmt.Sprintf("w%d", i)
		p.Send(t, coaptest.Request(typ, uint16(i), tok, codes.POST, "/ok", "x"))
		if got := p.Until(t, coaptest.Token(tok), wait); len(got) != 1 || got[0].Code != codes.Changed {
			t.Fatalf("%v: answers %v, want one 2.04 from %v", typ, got, to)
		}
	}
}
