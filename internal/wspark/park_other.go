//go:build !linux

package wspark

import (
	"context"
	"sync"
	"time"
)

// Poller parks no connection on this system: Park returns false and
// readers wait with Wait.
type Poller struct{ started chan struct{} }

// NewPoller returns a poller.
func NewPoller() *Poller { return &Poller{started: make(chan struct{})} }

// Run returns when ctx ends: nothing parks on this system. Call it once.
func (p *Poller) Run(ctx context.Context) error {
	close(p.started)
	<-ctx.Done()
	return nil
}

// Ready is closed once Run runs.
func (p *Poller) Ready() <-chan struct{} { return p.started }

// park holds Every's timer: nothing parks on this system.
type park struct {
	mu      sync.Mutex
	timer   *time.Timer
	closed  bool
	ticking bool // f runs: a tick due meanwhile is skipped
}

// Every runs f every d, until the connection is closed, on a goroutine of
// its own, one tick at a time: a tick that falls due while f still runs is
// skipped. Call it once; d must be positive.
func (c *Conn) Every(d time.Duration, f func()) {
	c.park.mu.Lock()
	defer c.park.mu.Unlock()
	if c.park.closed {
		return
	}
	c.park.timer = time.AfterFunc(d, func() {
		c.park.mu.Lock()
		run := !c.park.closed && !c.park.ticking
		if !c.park.closed {
			c.park.timer.Reset(d)
		}
		c.park.ticking = c.park.ticking || run
		c.park.mu.Unlock()
		if run {
			f()
			c.park.mu.Lock()
			c.park.ticking = false
			c.park.mu.Unlock()
		}
	})
}

// Close closes the connection, as net.Conn's, and stops Every's timer.
func (c *Conn) Close() error {
	c.park.mu.Lock()
	c.park.closed = true
	if c.park.timer != nil {
		c.park.timer.Stop()
	}
	c.park.mu.Unlock()
	return c.Conn.Close()
}

// Park returns false: on this system readers wait with Wait.
func (c *Conn) Park(*Poller, func()) bool { return false }

// Linger returns false: nothing parks on this system.
func (c *Conn) Linger(*Poller, time.Duration) bool { return false }
