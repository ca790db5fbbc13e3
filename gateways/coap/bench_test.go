package coap_test

import (
	"context"
	"encoding/binary"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/coap"
	"github.com/goaiot/goaiot/internal/coapreply"
)

// benchPayload is what node_bmx280 pushes every 5 s.
const benchPayload = "temperature:21.5°C"

// nonPost is a NON POST /server datagram as RIOT sends it: token of 2
// bytes, Uri-Path "server", Content-Format 0, then the payload.
func nonPost(payload string) []byte {
	b := []byte{0x52, 0x02, 0, 0, 0, 0, 0xb6, 's', 'e', 'r', 'v', 'e', 'r', 0x10, 0xff}
	return append(b, payload...)
}

// window is how many values may be in flight: enough to keep the gateway
// busy, few enough never to overflow a socket buffer on loopback.
const window = 64

// pushValues sends b.N /server values from 127.0.53.70 to addr, at most
// window ahead of what received counts, and waits for all of them.
func pushValues(b *testing.B, addr net.Addr, received *atomic.Int64) {
	b.Helper()
	to := addr.(*net.UDPAddr)
	msg := nonPost(benchPayload)
	var conn *net.UDPConn
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%60000 == 0 { // a fresh source port before message ids wrap
			if conn != nil {
				conn.Close()
			}
			var err error
			if conn, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 53, 70)}); err != nil {
				b.Fatal(err)
			}
		}
		for stall := time.Now().Add(10 * time.Second); int64(i)-received.Load() >= window; {
			if time.Now().After(stall) {
				b.Fatalf("%d of %d values sent arrived: some were lost", received.Load(), i)
			}
			time.Sleep(20 * time.Microsecond)
		}
		binary.BigEndian.PutUint16(msg[2:], uint16(i))
		binary.BigEndian.PutUint16(msg[4:], uint16(i))
		if _, err := conn.WriteToUDP(msg, to); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for received.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d values arrived", received.Load(), b.N)
		}
		time.Sleep(50 * time.Microsecond)
	}
	b.StopTimer()
	conn.Close()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "values/s")
}

// BenchmarkServerPath measures the /server path: values per second from a
// RIOT-like NON POST to a NATS subscriber, next to a plain go-coap server
// that only counts them and answers as the gateway does, in the same run.
func BenchmarkServerPath(b *testing.B) {
	b.Run("gateway-to-nats", benchGateway)
	b.Run("plain-go-coap", benchPlain)
}

func benchGateway(b *testing.B) {
	srv := bustest.StartServer(b)
	nc, err := bus.Connect(bus.ConnectConfig{Name: "coap-bench", Server: srv, Logger: bustest.Quiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	g, err := coap.New(coap.Config{Conn: nc, Logger: bustest.Quiet(), Listen: "127.0.0.1:0", Gateway: "bench",
		NodePort: 9, RequestTimeout: 100 * time.Millisecond, NodeTimeout: time.Hour,
		SourceRate: -1}) // one source sends everything: measure the path, not the per-source limit
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-g.Ready()

	var received atomic.Int64
	sub := bustest.Connect(b, srv)
	s, err := sub.Subscribe(bus.NodeValue("bench", "temperature"), func(*nats.Msg) { received.Add(1) })
	if err != nil {
		b.Fatal(err)
	}
	_ = s.SetPendingLimits(-1, -1)
	_ = sub.Flush()

	alive, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 53, 70)}, g.Addr().(*net.UDPAddr))
	if err != nil {
		b.Fatal(err)
	}
	_, _ = alive.Write(append([]byte{0x52, 0x02, 0, 1, 0, 1, 0xb5, 'a', 'l', 'i', 'v', 'e', 0x10, 0xff}, "alive:bench"...))
	alive.Close()
	for len(g.Nodes()) == 0 {
		time.Sleep(time.Millisecond)
	}
	pushValues(b, g.Addr(), &received)
}

func benchPlain(b *testing.B) {
	var received atomic.Int64
	r := mux.NewRouter()
	_ = r.Handle("/server", mux.HandlerFunc(func(w mux.ResponseWriter, m *mux.Message) {
		received.Add(1) // and the gateway's answer, nothing else
		_ = coapreply.Reply(w, m, codes.Changed, "")
	}))
	l, err := coapNet.NewListenUDP("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := udp.NewServer(options.WithMux(r))
	done := make(chan struct{})
	go func() { _ = s.Serve(l); close(done) }()
	defer func() { s.Stop(); <-done }()
	pushValues(b, l.LocalAddr(), &received)
}
