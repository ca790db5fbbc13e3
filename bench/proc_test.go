package bench

import (
	"net"
	"runtime"
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
