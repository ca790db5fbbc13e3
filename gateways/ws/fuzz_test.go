package ws

import (
	"testing"

	"github.com/gorilla/websocket"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

// FuzzNodeFrame: any text frame from a node is handled or refused with
// 1003; the node's resources stay safe subject tokens, within MaxResources.
// Values are published to a real embedded NATS.
func FuzzNodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"update","data":{"temperature":"21.5°C","led":"0"}}`,
		`{"type":"update","data":{"position":{"lat":48.1,"lng":11.6},"imu":[1,2,3]}}`,
		`{"type":"new","data":"node"}`,
		`{"type":"reset"}`,
		`{"type":"out"}`,
		`{"type":"update","data":{"a.b":"1","*":"2",">":"3","":"4","$state":"x","resources":"y"}}`,
		`{"type":"update","data":null}`,
		`{"type":"update","data":[1]}`,
		`{"type":"\u0001"}`,
		`not json`,
	} {
		f.Add([]byte(s))
	}
	srv := bustest.StartServer(f)
	g, err := New(Config{Conn: bustest.Connect(f, srv), Logger: bustest.Quiet(), Gateway: "ws@fuzz", MaxResources: 8})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		s := newSession(g, nil, nil, "fuzz", "127.0.0.1:1")
		s.writing = true // no socket: frames to the node stay queued (at most SendQueue), no writer starts
		if _, err := g.tracker.Seen(s.id, s.addr); err != nil {
			t.Fatal(err)
		}
		code, reason := s.handle(frame)
		if code != 0 && code != websocket.CloseUnsupportedData {
			t.Fatalf("close code %d (%s), want 0 or 1003", code, reason)
		}
		if code != 0 && reason == "" {
			t.Fatal("refused without a reason")
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.resources) > g.cfg.MaxResources {
			t.Fatalf("%d resources, max %d", len(s.resources), g.cfg.MaxResources)
		}
		for name := range s.resources {
			if err := bus.ValidateResource(name); err != nil {
				t.Fatalf("unsafe resource %q accepted from %q: %v", name, frame, err)
			}
		}
	})
}
