package bench

import (
	"context"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestUDPSocketDrops floods a loopback socket that never reads, with the
// smallest receive buffer, and finds the kernel's drops on that socket
// only: another socket's drops do not count.
func TestUDPSocketDrops(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/net/udp")
	}
	full, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	if err := full.SetReadBuffer(1); err != nil { // the kernel's minimum
		t.Fatal(err)
	}
	other, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if got := udpSocketDrops(full.LocalAddr().String()); got != 0 {
		t.Fatalf("a new socket has %d drops", got)
	}
	sender, err := net.DialUDP("udp4", nil, full.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	b := make([]byte, 1000)
	for range 200 {
		_, _ = sender.Write(b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for udpSocketDrops(full.LocalAddr().String()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("200 datagrams into a full buffer: no drop counted on its socket")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := udpSocketDrops(other.LocalAddr().String()); got != 0 {
		t.Errorf("the other socket shows %d drops, want 0", got)
	}
	for _, bad := range []string{"", "no port", "127.0.0.1:x"} {
		if got := udpSocketDrops(bad); got != 0 {
			t.Errorf("udpSocketDrops(%q) = %d, want 0", bad, got)
		}
	}
}

// TestExternalPIDs measures an external system's processes named by
// --pids (here the test's own, which runs the system), and refuses pids
// without an external system or of no process.
func TestExternalPIDs(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	target := startTestSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	ws := Config{Scenarios: []string{ScenarioWS}, Nodes: 2, Browsers: 1, Rate: 200, Duration: 500 * time.Millisecond, NoBaselines: true}
	tests := []struct {
		name     string
		target   Target
		measured bool
		refused  string
	}{
		{"no pids: nothing measured", target, false, ""},
		{"the system's pids: CPU and memory reported", withPIDs(target, os.Getpid()), true, ""},
		{"pids without the system's addresses", Target{PIDs: []int{os.Getpid()}}, false, "--pids measures an external system"},
		{"a pid of no process", withPIDs(target, gone.Process.Pid), false, "--pids: process"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ws
			cfg.Target = tt.target
			rep, err := Run(ctx, cfg)
			if tt.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tt.refused) {
					t.Fatalf("err %v, want %q", err, tt.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r := find(t, rep, ScenarioWS, "ws → browser")
			got := r.Server != nil && r.Server.CPUSec > 0 && r.Server.PeakRSSMB > 0
			if got != tt.measured {
				t.Errorf("server measured %v (%+v), want %v", got, r.Server, tt.measured)
			}
		})
	}
}

func withPIDs(t Target, pids ...int) Target {
	t.PIDs = pids
	return t
}
