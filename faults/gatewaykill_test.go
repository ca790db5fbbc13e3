package faults

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/coap/coapsim"
	"github.com/goaiot/goaiot/internal/readiness"
)

// buildAiot builds the aiot binary once per test run.
var buildAiot = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "aiot-faults-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "aiot")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/aiot").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// startProcess runs the aiot binary with args and returns once its ready
// file says every part is bound and serving; the process is killed when
// the test ends.
func startProcess(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	bin, err := buildAiot()
	if err != nil {
		t.Fatal(err)
	}
	readyFile := filepath.Join(t.TempDir(), "ready.json")
	cmd := exec.Command(bin, append(args, "--ready-file", readyFile)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		lines []string // the process's last log lines, shown if the test fails
	)
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-done
		if t.Failed() {
			mu.Lock()
			t.Logf("aiot %v, last log lines:\n%s", args, strings.Join(lines, "\n"))
			mu.Unlock()
		}
	})
	go func() {
		defer close(done) // stderr ends when the process does
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			if len(lines) > 60 {
				lines = lines[1:]
			}
			mu.Unlock()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := readiness.Wait(ctx, readyFile, cmd.Process.Pid, done); err != nil {
		t.Fatalf("aiot %v not ready: %v", args, err)
	}
	return cmd
}

// freeUDP is a UDP address on ip free a moment ago.
func freeUDP(t testing.TB, ip string) string {
	t.Helper()
	c, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// TestCoAPGatewayKilled kills `aiot coap --nats URL` (SIGKILL: no goodbye,
// no offline state) and starts it again on the same address: its node
// comes back online at its next value (its entry in NODE_TABLES survived;
// at its next beacon otherwise), and its values flow again.
func TestCoAPGatewayKilled(t *testing.T) {
	const beacon = 2 * time.Second
	ns := newNATSServer(t)
	gwAddr := freeUDP(t, nodeIP(11))
	args := []string{"coap", "--nats", ns.url(), "--coap-listen", gwAddr, "--gateway-name", "faults", "--log-level", "info"}
	gw := startProcess(t, args...)

	sim, err := coapsim.New(coapsim.Config{UID: "FA0175000000002", Listen: nodeIP(12) + ":5683", Gateway: gwAddr,
		Sensors: true, BeaconInterval: beacon, SensorInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, sim.Run)
	nc := ns.connect("observer")
	states := bustest.Subscribe(t, nc, bus.NodeState(sim.UID()))
	temps := bustest.Subscribe(t, nc, bus.NodeValue(sim.UID(), "temperature"))
	bustest.Eventually(t, wait, "node online", func() error { return bustest.Want(lastState(t, nc, sim.UID()) == bus.StateOnline) })
	bustest.Next(t, temps, bus.NodeValue(sim.UID(), "temperature"), wait)

	const rounds = 3
	var worst time.Duration
	for round := 1; round <= rounds; round++ {
		if err := gw.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = gw.Wait()
		drain(states)
		gw = startProcess(t, args...)
		restarted := time.Now()
		waitState(t, states, bus.StateOnline, beacon+wait) // generous: a loaded machine starts processes slowly
		took := time.Since(restarted)
		worst = max(worst, took)
		drain(temps)
		bustest.Next(t, temps, bus.NodeValue(sim.UID(), "temperature"), wait)
		t.Logf("round %d: gateway killed and restarted; node online again %s after the restart (beacon every %s)", round, took.Round(time.Millisecond), beacon)
	}
	t.Logf("CoAP gateway killed %d times: node back online each time, worst %s after the restart (beacon %s)", rounds, worst.Round(time.Millisecond), beacon)
}

// drain empties a message channel.
func drain[T any](ch <-chan T) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}
