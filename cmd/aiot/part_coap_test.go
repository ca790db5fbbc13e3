package main

import (
	"net"
	"testing"
	"time"
)

// TestCoAPRole runs the CoAP gateway alone (`aiot coap`) against the NATS of
// another process, and simulated RIOT nodes (`aiot sim`) against it.
func TestCoAPRole(t *testing.T) {
	hub := startAiot(t, append([]string{"run"}, randomPorts(t)...)...)
	natsURL := hub.url(t, "nats")
	hub.url(t, "http") // the hub is ready: the NODES stream exists
	coapAddr := freeUDP(t)
	startAiot(t, "coap", "--nats", natsURL, "--coap-listen", coapAddr, "--gateway-name", "edge", "--site", "lab")
	waitBound(t, coapAddr) // RIOT-like nodes announce themselves once at boot, then every 30 s
	startAiot(t, "sim", "--nats", natsURL, "--sim-prefix", "edge", "--sim-coap", coapAddr, "--sim-coap-from", "127.0.53.200",
		"--coap-nodes", "2", "--ws-nodes", "0", "--widget-nodes", "0", "--mqtt-nodes", "0", "--mqttsn-nodes", "0")
	for id, st := range waitOnline(t, natsURL, []string{"edge-coap-1", "edge-coap-2"}) {
		if st.Gateway != "coap@edge" || st.Site != "lab" || st.Protocol != "CoAP" {
			t.Errorf("%s: $state %+v, want CoAP via coap@edge at site lab", id, st)
		}
	}
}

// waitBound waits until a CoAP server answers a ping (an empty confirmable
// message, answered with a reset) at addr.
func waitBound(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	buf := make([]byte, 64)
	for mid := byte(1); ; mid++ {
		if _, err := c.Write([]byte{0x40, 0x00, 0x00, mid}); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, err := c.Read(buf); err == nil && n >= 4 && buf[0]>>4&3 == 3 { // RST
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CoAP server answers at %s", addr)
		}
	}
}
