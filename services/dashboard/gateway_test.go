package dashboard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/ws"
	"github.com/goaiot/goaiot/gateways/ws/wssim"
)

// TestWithWebsocketGateway runs the dashboard beside the real websocket
// node gateway and its simulated node: the browser sees the node appear with
// its values, and its LED command goes through the gateway to the node,
// whose result and new value come back.
func TestWithWebsocketGateway(t *testing.T) {
	srv := bustest.StartServer(t)
	gw, err := ws.New(ws.Config{Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t), Gateway: "ws@test", Site: "lab"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/node", gw)
	for _, r := range d.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	hs := httptest.NewServer(mux)
	defer hs.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	run := func(r interface{ Run(context.Context) error }) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Run(ctx); err != nil {
				t.Errorf("%T: %v", r, err)
			}
		}()
	}
	run(gw)
	run(d)
	<-d.ready
	td := &testDashboard{d: d, http: hs}
	b := dial(t, td, nil)
	b.subscribe()

	node, err := wssim.New(wssim.Config{URL: "ws" + strings.TrimPrefix(hs.URL, "http") + "/node", ID: "sim1", Logger: bustest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	run(node)
	n := b.nextOf(typeNew)
	if n.UID != "sim1" || n.Protocol != "WebSocket" || n.Gateway != "ws@test" || n.Site != "lab" {
		t.Fatalf("new %+v", n)
	}
	b.send(`{"type":"update","data":{"uid":"sim1","endpoint":"led","payload":"1"},"id":"led-on"}`)
	gotResult, gotLED := false, false
	for !gotResult || !gotLED {
		m := b.next()
		switch {
		case m.Type == typeResult:
			if !m.OK || m.ID != "led-on" {
				t.Fatalf("result %+v", m)
			}
			gotResult = true
		case m.Type == typeUpdate && m.Endpoint == "led" && m.Data == "1":
			gotLED = true
		}
	}
	if !node.LED() {
		t.Error("the node's LED is off")
	}
}
