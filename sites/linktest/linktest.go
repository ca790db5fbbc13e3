// Package linktest is a TCP link that tests can cut and restore: a
// forwarder on a loopback port in front of a real listener (a hub's leaf
// node port), to simulate a site losing its link to the hub.
package linktest

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// Link forwards connections from Addr to a target until cut.
type Link struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	cut     bool
	refused int
	conns   map[net.Conn]bool
	wg      sync.WaitGroup
}

// New starts a link to target on a random loopback port; it is closed when
// the test ends.
func New(t testing.TB, target string) *Link {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("linktest: %v", err)
	}
	l := &Link{ln: ln, target: target, conns: map[net.Conn]bool{}}
	l.wg.Add(1)
	go l.accept()
	t.Cleanup(l.close)
	return l
}

// Addr is the address to dial instead of the target.
func (l *Link) Addr() string { return l.ln.Addr().String() }

// Cut closes every forwarded connection; new ones are closed at once until
// Restore. The port stays bound, as a firewall dropping traffic would.
func (l *Link) Cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = true
	for c := range l.conns {
		c.Close()
	}
}

// Restore lets connections through again.
func (l *Link) Restore() {
	l.mu.Lock()
	l.cut = false
	l.mu.Unlock()
}

// Refused counts the connections closed at once because the link was cut:
// the peer's attempts to reconnect through it.
func (l *Link) Refused() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refused
}

func (l *Link) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		l.mu.Lock()
		if l.cut {
			l.refused++
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.mu.Unlock()
		l.wg.Add(1)
		go l.forward(c)
	}
}

// forward pipes c to the target both ways until either side closes.
func (l *Link) forward(c net.Conn) {
	defer l.wg.Done()
	up, err := net.Dial("tcp", l.target)
	if err != nil {
		c.Close()
		return
	}
	if !l.track(c, up) {
		return
	}
	defer l.untrack(c, up)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}

// track registers a connection pair, or closes it if the link was cut meanwhile.
func (l *Link) track(a, b net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut {
		a.Close()
		b.Close()
		return false
	}
	l.conns[a], l.conns[b] = true, true
	return true
}

func (l *Link) untrack(a, b net.Conn) {
	l.mu.Lock()
	delete(l.conns, a)
	delete(l.conns, b)
	l.mu.Unlock()
}

func (l *Link) close() {
	l.ln.Close()
	l.Cut()
	l.wg.Wait()
}
