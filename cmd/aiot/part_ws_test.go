package main

import (
	"strings"
	"testing"
)

// TestWSRole runs the websocket gateway alone (`aiot ws`) against the NATS of
// another process, and simulated nodes (`aiot sim`) against it.
func TestWSRole(t *testing.T) {
	hub := startAiot(t, append([]string{"run"}, randomPorts(t)...)...)
	natsURL := hub.url(t, "nats")
	hub.url(t, "http")
	gw := startAiot(t, "ws", "--nats", natsURL, "--http", "127.0.0.1:0", "--gateway-name", "edge")
	nodeURL := "ws" + strings.TrimPrefix(gw.url(t, "http"), "http") + "/node"
	startAiot(t, "sim", "--nats", natsURL, "--sim-prefix", "edge", "--sim-ws-url", nodeURL,
		"--ws-nodes", "2", "--coap-nodes", "0", "--mqtt-nodes", "0", "--mqttsn-nodes", "0")
	for id, st := range waitOnline(t, natsURL, []string{"edge-ws-1", "edge-ws-2"}) {
		if st.Gateway != "ws@edge" {
			t.Errorf("%s: gateway %q, want ws@edge (the aiot ws process)", id, st.Gateway)
		}
	}
}
