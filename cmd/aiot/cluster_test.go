package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// TestClusterFlagsRefused: cluster settings that cannot work, or would let
// any host join the cluster, are refused before anything listens.
func TestClusterFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"replicas without a cluster", []string{"--replicas", "3"}, "form a cluster"},
		{"replicas above five", []string{"--replicas", "6", "--cluster-listen", "127.0.0.1:0", "--routes", "nats-route://127.0.0.1:1"}, "want 1 to 5"},
		{"routes without a listener", []string{"--routes", "nats-route://127.0.0.1:1"}, "--routes without --cluster-listen"},
		{"reachable routes without TLS", []string{"--cluster-listen", "0.0.0.0:0", "--routes", "nats-route://127.0.0.1:1"}, "without --cluster-tls-ca"},
		{"a route that is not a route", []string{"--cluster-listen", "127.0.0.1:0", "--routes", "http://127.0.0.1:1"}, "scheme must be"},
		{"a cluster without routes", []string{"--cluster-listen", "127.0.0.1:0"}, "no routes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--data", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--mqtt-listen", "",
				"--http", "127.0.0.1:0", "--coap-listen", "127.0.0.1:0", "--mqttsn-listen", "127.0.0.1:0"}, tc.args...)
			err := runAll(context.Background(), args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("replicas above one against an external NATS", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second) // nothing listens there: only the check matters
		defer cancel()
		err := roleCommand("dashboard")(ctx, []string{"--nats", "nats://127.0.0.1:1", "--replicas", "3", "--http", "127.0.0.1:0"}, io.Discard, io.Discard)
		if err != nil && strings.Contains(err.Error(), "replicas") {
			t.Fatalf("refused: %v", err)
		}
	})
}
