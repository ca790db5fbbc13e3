package bench

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/coap"
	"github.com/goaiot/goaiot/gateways/mqtt"
	"github.com/goaiot/goaiot/gateways/ws"
	"github.com/goaiot/goaiot/internal/config"
	"github.com/goaiot/goaiot/services/dashboard"
)

// startSystem assembles a small goaiot in the test process: an embedded
// NATS with the NODES stream, the CoAP gateway (reaching nodes at a free
// port), the websocket gateway and the dashboard behind a real HTTP
// server. It returns the target bench drives.
func startTestSystem(t *testing.T) Target {
	t.Helper()
	srv := bustest.StartServer(t, bustest.WithMQTT())
	log := bustest.Quiet()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 4)
	t.Cleanup(func() {
		cancel()
		for range 4 {
			<-done
		}
	})
	run := func(r interface{ Run(context.Context) error }) {
		go func() {
			defer func() { done <- struct{}{} }()
			if err := r.Run(ctx); err != nil {
				t.Errorf("run: %v", err)
			}
		}()
	}

	nodePort := freeUDPPort(t)
	gw, err := coap.New(coap.Config{Conn: bustest.Connect(t, srv), Logger: log, Listen: "127.0.0.1:0",
		Gateway: "coap@test", Site: "test", NodePort: nodePort})
	if err != nil {
		t.Fatal(err)
	}
	run(gw)
	// As in the system bench starts itself: the load tool's nodes send past
	// the per-node limits, which the gateway's own tests measure.
	wsgw, err := ws.New(ws.Config{Conn: bustest.Connect(t, srv), Logger: log, Gateway: "ws@test", Site: "test",
		FrameRate: 1e9, FrameBurst: 1 << 30, ValueRate: config.Unlimited, NewIDsPerSource: config.Unlimited})
	if err != nil {
		t.Fatal(err)
	}
	run(wsgw)
	mq, err := mqtt.New(mqtt.Config{Conn: bustest.Connect(t, srv), Logger: log, Gateway: "mqtt@test", Site: "test"})
	if err != nil {
		t.Fatal(err)
	}
	run(mq)
	d, err := dashboard.New(dashboard.Config{Conn: bustest.Connect(t, srv), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	run(d)
	mux := http.NewServeMux()
	for _, r := range d.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	mux.Handle("/node", wsgw)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	select {
	case <-gw.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("coap gateway not ready")
	}
	select {
	case <-mq.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("mqtt gateway not ready")
	}
	return Target{HTTP: hs.URL, NATS: srv.ClientURL(), CoAP: gw.Addr().String(), CoAPNodePort: nodePort, MQTT: srv.MQTTAddr()}
}

// freeUDPPort is a UDP port free on every address right now.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// find returns the result of scenario and path.
func find(t *testing.T, rep *Report, scenario, path string) Result {
	t.Helper()
	for _, r := range rep.Results {
		if r.Scenario == scenario && r.Path == path {
			return r
		}
	}
	t.Fatalf("no result %s / %s in %+v (errors %v)", scenario, path, rep.Results, rep.Errors)
	return Result{}
}
