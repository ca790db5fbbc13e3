//go:build !linux

package wspark

import (
	"context"
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

// park is empty: nothing parks on this system.
type park struct{}

// Park returns false: on this system readers wait with Wait.
func (c *Conn) Park(*Poller, func()) bool { return false }

// Linger returns false: nothing parks on this system.
func (c *Conn) Linger(*Poller, time.Duration) bool { return false }
