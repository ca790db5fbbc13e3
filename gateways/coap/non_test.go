package coap_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/coap"
	"github.com/goaiot/goaiot/internal/coaptest"
)

// TestNONAnswers: NON requests get NON answers (2.04, or the error code
// with its reason), read off the wire, unless their No-Response option
// (RFC 7967) declines that class; what was declined still takes effect.
func TestNONAnswers(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	events := bustest.Subscribe(t, nc, "node.>")
	g := startGateway(t, nc, nil)
	node := coaptest.NewPeer(t, "127.0.53.120", g.Addr())
	node.Send(t, coaptest.Request(message.NonConfirmable, 1, "boot", codes.POST, coap.PathAlive, "reset:non1"))
	if got := node.Until(t, coaptest.Token("boot"), wait); len(got) != 1 || got[0].Code != codes.Changed || got[0].Type != message.NonConfirmable {
		t.Fatalf("boot beacon answered %v, want one NON 2.04", got)
	}

	noSuccess, noErrors := coaptest.NoResponse([]byte{2}), coaptest.NoResponse([]byte{8})
	for i, tc := range []struct {
		name          string
		from          string // the source: the node or a stranger
		code          codes.Code
		path, payload string
		opts          []message.Option
		want          codes.Code // codes.Empty: no answer at all
	}{
		{"value", "node", codes.POST, coap.PathServer, "temperature:1°C", nil, codes.Changed},
		{"beacon", "node", codes.POST, coap.PathAlive, "alive:non1", nil, codes.Changed},
		{"empty No-Response wants all", "node", codes.POST, coap.PathServer, "humidity:2%", []message.Option{coaptest.NoResponse(nil)}, codes.Changed},
		{"No-Response 2 silences 2.04", "node", codes.POST, coap.PathServer, "pressure:3hPa", []message.Option{noSuccess}, codes.Empty},
		{"No-Response 2 keeps 4.00", "node", codes.POST, coap.PathServer, "a.b:1", []message.Option{noSuccess}, codes.BadRequest},
		{"No-Response 8 silences 4.00", "node", codes.POST, coap.PathAlive, "alive:a.b", []message.Option{noErrors}, codes.Empty},
		{"unsafe uid", "stranger", codes.POST, coap.PathAlive, "alive:a.b", nil, codes.BadRequest},
		{"bad beacon", "stranger", codes.POST, coap.PathAlive, "hello", nil, codes.BadRequest},
		{"value from unknown node", "stranger", codes.POST, coap.PathServer, "temperature:1°C", nil, codes.NotFound},
		{"unknown path", "stranger", codes.POST, "/nothing", "x:y", nil, codes.NotFound},
		{"get alive", "stranger", codes.GET, coap.PathAlive, "", nil, codes.MethodNotAllowed},
		{"oversized", "stranger", codes.POST, coap.PathAlive, "alive:" + strings.Repeat("x", 1500), nil, codes.RequestEntityTooLarge},
		// Responses are never answered, or two peers would bounce them.
		{"stray response", "stranger", codes.Changed, "", "", nil, codes.Empty},
		{"response with a path", "stranger", codes.NotFound, coap.PathAlive, "", nil, codes.Empty},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := node
			if tc.from == "stranger" {
				p = coaptest.NewPeer(t, "127.0.53.121", g.Addr())
			}
			tok := fmt.Sprintf("n%d", i)
			p.Send(t, coaptest.Request(message.NonConfirmable, uint16(100+i), tok, tc.code, tc.path, tc.payload, tc.opts...))
			if tc.want == codes.Empty {
				// A probe sent after it: nothing may come before its answer.
				p.Send(t, coaptest.Request(message.NonConfirmable, uint16(200+i), "probe"+tok, codes.POST, "/nothing", ""))
				if got := p.Until(t, coaptest.Token("probe"+tok), wait); len(got) != 1 {
					t.Fatalf("got %v before the probe's answer, want no answer", got[:len(got)-1])
				}
				return
			}
			got := p.Until(t, coaptest.Token(tok), wait)
			a := got[len(got)-1]
			if len(got) != 1 || a.Type != message.NonConfirmable || a.Code != tc.want {
				t.Fatalf("answers %v, want one NON %s", got, coap.CodeText(tc.want))
			}
			if tc.want != codes.Changed && len(a.Payload) == 0 {
				t.Errorf("%s without a reason", coap.CodeText(a.Code))
			}
		})
	}
	// The silenced value was published all the same.
	if v := nextValue(t, events, "non1", "pressure"); v != "3hPa" {
		t.Errorf("pressure = %q, want 3hPa (No-Response silences the answer, not the value)", v)
	}
}

// TestNONRateLimited: a NON flood over the source's rate is answered 4.29
// (NON), the rest 2.04.
func TestNONRateLimited(t *testing.T) {
	g := startGateway(t, bustest.Connect(t, bustest.StartServer(t)), func(c *coap.Config) { c.SourceRate = 1 })
	p := coaptest.NewPeer(t, "127.0.53.122", g.Addr())
	const n = 20
	for i := range n {
		p.Send(t, coaptest.Request(message.NonConfirmable, uint16(i), fmt.Sprintf("r%d", i), codes.POST, coap.PathAlive, "alive:flood"))
	}
	count := map[codes.Code]int{}
	for i := range n {
		for _, a := range p.Until(t, coaptest.Token(fmt.Sprintf("r%d", i)), wait) {
			if a.Type != message.NonConfirmable {
				t.Fatalf("answer %v is not NON", a)
			}
			count[a.Code]++
		}
	}
	if count[codes.TooManyRequests] == 0 || count[codes.Changed] == 0 || count[codes.TooManyRequests]+count[codes.Changed] != n {
		t.Fatalf("answers by code %v: want %d, some 2.04 and the rest 4.29", count, n)
	}
	if got := g.Stats().Limited; got != int64(count[codes.TooManyRequests]) {
		t.Errorf("Limited counter %d, want %d", got, count[codes.TooManyRequests])
	}
}
