package ws_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/ws"
)

// valueCounter counts values (resources v0…vN) arriving on node.>.
func valueCounter(b *testing.B, nc *nats.Conn) *atomic.Int64 {
	b.Helper()
	var n atomic.Int64
	sub, err := nc.Subscribe("node.>", func(m *nats.Msg) {
		if i := strings.LastIndexByte(m.Subject, '.'); m.Subject[i+1] == 'v' {
			n.Add(1)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sub.Unsubscribe() })
	return &n
}

func waitCount(b *testing.B, n *atomic.Int64, want int64) {
	b.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for n.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("received %d of %d values", n.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// updateFrame is an update with perFrame values v0…
func updateFrame(perFrame int) []byte {
	data := map[string]string{}
	for i := range perFrame {
		data[fmt.Sprintf("v%d", i)] = "21.5°C"
	}
	b, _ := json.Marshal(map[string]any{"type": "update", "data": data})
	return b
}

// BenchmarkIngest measures values/s from websocket nodes into NATS: nodes
// send update frames as fast as they can, and a NATS subscriber counts the
// values arriving on node.<id>.<res>. One op is one value.
func BenchmarkIngest(b *testing.B) {
	for _, nodes := range []int{1, 16} {
		for _, perFrame := range []int{1, 8} {
			b.Run(fmt.Sprintf("nodes=%d/values_per_frame=%d", nodes, perFrame), func(b *testing.B) {
				benchIngest(b, nodes, perFrame)
			})
		}
	}
}

func benchIngest(b *testing.B, nodes, perFrame int) {
	srv := bustest.StartServer(b)
	gw, err := ws.New(ws.Config{Conn: bustest.Connect(b, srv), Logger: bustest.Quiet(), Gateway: "ws@bench",
		FrameRate: 1e9, FrameBurst: 1 << 30, ValueRate: -1, NewIDsPerSource: -1})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(gw)
	defer hs.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	defer func() { cancel(); <-done }()

	count := valueCounter(b, bustest.Connect(b, srv))
	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/node"
	conns := make([]*websocket.Conn, nodes)
	for i := range conns {
		c, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("%s?id=bench-%d", url, i), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		go func() { // answer pings, drop discover requests
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
		conns[i] = c
	}
	frame := updateFrame(perFrame)
	frames := (b.N + perFrame - 1) / perFrame
	b.SetBytes(int64(len(frame) / perFrame))
	b.ResetTimer()
	began := time.Now()
	var wg sync.WaitGroup
	for i, c := range conns {
		share := frames / nodes
		if i < frames%nodes {
			share++
		}
		wg.Go(func() {
			for range share {
				if err := c.WriteMessage(websocket.TextMessage, frame); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	waitCount(b, count, int64(frames*perFrame))
	b.StopTimer()
	b.ReportMetric(float64(frames*perFrame)/time.Since(began).Seconds(), "values/s")
}

// BenchmarkBaselinePublish is the floor the gateway is compared with: the
// same values published straight to NATS by one client (what the gateway
// does after decoding a frame), counted by the same subscriber.
func BenchmarkBaselinePublish(b *testing.B) {
	srv := bustest.StartServer(b)
	count := valueCounter(b, bustest.Connect(b, srv))
	pub := bustest.Connect(b, srv)
	b.ResetTimer()
	began := time.Now()
	for i := range b.N {
		v, _ := json.Marshal(bus.StringValue("21.5°C", time.Now().UTC()))
		if err := pub.Publish(bus.NodeValue("bench-0", fmt.Sprintf("v%d", i%8)), v); err != nil {
			b.Fatal(err)
		}
	}
	waitCount(b, count, int64(b.N))
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "values/s")
}
