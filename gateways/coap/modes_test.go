package coap_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	"github.com/plgd-dev/go-coap/v3/options"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/coap"
	"github.com/goaiot/goaiot/gateways/coap/coapsim"
)

// TestObservedNode: a node listing its sensors with ;obs is observed; its
// values arrive as notifications, not pushes.
func TestObservedNode(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	events := bustest.Subscribe(t, nc, "node.>")
	g := startGateway(t, nc, nil)
	sim, _ := startSim(t, coapsim.Config{
		UID: "obs1", Listen: "127.0.53.50:5683", Gateway: g.Addr().String(),
		Sensors: true, IMU: true, Observe: true, SensorInterval: 50 * time.Millisecond, IMUInterval: 50 * time.Millisecond,
	})
	got := values(t, events, "obs1", "temperature", "imu")
	if !strings.HasSuffix(got["temperature"], "°C") || !strings.Contains(got["imu"], `"gyro"`) {
		t.Errorf("values %v", got)
	}
	bustest.Eventually(t, wait, "notifications", func() error { return bustest.Want(g.Stats().Notifications >= 4) })
	if n := sim.Observers("temperature"); n != 1 {
		t.Errorf("observers of temperature = %d, want 1", n)
	}
	if st := g.Stats(); st.Values != 0 {
		t.Errorf("%d values pushed to /server, want none from an observed node", st.Values)
	}
}

// TestIPv6SourcePort: over IPv6 loopback, with the gateway reaching nodes at
// the source port of their /alive (NAT and many nodes on one address).
func TestIPv6SourcePort(t *testing.T) {
	bustest.IPv6Loopback(t)
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	events := bustest.Subscribe(t, nc, "node.>")
	g := startGateway(t, nc, func(c *coap.Config) { c.Listen = "[::1]:0"; c.NodePort = coap.SourcePort })
	var sims []*coapsim.Node
	for _, uid := range []string{"v6a", "v6b"} {
		sim, _ := startSim(t, coapsim.Config{UID: uid, Listen: "[::1]:0", Gateway: g.Addr().String(), PostFromListener: true,
			Sensors: true, SensorInterval: 50 * time.Millisecond})
		sims = append(sims, sim)
	}
	got := states(t, events, "v6a", "v6b")
	for i, uid := range []string{"v6a", "v6b"} {
		if want := sims[i].Addr().String(); got[uid].Address != want {
			t.Errorf("%s at %q, want %q", uid, got[uid].Address, want)
		}
	}
	if r := command(t, nc, "v6b", "led", "1"); !r.OK || !sims[1].LED() || sims[0].LED() {
		t.Errorf("led on v6b: reply %+v, leds %v %v", r, sims[0].LED(), sims[1].LED())
	}
	for _, uid := range []string{"v6a", "v6b"} {
		if v := values(t, events, uid, "temperature")["temperature"]; !strings.HasSuffix(v, "°C") {
			t.Errorf("%s temperature %q", uid, v)
		}
	}
	// The gateway's NON 2.04 answers reach the nodes' server sockets: neither
	// side answers a response, so nothing bounces back to be refused.
	if st := g.Stats(); st.Rejected != 0 {
		t.Errorf("%d datagrams rejected: the nodes answered the gateway's answers", st.Rejected)
	}
}

// TestIPv6RIOTPort: over IPv6 a RIOT-like node POSTs from an ephemeral
// port and is reached on 5683 of its address.
func TestIPv6RIOTPort(t *testing.T) {
	// RIOT serves CoAP on 5683 and [::1] is the only IPv6 loopback address, so
	// this test needs that fixed port free (`task demo` holds it).
	bustest.IPv6Loopback(t)
	if l, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback, Port: 5683}); err != nil {
		bustest.Missing(t, "needs UDP [::1]:5683 free: %v", err)
	} else {
		l.Close()
	}
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	events := bustest.Subscribe(t, nc, "node.>")
	g := startGateway(t, nc, func(c *coap.Config) { c.Listen = "[::1]:0" })
	sim, _ := startSim(t, coapsim.Config{UID: "v6riot", Listen: "[::1]:5683", Gateway: g.Addr().String()})
	if s := states(t, events, "v6riot")["v6riot"]; s.Address != "[::1]:5683" {
		t.Errorf("address %q, want [::1]:5683", s.Address)
	}
	if r := command(t, nc, "v6riot", "led", "1"); !r.OK || !sim.LED() {
		t.Errorf("led: reply %+v, led %v", r, sim.LED())
	}
}

