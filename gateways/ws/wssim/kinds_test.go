package wssim_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/ws"
	"github.com/goaiot/goaiot/gateways/ws/wssim"
)

// gateway runs a real websocket gateway on a loopback listener and a real
// NATS server; it returns a client of the bus and the gateway's node URL.
func gateway(t *testing.T) (*nats.Conn, string) {
	t.Helper()
	srv := bustest.StartServer(t)
	gw, err := ws.New(ws.Config{Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t), Gateway: "ws@test", Site: "test",
		CommandTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("new gateway: %v", err)
	}
	hs := httptest.NewServer(gw)
	t.Cleanup(hs.Close)
	bustest.Run(t, gw.Run)
	return bustest.Connect(t, srv), "ws" + strings.TrimPrefix(hs.URL, "http") + "/node"
}

// startKind runs a simulated node of kind until the test ends.
func startKind(t *testing.T, url, id string, kind wssim.Kind) *wssim.Node {
	t.Helper()
	n, err := wssim.New(wssim.Config{URL: url, ID: id, Kind: kind, Logger: bustest.Logger(t), Redial: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("new %s sim: %v", kind, err)
	}
	bustest.Run(t, n.Run)
	return n
}

// command sends a command over the bus as the dashboard does, once the
// gateway serves the node, and returns the reply.
func command(t *testing.T, nc *nats.Conn, id, res, payload string) bus.Reply {
	t.Helper()
	var r bus.Reply
	bustest.Eventually(t, 20*time.Second, "a reply to "+res+" "+payload, func() error {
		m, err := nc.Request(bus.GatewaySet(id, res), []byte(payload), 10*time.Second)
		if err != nil {
			return err
		}
		r, err = bus.ParseReply(m.Data)
		return err
	})
	return r
}

func TestKindsTakeTheirCommands(t *testing.T) {
	nc, url := gateway(t)
	tests := []struct {
		kind     wssim.Kind
		res      string
		initial  string
		accepted []string
		refused  []string
	}{
		{wssim.KindRobot, "robot", "s", []string{"u", "l", "r", "s"}, []string{"d", "up", ""}},
		{wssim.KindRibot, "ribot", "0:0:0\n", []string{"-255:51:-204\n", "0:0:0\n"}, []string{"1:2:4\n", "300:0:300\n", "1:2:3", "a:b:c\n"}},
		{wssim.KindJS, "js", `print("hello from RIOT");`, []string{"print(1 + 1);", strings.Repeat("x", 3000)}, []string{strings.Repeat(`"`, 2100)}},
		{wssim.KindCamera, "webcam", wssim.DefaultCameraURL, nil, []string{"http://elsewhere/cam.jpg"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			id := "kind-" + string(tt.kind)
			n := startKind(t, url, id, tt.kind)
			if got := n.Value(); got != tt.initial {
				t.Errorf("initial %s = %q, want %q", tt.res, got, tt.initial)
			}
			for _, p := range tt.accepted {
				if r := command(t, nc, id, tt.res, p); !r.OK {
					t.Errorf("%s %.40q: %+v, want ok", tt.res, p, r)
				}
				if got := n.Value(); got != p {
					t.Errorf("after %.40q the node reports %.40q", p, got)
				}
			}
			before := n.Value()
			for _, p := range tt.refused {
				if r := command(t, nc, id, tt.res, p); r.OK || r.Code != bus.CodeRefused {
					t.Errorf("%s %.40q: %+v, want refused", tt.res, p, r)
				}
				if got := n.Value(); got != before {
					t.Errorf("after the refused %.40q the node reports %.40q, want %.40q", p, got, before)
				}
			}
		})
	}
}

func TestKindPublishesItsValues(t *testing.T) {
	nc, url := gateway(t)
	sub := bustest.Subscribe(t, nc, "node.kind-cam.>")
	startKind(t, url, "kind-cam", wssim.KindCamera)
	want := map[string]string{"webcam": wssim.DefaultCameraURL, "os": "android", "name": "Camera"}
	bustest.Eventually(t, 20*time.Second, "the camera node's values", func() error {
		select {
		case m := <-sub:
			if v, err := bus.ParseValue(m.Data); err == nil && want[strings.TrimPrefix(m.Subject, "node.kind-cam.")] == v.Text() {
				delete(want, strings.TrimPrefix(m.Subject, "node.kind-cam."))
			}
		case <-time.After(100 * time.Millisecond):
		}
		return bustest.Want(len(want) == 0, "missing ", want)
	})
}

func TestNewRefusesUnknownKind(t *testing.T) {
	if _, err := wssim.New(wssim.Config{URL: "ws://127.0.0.1/node", Kind: "toaster", Logger: bustest.Logger(t)}); err == nil {
		t.Error("New accepted kind toaster")
	}
}
