package bridge

import (
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/mqtt/internal/mqtttest"
)

// TestPublishWhileConnecting relays to the broker without a pause from
// before the bridge connects, and through two reconnections: paho resends
// the QoS 1 packets of its store once connected (resume) and marks them as
// duplicates, and a packet published while it did so was in the store and
// on the wire at once (paho.mqtt.golang issue 703: a data race, which
// -race reports, and the packet sent twice). The bridge publishes only
// once resume took its list of the store; it relays again after each
// reconnection.
func TestPublishWhileConnecting(t *testing.T) {
	broker := mqtttest.StartBroker(t, mqtttest.BrokerOptions{})
	proxy := startProxy(t, broker.Host+":"+strconv.Itoa(broker.Port))
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	b, err := New(Config{Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t), Broker: "tcp://" + proxy.addr, Name: "br"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	relayUntil := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(3 * wait)
		for b.Stats().ToBroker < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d relayed to the broker, want %d", b.Stats().ToBroker, n)
			}
			if err := nc.Publish(bus.SubjectGatewayCheck, []byte("x")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	relayUntil(200)
	for i := range 2 {
		proxy.cut() // paho reconnects (after about a second) and resumes
		relayUntil(int64(200 * (i + 2)))
	}
}

// proxy relays TCP connections to a target; cut closes the open ones.
type proxy struct {
	addr  string
	mu    sync.Mutex
	conns []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String()}
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
	return p
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}
