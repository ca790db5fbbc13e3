package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/goaiot/goaiot/gateways/ws"
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

// TestWSNodeTokens runs `aiot keys --ws-node-ids`, then a system with
// --ws-node-tokens and --ws-allow-origin: the listed node connects only with
// its token, and only same-host or allowed browser origins reach /node.
func TestWSNodeTokens(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	if code, stderr := runAiot(t, nil, "keys", "--dir", keys, "--ws-node-ids", "door"); code != 0 {
		t.Fatalf("aiot keys: exit %d\n%s", code, stderr)
	}
	tok, err := os.ReadFile(filepath.Join(keys, "ws-node-door.token"))
	if err != nil {
		t.Fatal(err)
	}
	sys := startAiot(t, append([]string{"run", "--ws-node-tokens", filepath.Join(keys, ws.TokensFile),
		"--ws-allow-origin", "https://panel.example:8443"}, randomPorts(t)...)...)
	nodeURL := "ws" + strings.TrimPrefix(sys.url(t, "http"), "http") + "/node"
	bearer := "Bearer " + strings.TrimSpace(string(tok))
	tests := []struct {
		name   string
		id     string
		header http.Header
		status int // 101: admitted
	}{
		{"listed id without token", "door", nil, http.StatusUnauthorized},
		{"listed id with its token", "door", http.Header{"Authorization": {bearer}}, http.StatusSwitchingProtocols},
		{"foreign origin", "window", http.Header{"Origin": {"http://evil.example"}}, http.StatusForbidden},
		{"allowed origin", "window", http.Header{"Origin": {"https://panel.example:8443"}}, http.StatusSwitchingProtocols},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, resp, err := websocket.DefaultDialer.Dial(nodeURL+"?id="+tt.id, tt.header)
			if err == nil {
				defer c.Close()
			}
			if resp == nil || resp.StatusCode != tt.status {
				t.Errorf("dial: %v (%v), want HTTP %d", err, resp, tt.status)
			}
		})
	}
}
