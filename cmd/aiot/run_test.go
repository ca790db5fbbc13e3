package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/nats-io/nats.go"
)

// runAiot runs aiot to completion and returns its exit code and stderr.
func runAiot(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	bin, err := buildAiot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(cmd.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stderr.String()
	}
	t.Fatalf("aiot %v: %v", args, err)
	return 0, ""
}

func TestRunTwiceOnSamePortsFailsWithOneLine(t *testing.T) {
	first := startAiot(t, append([]string{"run"}, randomPorts(t)...)...)
	natsURL := first.url(t, "nats")
	taken := strings.TrimPrefix(natsURL, "nats://")
	code, stderr := runAiot(t, nil, "run", "--data", t.TempDir(), "--nats-listen", taken,
		"--http", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0", "--coap-listen", "127.0.0.1:0", "--mqttsn-listen", freeUDP(t))
	if code != 1 {
		t.Fatalf("exit code %d, want 1\n%s", code, stderr)
	}
	last := lastLine(stderr)
	if !strings.HasPrefix(last, "aiot run: ") || !strings.Contains(last, "address already in use") {
		t.Fatalf("last line %q does not say the port is taken", last)
	}
	if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
		t.Fatalf("stack trace on bad config:\n%s", stderr)
	}
}

func TestBadConfigurationEndsInOneClearLine(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"unwritable data dir", nil, []string{"run", "--data", "/proc/aiot-data"}, "data dir"},
		{"bad nats url", nil, []string{"coap", "--nats", "ftp://127.0.0.1"}, "scheme"},
		{"bad log level", nil, []string{"run", "--log-level", "loud"}, "--log-level"},
		{"no node allowed", nil, []string{"mqtt", "--max-nodes", "0"}, "--max-nodes 0"},
		{"negative max nodes env twin", []string{"AIOT_MAX_NODES=-5"}, []string{"run"}, "--max-nodes -5"},
		{"bad env twin", []string{"AIOT_HISTORY=many"}, []string{"run"}, "AIOT_HISTORY"},
		{"bad http address", nil, append(append([]string{"run"}, randomPorts(t)...), "--http", "nowhere"), "--http"},
		{"unknown command", nil, []string{"fly"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stderr := runAiot(t, tt.env, tt.args...)
			if code == 0 {
				t.Fatalf("exit 0 on bad configuration\n%s", stderr)
			}
			if last := lastLine(stderr); !strings.Contains(last, tt.want) {
				t.Fatalf("last line %q does not contain %q\n%s", last, tt.want, stderr)
			}
			if strings.Contains(stderr, "goroutine ") {
				t.Fatalf("stack trace:\n%s", stderr)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	bin, err := buildAiot()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "aiot ") {
		t.Fatalf("aiot version = %q, %v", out, err)
	}
}

// TestNatsCLISeesEvents is the ops path: the real nats CLI against aiot run.
func TestNatsCLISeesEvents(t *testing.T) {
	cli := bustest.Peer(t, "nats")
	p := startAiot(t, append([]string{"run"}, randomPorts(t)...)...)
	natsURL := p.url(t, "nats")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub := exec.CommandContext(ctx, cli, "--server", natsURL, "sub", "node.>", "--count", "1", "--raw")
	var out bytes.Buffer
	sub.Stdout = &out
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	payload := `{"value":"21.5°C"}`
	// Publish until the CLI has subscribed and exits after its one message.
	done := make(chan error, 1)
	go func() { done <- sub.Wait() }()
	for {
		if err := nc.Publish("node.cli-node.temperature", []byte(payload)); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("nats sub: %v", err)
			}
			if strings.TrimSpace(out.String()) != payload {
				t.Fatalf("nats sub printed %q, want %q", out.String(), payload)
			}
			t.Run("micro services listed", func(t *testing.T) { microList(t, cli, natsURL) })
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func microList(t *testing.T, cli, natsURL string) {
	out, err := exec.Command(cli, "--server", natsURL, "micro", "ls", "--json").Output()
	if err != nil {
		t.Fatalf("nats micro ls: %v", err)
	}
	for _, want := range []string{"aiot-dashboard"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("nats micro ls lacks %s:\n%s", want, out)
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
