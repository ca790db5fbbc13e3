package attacks

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/ws"
)

// Row 5 of issue 12: a page on another site (or a program claiming to be
// one) opens /node?id=<a connected node>. It must neither close the real
// node nor receive its commands nor store values in its name.
func TestWebsocketNodeAttacks(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	gw, err := ws.New(ws.Config{Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t), Gateway: "ws@lab"})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, gw.Run)
	hs := httptest.NewServer(gw)
	t.Cleanup(hs.Close)
	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/node?id=kitchen"

	states := bustest.Subscribe(t, nc, bus.NodeState("kitchen"))
	real, _, err := websocket.DefaultDialer.Dial(url, nil) // Pyaiot's node clients send no Origin
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { real.Close() })
	go func() { // the real node answers pings and reads its requests
		for {
			if _, _, err := real.ReadMessage(); err != nil {
				return
			}
		}
	}()
	bustest.Next(t, states, bus.NodeState("kitchen"), wait)

	t.Run("foreign origin refused at the handshake", func(t *testing.T) {
		_, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"Origin": []string{"http://evil.example"}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("foreign origin: %v %v, want 403", err, resp)
		}
	})
	t.Run("same id while the node is alive refused", func(t *testing.T) {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			return // refused at the handshake
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(wait))
		_, _, err = c.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
			t.Fatalf("second connection as kitchen: %v, want closed 1008", err)
		}
	})
	t.Run("the real node keeps its socket and its values", func(t *testing.T) {
		if err := real.WriteMessage(websocket.TextMessage, []byte(`{"type":"update","data":{"temperature":"19°C"}}`)); err != nil {
			t.Fatalf("the real node's socket was closed: %v", err)
		}
		bustest.Eventually(t, wait, "the real node's value stored", func() error {
			return bustest.Want(strings.Contains(lastValue(t, nc, bus.NodeValue("kitchen", "temperature")), "19°C"))
		})
		if st := lastValue(t, nc, bus.NodeState("kitchen")); !strings.Contains(st, `"online"`) {
			t.Fatalf("kitchen's state %s, want online", st)
		}
	})
}