// TestDTLS: a node over DTLS with a pre-shared key is discovered and
// commanded over its own session.
func TestDTLS(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "psk")
	if err := os.WriteFile(keyFile, []byte("# identity key\nnode-7 000102030405060708090a0b0c0d0e0f\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := coap.LoadPSKFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	events := bustest.Subscribe(t, nc, "node.>")
	g := startGateway(t, nc, func(c *coap.Config) { c.DTLSListen = "127.0.0.1:0"; c.DTLSKeys = keys })

	led := "0"
	r := mux.NewRouter()
	_ = r.Handle("/.well-known/core", mux.HandlerFunc(func(w mux.ResponseWriter, _ *mux.Message) {
		_ = w.SetResponse(codes.Content, message.AppLinkFormat, strings.NewReader("</led>"))
	}))
	ledSet := make(chan string, 1)
	_ = r.Handle("/led", mux.HandlerFunc(func(w mux.ResponseWriter, m *mux.Message) {
		if m.Code() == codes.PUT {
			b := new(bytes.Buffer)
			_, _ = b.ReadFrom(m.Body())
			ledSet <- b.String()
			_ = w.SetResponse(codes.Changed, message.TextPlain, nil)
			return
		}
		_ = w.SetResponse(codes.Content, message.TextPlain, strings.NewReader(led))
	}))
	cc, err := dtls.Dial(g.DTLSAddr().String(), dtls.NewDTLSClientOptions(
		piondtls.WithPSK(func([]byte) ([]byte, error) { return keys["node-7"], nil }),
		piondtls.WithPSKIdentityHint([]byte("node-7")),
		piondtls.WithCipherSuites(piondtls.TLS_PSK_WITH_AES_128_CCM_8),
	), options.WithMux(r))
	if err != nil {
		t.Fatalf("dtls dial: %v", err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp, err := cc.Post(ctx, "/alive", message.TextPlain, strings.NewReader("alive:dtls7"))
	if err != nil || resp.Code() != codes.Changed {
		t.Fatalf("alive over dtls: %v %v", resp, err)
	}
	if s := states(t, events, "dtls7")["dtls7"]; s.State != bus.StateOnline || s.Address != cc.LocalAddr().String() {
		t.Errorf("$state %+v, want online at %s", s, cc.LocalAddr())
	}
	if v := nextValue(t, events, "dtls7", "led"); v != "0" {
		t.Errorf("led = %q", v)
	}
	if r := command(t, nc, "dtls7", "led", "1"); !r.OK {
		t.Errorf("command over dtls: %+v", r)
	}
	if got := <-ledSet; got != "1" {
		t.Errorf("node got %q", got)
	}
	// A NON value over the session gets its NON 2.04 over the session.
	req, err := cc.NewPostRequest(ctx, "/server", message.TextPlain, strings.NewReader("led:1"))
	if err != nil {
		t.Fatal(err)
	}
	req.SetType(message.NonConfirmable)
	if resp, err := cc.Do(req); err != nil || resp.Code() != codes.Changed || resp.Type() != message.NonConfirmable {
		t.Errorf("NON value over dtls: %v %v, want a NON 2.04", resp, err)
	}
	if got := request(t, dialFrom(t, g, "127.0.53.52"), codes.POST, "/alive", []byte("alive:dtls7")); got != codes.Forbidden {
		t.Errorf("plain coap takeover of a dtls node answered %s, want 4.03", coap.CodeText(got))
	}
	if addr, _ := lookupNode(g, "dtls7"); addr != cc.LocalAddr().String() {
		t.Errorf("dtls node now at %q", addr)
	}
}

// TestDiscoverRequest: gateway.<uid>.discover reads the node again and
// keeps its live observations (no second registration).
func TestDiscoverRequest(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	events := bustest.Subscribe(t, nc, "node.>")
	g := startGateway(t, nc, nil)
	// Beacons every second: the node must stay online (NodeTimeout 5 s) however
	// slowly a loaded machine runs the test.
	sim, _ := startSim(t, coapsim.Config{UID: "disc1", Listen: "127.0.53.51:5683", Gateway: g.Addr().String(),
		Sensors: true, Observe: true, SensorInterval: 50 * time.Millisecond, BeaconInterval: time.Second})
	bustest.Next(t, events, bus.NodeResources("disc1"), wait)
	bustest.Eventually(t, wait, "first discovery done and observed", func() error {
		return bustest.Want(g.Stats().Discovered == 1 && sim.Observers("humidity") == 1)
	})
	if _, err := nc.Request(bus.GatewayDiscover("disc1"), []byte(bus.DiscoverValues), wait); err != nil {
		t.Fatalf("discover request: %v", err)
	}
	bustest.Next(t, events, bus.NodeResources("disc1"), wait)
	if v := nextValue(t, events, "disc1", "board"); v != "native64" {
		t.Errorf("board = %q", v)
	}
	bustest.Eventually(t, wait, "second discovery done", func() error { return bustest.Want(g.Stats().Discovered == 2) })
	for _, res := range []string{"temperature", "pressure", "humidity"} {
		if n := sim.Observers(res); n != 1 {
			t.Errorf("%s has %d observers after a rediscovery, want 1", res, n)
		}
	}
	if _, err := nc.Request(bus.GatewayDiscover("nobody"), []byte(bus.DiscoverValues), 200*time.Millisecond); err == nil {
		t.Error("a gateway answered discover for a node it does not own")
	}
}
