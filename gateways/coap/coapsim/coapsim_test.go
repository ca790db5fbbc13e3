package coapsim_test

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/coap/coapsim"
)

// post is one decoded datagram the node sent to its gateway.
type post struct {
	from    *net.UDPAddr
	typ     message.Type
	code    codes.Code
	path    string
	payload string
}

// gatewaySocket captures what the node POSTs.
func gatewaySocket(t *testing.T) (*net.UDPConn, <-chan post) {
	t.Helper()
	l, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan post, 256)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := l.ReadFromUDP(buf)
			if err != nil {
				return
			}
			m := pool.NewMessage(context.Background())
			if _, err := m.UnmarshalWithDecoder(coder.DefaultCoder, buf[:n]); err != nil {
				continue
			}
			path, _ := m.Path()
			body, _ := m.ReadBody()
			ch <- post{from: from, typ: m.Type(), code: m.Code(), path: path, payload: string(body)}
		}
	}()
	return l, ch
}

func next(t *testing.T, ch <-chan post) post {
	t.Helper()
	select {
	case p := <-ch:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no datagram from the node")
		return post{}
	}
}

// runSensorNode runs node uid on ip:5683 until the test ends, its sensors
// posted to gateway every 20 ms.
func runSensorNode(t *testing.T, uid, ip, gateway string) {
	t.Helper()
	n, err := coapsim.New(coapsim.Config{UID: uid, Listen: ip + ":5683", Gateway: gateway,
		Sensors: true, SensorInterval: 20 * time.Millisecond, BeaconInterval: time.Hour, Logger: bustest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestWireLikeRIOT: the node boots with reset then alive, NON POSTs from an
// ephemeral port of its own address, and pushes its sensors.
func TestWireLikeRIOT(t *testing.T) {
	gw, posts := gatewaySocket(t)
	runSensorNode(t, "sim80", "127.0.53.80", gw.LocalAddr().String())

	for _, want := range []string{"reset:sim80", "alive:sim80"} {
		p := next(t, posts)
		if p.typ != message.NonConfirmable || p.code != codes.POST || p.path != "/alive" || p.payload != want {
			t.Errorf("got %s %s %s %q, want NON POST /alive %q", p.typ, p.code, p.path, p.payload, want)
		}
		if !p.from.IP.Equal(net.IPv4(127, 0, 53, 80)) || p.from.Port == 5683 {
			t.Errorf("sent from %s, want an ephemeral port of 127.0.53.80", p.from)
		}
	}
	seen := map[string]string{}
	for len(seen) < 3 {
		p := next(t, posts)
		if p.path != "/server" {
			t.Fatalf("unexpected %s %q", p.path, p.payload)
		}
		res, v, _ := strings.Cut(p.payload, ":")
		seen[res] = v
	}
	for res, unit := range map[string]string{"temperature": "°C", "pressure": "hPa", "humidity": "%"} {
		if !strings.HasSuffix(seen[res], unit) {
			t.Errorf("%s = %q", res, seen[res])
		}
	}
}

// TestServerWithLibcoap: libcoap's client reads and commands the node like
// a RIOT node_leds.
func TestServerWithLibcoap(t *testing.T) {
	client := bustest.Peer(t, "coap-client-notls")
	gw, _ := gatewaySocket(t)
	n, err := coapsim.New(coapsim.Config{UID: "sim81", Listen: "127.0.53.81:5683", Gateway: gw.LocalAddr().String(),
		Board: "native64", Name: "Node LED", Logger: bustest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-n.Ready()

	coap := func(args ...string) string {
		out, _ := exec.Command(client, append([]string{"-B", "2"}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"core", []string{"coap://127.0.53.81/.well-known/core"}, "</board>,</led>,</mcu>,</name>,</os>,</position>"},
		{"board", []string{"coap://127.0.53.81/board"}, "native64"},
		{"name", []string{"coap://127.0.53.81/name"}, "Node LED"},
		{"os", []string{"coap://127.0.53.81/os"}, "riot"},
		{"position", []string{"coap://127.0.53.81/position"}, `{"lat":48.71,"lng":2.2}`},
		{"led off", []string{"coap://127.0.53.81/led"}, "0"},
		{"led on", []string{"-m", "put", "-e", "1", "coap://127.0.53.81/led"}, "led:1"},
		{"led refuses 5", []string{"-m", "put", "-e", "5", "coap://127.0.53.81/led"}, "4.00"},
		{"no such resource", []string{"coap://127.0.53.81/nothing"}, "4.04"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := coap(tc.args...); !strings.Contains(got, tc.want) {
				t.Errorf("coap-client printed %q, want %q", got, tc.want)
			}
		})
	}
	if !n.LED() {
		t.Error("LED() = false after PUT 1")
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  coapsim.Config
	}{
		{"no uid", coapsim.Config{Listen: "127.0.0.2:5683", Gateway: "127.0.0.1:5683"}},
		{"colon in uid", coapsim.Config{UID: "a:b", Listen: "127.0.0.2:5683", Gateway: "127.0.0.1:5683"}},
		{"no listen", coapsim.Config{UID: "a", Gateway: "127.0.0.1:5683"}},
		{"no gateway", coapsim.Config{UID: "a", Listen: "127.0.0.2:5683"}},
		{"negative interval", coapsim.Config{UID: "a", Listen: "127.0.0.2:5683", Gateway: "127.0.0.1:5683", SensorInterval: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := coapsim.New(tc.cfg); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// TestPostsAfterGatewayGone: while the gateway's port is closed the node's
// datagrams bring back ICMP port unreachable, which ends go-coap's
// connected client; a RIOT node does not care and goes on sending, so the
// simulated node dials again and its next POSTs reach a gateway that came
// back on the same port.
func TestPostsAfterGatewayGone(t *testing.T) {
	gw, posts := gatewaySocket(t)
	addr := gw.LocalAddr().(*net.UDPAddr)
	runSensorNode(t, "sim81", "127.0.53.81", addr.String())
	next(t, posts)

	gw.Close()
	time.Sleep(300 * time.Millisecond) // some 15 sensor POSTs into a closed port
	again, err := net.ListenUDP("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	_ = again.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	if _, from, err := again.ReadFromUDP(buf); err != nil {
		t.Fatalf("no POST reached the gateway back on %s: %v", addr, err)
	} else if !from.IP.Equal(net.IPv4(127, 0, 53, 81)) {
		t.Fatalf("a datagram from %s, want the node", from)
	}
}
