package coap_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/coap"
)

// dialFrom opens a go-coap client to the gateway from address ip.
func dialFrom(t *testing.T, g *coap.Gateway, ip string) *udpClient.Conn {
	t.Helper()
	cc, err := udp.Dial(g.Addr().String(), options.WithDialer(&net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(ip)}}))
	if err != nil {
		t.Fatalf("dial from %s: %v", ip, err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// request sends a confirmable request and returns the answer's code.
func request(t *testing.T, cc *udpClient.Conn, method codes.Code, path string, payload []byte) codes.Code {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var resp *pool.Message
	var err error
	switch method {
	case codes.GET:
		resp, err = cc.Get(ctx, path)
	default:
		resp, err = cc.Post(ctx, path, message.TextPlain, bytes.NewReader(payload))
	}
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer cc.ReleaseMessage(resp)
	return resp.Code()
}

// TestBadInput: malformed requests get a CoAP error and never create or
// touch a node.
func TestBadInput(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	g := startGateway(t, nc, func(c *coap.Config) { c.RequestTimeout = 200 * time.Millisecond })
	stranger := dialFrom(t, g, "127.0.53.40")
	for _, tc := range []struct {
		name    string
		method  codes.Code
		path    string
		payload string
		want    codes.Code
	}{
		{"empty alive", codes.POST, "/alive", "", codes.BadRequest},
		{"no colon", codes.POST, "/alive", "alive", codes.BadRequest},
		{"empty uid", codes.POST, "/alive", "alive:", codes.BadRequest},
		{"unknown kind", codes.POST, "/alive", "hello:n1", codes.BadRequest},
		{"not utf-8", codes.POST, "/alive", "alive:\xff\xfe", codes.BadRequest},
		{"dot in uid", codes.POST, "/alive", "alive:a.b", codes.BadRequest},
		{"wildcard uid", codes.POST, "/alive", "alive:>", codes.BadRequest},
		{"reserved uid", codes.POST, "/alive", "alive:$sys", codes.BadRequest},
		{"space in uid", codes.POST, "/alive", "alive:a b", codes.BadRequest},
		{"oversized", codes.POST, "/alive", "alive:" + strings.Repeat("x", 1500), codes.RequestEntityTooLarge},
		{"value from unknown node", codes.POST, "/server", "temperature:1°C", codes.NotFound},
		{"get alive", codes.GET, "/alive", "", codes.MethodNotAllowed},
		{"unknown path", codes.POST, "/nothing", "x:y", codes.NotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := request(t, stranger, tc.method, tc.path, []byte(tc.payload)); got != tc.want {
				t.Errorf("answer %s, want %s", coap.CodeText(got), coap.CodeText(tc.want))
			}
		})
	}
	if nodes := g.Nodes(); len(nodes) != 0 {
		t.Fatalf("bad input created nodes: %+v", nodes)
	}

	events := bustest.Subscribe(t, nc, "node.>")
	node := dialFrom(t, g, "127.0.53.41")
	if got := request(t, node, codes.POST, "/alive", []byte("alive:n41")); got != codes.Changed {
		t.Fatalf("valid alive answered %s", coap.CodeText(got))
	}
	for _, tc := range []struct{ name, payload string }{
		{"reserved resource", "$state:online"},
		{"resources", "resources:[]"},
		{"empty resource", ":1"},
		{"value not utf-8", "temperature:\xff"},
		{"nested resource", "a/b:1"},
	} {
		t.Run("known node "+tc.name, func(t *testing.T) {
			if got := request(t, node, codes.POST, "/server", []byte(tc.payload)); got != codes.BadRequest {
				t.Errorf("answer %s, want 4.00", coap.CodeText(got))
			}
		})
	}
	if got := request(t, node, codes.POST, "/server", []byte("temperature:20.0°C")); got != codes.Changed {
		t.Fatalf("valid value answered %s", coap.CodeText(got))
	}
	if v := nextValue(t, events, "n41", "temperature"); v != "20.0°C" {
		t.Errorf("temperature = %q", v)
	}
	if st := g.Stats(); st.Values != 1 {
		t.Errorf("values published %d, want only the valid one", st.Values)
	}
}

// fakeNode serves /.well-known/core and plain values on addr with go-coap,
// for nodes that behave in ways the simulator does not.
func fakeNode(t *testing.T, addr, core string, values map[string]string) {
	t.Helper()
	r := mux.NewRouter()
	_ = r.Handle("/.well-known/core", mux.HandlerFunc(func(w mux.ResponseWriter, _ *mux.Message) {
		_ = w.SetResponse(codes.Content, message.AppLinkFormat, strings.NewReader(core))
	}))
	for name, v := range values {
		_ = r.Handle("/"+name, mux.HandlerFunc(func(w mux.ResponseWriter, _ *mux.Message) {
			_ = w.SetResponse(codes.Content, message.TextPlain, strings.NewReader(v))
		}))
	}
	l, err := coapNet.NewListenUDP("udp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	s := udp.NewServer(options.WithMux(r))
	done := make(chan struct{})
	go func() { _ = s.Serve(l); close(done) }()
	t.Cleanup(func() { s.Stop(); <-done })
}

// TestUnsafeResourceNames: a node advertising names that are not safe
// subject tokens gets only its safe resources published.
func TestUnsafeResourceNames(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	events := bustest.Subscribe(t, nc, "node.>")
	g := startGateway(t, nc, nil)
	fakeNode(t, "127.0.53.42:5683",
		`</ok>;rt="x,y";ct=0,</bad.name>,</a/b>,<coap://[::1]/far>,</$state>,</resources>,</>,</.well-known/core>,</ok>,</w%20s>`,
		map[string]string{"ok": "fine", "bad.name": "no"})
	request(t, dialFrom(t, g, "127.0.53.42"), codes.POST, "/alive", []byte("alive:n42"))
	names, err := bus.ParseResources(bustest.Next(t, events, bus.NodeResources("n42"), wait).Data)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != "ok" {
		t.Errorf("resources = %v, want [ok]", names)
	}
	if v := nextValue(t, events, "n42", "ok"); v != "fine" {
		t.Errorf("ok = %q", v)
	}
}

// TestSilentDiscovery: a node that never answers discovery stays online on
// its beacons and is discovered once it answers.
func TestSilentDiscovery(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	events := bustest.Subscribe(t, nc, "node.>")
	g := startGateway(t, nc, func(c *coap.Config) { c.RequestTimeout = 200 * time.Millisecond })
	cc := dialFrom(t, g, "127.0.53.43")
	request(t, cc, codes.POST, "/alive", []byte("alive:n43"))
	bustest.Eventually(t, wait, "a failed discovery", func() error { return bustest.Want(g.Stats().DiscoveryFailures >= 1) })
	if _, ok := lookupNode(g, "n43"); !ok {
		t.Fatal("node not online after a failed discovery")
	}
	fakeNode(t, "127.0.53.43:5683", "</name>", map[string]string{"name": "late"})
	bustest.Eventually(t, wait, "the failed discovery to end", func() error {
		request(t, cc, codes.POST, "/alive", []byte("alive:n43"))
		return bustest.Want(g.Stats().Discovered == 1)
	})
	if v := nextValue(t, events, "n43", "name"); v != "late" {
		t.Errorf("name = %q", v)
	}
}

func lookupNode(g *coap.Gateway, uid string) (string, bool) {
	for _, n := range g.Nodes() {
		if n.ID == uid {
			return n.Address, true
		}
	}
	return "", false
}

// TestGarbageDatagrams: datagrams that are not CoAP, or too large, are
// dropped with a log line and the gateway keeps serving.
func TestGarbageDatagrams(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	g := startGateway(t, nc, nil)
	raw, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 53, 44)}, g.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, d := range [][]byte{
		{},
		{0xff},
		[]byte("hello, not coap"),
		{0x40, 0x02, 0x00, 0x01, 0xff},       // payload marker, no payload
		{0x5f, 0x02, 0x00, 0x01},             // token length 15
		{0x40, 0x02, 0x00, 0x01, 0xfd, 0xff}, // truncated extended option
		make([]byte, coap.MaxLinkFormat+100), // oversized
		{0x52, 0x02, 0, 1},                   // token announced, missing
	} {
		if _, err := raw.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	if got := request(t, dialFrom(t, g, "127.0.53.44"), codes.POST, "/alive", []byte("alive:n44")); got != codes.Changed {
		t.Fatalf("valid alive after garbage answered %s", coap.CodeText(got))
	}
	if nodes := g.Nodes(); len(nodes) != 1 || nodes[0].ID != "n44" {
		t.Errorf("nodes %+v, want only n44", nodes)
	}
}

// TestDiscoveryBudget: a node whose resources never answer holds its
// discovery slot for a bounded number of requests only.
func TestDiscoveryBudget(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	events := bustest.Subscribe(t, nc, "node.>")
	g := startGateway(t, nc, func(c *coap.Config) { c.RequestTimeout = 100 * time.Millisecond; c.MaxDiscoveries = 1 })
	var links []string
	for i := range 20 {
		links = append(links, fmt.Sprintf("</r%d>", i))
	}
	var gets atomic.Int64
	mute := mux.NewRouter()
	_ = mute.Handle("/.well-known/core", mux.HandlerFunc(func(w mux.ResponseWriter, _ *mux.Message) {
		_ = w.SetResponse(codes.Content, message.AppLinkFormat, strings.NewReader(strings.Join(links, ",")))
	}))
	mute.DefaultHandle(mux.HandlerFunc(func(mux.ResponseWriter, *mux.Message) { gets.Add(1) })) // acknowledged, never answered
	l, err := coapNet.NewListenUDP("udp", "127.0.53.46:5683")
	if err != nil {
		t.Fatal(err)
	}
	s := udp.NewServer(options.WithMux(mute))
	done := make(chan struct{})
	go func() { _ = s.Serve(l); close(done) }()
	t.Cleanup(func() { s.Stop(); <-done })

	request(t, dialFrom(t, g, "127.0.53.46"), codes.POST, "/alive", []byte("alive:n46"))
	bustest.Next(t, events, bus.NodeResources("n46"), wait)
	// With one discovery slot, the next node is discovered only once the
	// mute one gave up.
	fakeNode(t, "127.0.53.47:5683", "</name>", map[string]string{"name": "next"})
	request(t, dialFrom(t, g, "127.0.53.47"), codes.POST, "/alive", []byte("alive:n47"))
	if v := nextValue(t, events, "n47", "name"); v != "next" {
		t.Errorf("name = %q", v)
	}
	if n := gets.Load(); n >= 10 {
		t.Errorf("the mute node got %d GETs of its 20 resources, want the discovery cut short", n)
	}
}

// TestSourceRateLimit: a source over its rate gets 4.29 and is counted,
// while another source keeps being served.
func TestSourceRateLimit(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	g := startGateway(t, nc, func(c *coap.Config) { c.SourceRate = 5 })
	flood := dialFrom(t, g, "127.0.53.91")
	var ok, limited int
	for range 40 {
		switch got := request(t, flood, codes.POST, "/alive", []byte("alive:flood")); got {
		case codes.Changed:
			ok++
		case codes.TooManyRequests:
			limited++
		default:
			t.Fatalf("flood answered %s", coap.CodeText(got))
		}
	}
	t.Logf("40 requests in a burst: %d accepted, %d limited", ok, limited)
	if limited == 0 || ok < 10 {
		t.Fatalf("accepted %d, limited %d: want the burst of 10 accepted and the rest limited", ok, limited)
	}
	if got := g.Stats().Limited; got != int64(limited) {
		t.Fatalf("Limited counter %d, want %d", got, limited)
	}
	if got := request(t, dialFrom(t, g, "127.0.53.92"), codes.POST, "/alive", []byte("alive:calm")); got != codes.Changed {
		t.Fatalf("another source answered %s while one floods", coap.CodeText(got))
	}
}

// TestDiscoveryQueue: with more new nodes than discovery slots, each waits
// its turn and every one is discovered.
func TestDiscoveryQueue(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	named := bustest.Subscribe(t, nc, bus.NodeValue("*", "name"))
	g := startGateway(t, nc, func(c *coap.Config) { c.MaxDiscoveries = 2 })
	const nodes = 12
	for i := range nodes {
		ip := fmt.Sprintf("127.0.53.%d", 140+i)
		fakeNode(t, ip+":5683", "</name>", map[string]string{"name": fmt.Sprintf("q%d", i)})
		request(t, dialFrom(t, g, ip), codes.POST, "/alive", []byte(fmt.Sprintf("alive:q%d", i)))
	}
	// Two run at once: their values may come in either order.
	names := map[string]string{}
	deadline := time.After(wait)
	for len(names) < nodes {
		var m *nats.Msg
		select {
		case m = <-named:
		case <-deadline:
			t.Fatalf("names of %d nodes, want %d: %v", len(names), nodes, names)
		}
		s, err := bus.ParseSubject(m.Subject)
		v, verr := bus.ParseValue(m.Data)
		if err != nil || verr != nil {
			t.Fatalf("%s: %v %v", m.Subject, err, verr)
		}
		names[s.Node] = v.Text()
	}
	for uid, v := range names {
		if v != uid {
			t.Errorf("%s: name = %q", uid, v)
		}
	}
	bustest.Eventually(t, wait, "every discovery counted", func() error { return bustest.Want(g.Stats().Discovered == nodes) })
}
