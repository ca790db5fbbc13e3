package wspark

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Poller waits for the parked connections in one epoll set, with one
// goroutine (Run) for them all. Its zero value is not usable: make one
// with NewPoller.
type Poller struct {
	// mu guards closed, conns and the use of epfd: epoll_ctl runs under
	// it (read-locked to re-arm a registered socket), and only while the
	// set is open, so that no call reaches another file given epfd's
	// number after Run closed it.
	mu      sync.RWMutex
	open    bool // the set was made
	closed  bool // the set was closed
	epfd    int
	conns   map[int32]*Conn // registered sockets by descriptor
	gen     atomic.Uint32   // the last arm's number (see park.gen)
	started chan struct{}   // closed once Run is ready, or failed
}

// NewPoller returns a poller; connections park in it once Run runs.
func NewPoller() *Poller {
	return &Poller{conns: make(map[int32]*Conn), started: make(chan struct{})}
}

// park is a connection's registration in a Poller. mu guards it; lock
// order: park.mu, then Poller.mu.
type park struct {
	mu         sync.Mutex
	p          *Poller // set by the first Park
	fd         int32
	registered bool   // fd is in p's set (armed or not)
	parked     bool   // waiting in p's set: the next event, timer or Close resumes
	gen        uint32 // the arm that parked it: an event of an older arm is stale
	closed     bool
	resume     func()
	rd         time.Time   // the read deadline
	timer      *time.Timer // the connection's one timer: at rd while parked, and at nextTick
	lingering  time.Time   // while Linger reads: when it stops

	// Every's: tick runs every `every`, next at nextTick (zero: no tick);
	// ticking while it runs (a tick due meanwhile is skipped).
	tick     func()
	every    time.Duration
	nextTick time.Time
	ticking  bool

	// The reader's, to tell a busy connection (see Linger).
	parkedAt time.Time     // when it last parked
	short    int           // parks in a row that lasted less than linger
	linger   time.Duration // the last Linger's d
	lingered bool          // the last Linger got bytes
}

// Run waits for parked connections and resumes each on a goroutine of its
// own when its socket can be read, hung up or failed, until ctx ends;
// then it resumes every connection still parked (each then waits with a
// goroutine, as Wait does) and parks no more. It returns an error if the
// epoll set could not be made or waited on; connections do not park then.
// Call it once.
func (p *Poller) Run(ctx context.Context) error {
	f, err := p.openSet()
	close(p.started)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- p.loop(f) }()
	select {
	case <-ctx.Done():
		p.shut(f)
		<-done // the set's closing ends the loop
		return nil
	case err = <-done:
		p.shut(f)
		return err
	}
}

// Ready is closed once Run has opened the set (or failed to).
func (p *Poller) Ready() <-chan struct{} { return p.started }

// openSet makes the epoll set, non-blocking so that the runtime's poller
// waits for it: the set's goroutine blocks no thread.
func (p *Poller) openSet() (*os.File, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("wspark: epoll_create1: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("wspark: epoll set non-blocking: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.epfd, p.open = fd, true
	return os.NewFile(uintptr(fd), "wspark-epoll"), nil
}

// loop reads events until f is closed.
func (p *Poller) loop(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("wspark: epoll set: %w", err)
	}
	var events [128]unix.EpollEvent
	var werr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, err := unix.EpollWait(int(fd), events[:], 0)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				werr = fmt.Errorf("wspark: epoll_wait: %w", err)
				return true
			}
			for _, e := range events[:n] {
				p.fire(e.Fd, uint32(e.Pad))
			}
			if n < len(events) {
				return false // drained: wait until the set is readable again
			}
		}
	})
	if werr != nil {
		return werr
	}
	return err
}

// fire resumes the connection registered as fd if arm gen parked it.
func (p *Poller) fire(fd int32, gen uint32) {
	p.mu.RLock()
	c := p.conns[fd]
	p.mu.RUnlock()
	if c == nil {
		return
	}
	c.park.mu.Lock()
	ok := c.park.parked && c.park.gen == gen
	if ok {
		c.park.parked = false
	}
	c.park.mu.Unlock()
	if ok {
		go c.wake()
	}
}

// shut closes the set and resumes the connections parked in it.
func (p *Poller) shut(f *os.File) {
	p.mu.Lock()
	p.closed = true
	conns := make([]*Conn, 0, len(p.conns))
	for _, c := range p.conns {
		conns = append(conns, c)
	}
	clear(p.conns)
	p.mu.Unlock()
	_ = f.Close()
	for _, c := range conns {
		c.park.mu.Lock()
		was := c.park.parked
		c.park.parked, c.park.registered = false, false
		c.park.mu.Unlock()
		if was {
			go c.wake()
		}
	}
}

// arm registers c's socket for one event (or re-arms it) under a new
// number; false if p is not running or epoll refused. c.park.mu is held.
func (p *Poller) arm(c *Conn) bool {
	gen := p.gen.Add(1)
	if !c.park.registered {
		return p.register(c, gen)
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return false
	}
	ev := unix.EpollEvent{Events: waitEvents, Fd: c.park.fd, Pad: int32(gen)}
	if unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, int(c.park.fd), &ev) != nil {
		return false
	}
	c.park.gen = gen
	return true
}

// waitEvents are what ends a park: bytes to read, the peer's shutdown, a
// hang-up or an error (the last two are always reported), once.
const waitEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// register adds c's socket to the set. c.park.mu is held.
func (p *Poller) register(c *Conn, gen uint32) bool {
	tc, ok := c.Conn.(*net.TCPConn)
	if !ok {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.open || p.closed {
		return false
	}
	added := false
	err = rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: waitEvents, Fd: int32(fd), Pad: int32(gen)}
		if unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev) == nil {
			c.park.fd, added = int32(fd), true
		}
	})
	if err != nil || !added {
		return false
	}
	p.conns[c.park.fd] = c
	c.park.p, c.park.registered, c.park.gen = p, true, gen
	return true
}

// unregister removes c's socket from the set; it runs before the socket
// closes, so that a socket given the same descriptor later gets no event
// meant for c. c.park.mu is held.
func (p *Poller) unregister(c *Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(c.park.fd), nil)
	}
	if p.conns[c.park.fd] == c {
		delete(p.conns, c.park.fd)
	}
}

// Park lets the connection wait in p with no goroutine, at a message
// boundary, instead of Wait: it returns the read buffer to the pool and
// returns at once, true, and resume runs on a new goroutine, as after
// Wait, once the connection has bytes to read, failed, was closed, or
// reached its read deadline. False: it did not park (p is not running,
// the connection is not plain TCP, something is buffered, or it is
// closed); call Wait then. Only a *net.TCPConn parks: a TLS connection
// may hold decrypted bytes that its socket no longer shows.
func (c *Conn) Park(p *Poller, resume func()) bool {
	if p == nil || c.br.Buffered() > 0 || c.stashed || c.err != nil {
		return false
	}
	c.park.mu.Lock()
	defer c.park.mu.Unlock()
	if c.park.closed || (c.park.p != nil && c.park.p != p) || !p.arm(c) {
		return false
	}
	c.release()
	c.park.parked, c.park.resume = true, resume
	c.park.parkedAt = time.Now()
	c.setTimer()
	return true
}

// setTimer sets the connection's one timer to its next due time (see
// due), or stops it if nothing is due. c.park.mu is held.
func (c *Conn) setTimer() {
	due := c.due()
	if due.IsZero() {
		if c.park.timer != nil {
			c.park.timer.Stop()
		}
		return
	}
	d := time.Until(due)
	if c.park.timer == nil {
		c.park.timer = time.AfterFunc(d, c.onTimer)
		return
	}
	c.park.timer.Reset(d)
}

// due is when the timer must fire next: at the next tick (Every), or at
// the read deadline of a parked reader if that is sooner, since nothing
// reads while it is parked, so no read times out by itself. Zero: never.
// c.park.mu is held.
func (c *Conn) due() time.Time {
	due := c.park.nextTick
	if rd := c.park.rd; c.park.parked && !rd.IsZero() && (due.IsZero() || rd.Before(due)) {
		due = rd
	}
	return due
}

// onTimer resumes the parked reader once its read deadline passed (its
// read then fails with the timeout a blocked read would have returned),
// else runs the tick that is due, and sets the timer again.
func (c *Conn) onTimer() {
	c.park.mu.Lock()
	if c.park.closed {
		c.park.mu.Unlock()
		return
	}
	now := time.Now()
	expired := c.park.parked && !c.park.rd.IsZero() && !now.Before(c.park.rd)
	if expired {
		c.park.parked = false
	}
	tick := c.park.tick
	if tick == nil || now.Before(c.park.nextTick) {
		tick = nil
	} else {
		c.park.nextTick = now.Add(c.park.every)
	}
	run := tick != nil && !expired && !c.park.ticking
	c.park.ticking = c.park.ticking || run
	c.setTimer()
	c.park.mu.Unlock()
	switch {
	case expired:
		c.wake() // the connection is ending: no tick for it
	case run:
		tick()
		c.park.mu.Lock()
		c.park.ticking = false
		c.park.mu.Unlock()
	}
}

// Every runs f every d, until the connection is closed, from the
// connection's one timer: the timer that also resumes a parked reader at
// its read deadline, so that a connection that pings its peer keeps one
// timer, not two. f runs on a goroutine of its own, one tick at a time: a
// tick that falls due while f still runs is skipped. Call it once; d must
// be positive.
func (c *Conn) Every(d time.Duration, f func()) {
	c.park.mu.Lock()
	defer c.park.mu.Unlock()
	if c.park.closed {
		return
	}
	c.park.tick, c.park.every, c.park.nextTick = f, d, time.Now().Add(d)
	c.setTimer()
}

// wake resumes a reader that parked: it reads what the connection has
// (an error is kept for gorilla, as Wait does) and runs resume.
func (c *Conn) wake() {
	if time.Since(c.park.parkedAt) < c.park.linger {
		c.park.short++
	} else {
		c.park.short = 0
	}
	if !c.park.p.running() {
		c.readStash() // resumed by the poller's end: wait as Wait does, with no buffer
	}
	c.lend()
	_, _ = c.br.Peek(1)
	c.park.resume()
}

// Close closes the connection, as net.Conn's Close, after it left its
// Poller's set; a parked reader resumes and reads the error.
func (c *Conn) Close() error {
	c.park.mu.Lock()
	c.park.closed = true
	if c.park.registered {
		c.park.p.unregister(c)
		c.park.registered = false
	}
	was := c.park.parked
	c.park.parked = false
	if c.park.timer != nil {
		c.park.timer.Stop()
	}
	c.park.mu.Unlock()
	err := c.Conn.Close()
	if was {
		go c.wake()
	}
	return err
}

// SetReadDeadline sets the read deadline, as net.Conn's; a parked reader
// is resumed at the new deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.park.mu.Lock()
	defer c.park.mu.Unlock()
	c.park.rd = t
	if c.park.parked {
		c.setTimer()
	}
	return c.Conn.SetReadDeadline(c.readDeadline())
}

// SetDeadline sets the read and write deadlines, as net.Conn's.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// readDeadline is the socket's read deadline: rd, or sooner while Linger
// reads. c.park.mu is held.
func (c *Conn) readDeadline() time.Time {
	if l := c.park.lingering; !l.IsZero() && (c.park.rd.IsZero() || l.Before(c.park.rd)) {
		return l
	}
	return c.park.rd
}

// Linger waits up to d for the connection's next bytes with the calling
// goroutine, as Wait does, if the connection is busy, and reports
// whether it has something to read now (bytes, or a read error); false:
// nothing came, or it is not busy: park it (Park). Busy: its last two
// parks lasted less than d each, or its last linger got bytes. A busy
// connection that lingers spares Park's system calls and the poller's
// goroutine hop for each wake; one that is not parks at once, so that a
// crowd of connections that each sent one message (browsers announcing
// themselves) does not keep a goroutine each for d. Where it cannot park
// in p (see Park), it returns false at once: call Park, then Wait.
func (c *Conn) Linger(p *Poller, d time.Duration) bool {
	if c.br.Buffered() > 0 || c.stashed || c.err != nil {
		return true
	}
	c.park.linger = d
	if !c.park.lingered && c.park.short < 2 {
		return false
	}
	if _, ok := c.Conn.(*net.TCPConn); !ok || !p.running() {
		return false
	}
	c.park.mu.Lock()
	c.park.lingering = time.Now().Add(d)
	err := c.Conn.SetReadDeadline(c.readDeadline())
	if err != nil {
		c.park.lingering = time.Time{}
	}
	c.park.mu.Unlock()
	if err != nil {
		return false // closed: Park refuses, Wait reads the error
	}
	c.release()
	n, err := c.Conn.Read(c.stash[:])
	c.lend()
	c.stashed = n > 0
	c.park.mu.Lock()
	c.park.lingering = time.Time{}
	_ = c.Conn.SetReadDeadline(c.park.rd) // fails once closed: Park refuses then
	expired := !c.park.rd.IsZero() && !time.Now().Before(c.park.rd)
	c.park.mu.Unlock()
	c.park.lingered = n > 0
	switch {
	case n > 0:
		return true
	case errors.Is(err, os.ErrDeadlineExceeded) && !expired:
		c.park.short = 0
		return false // only the linger ended
	}
	c.err = err
	return true
}

// running reports whether p's set is open.
func (p *Poller) running() bool {
	if p == nil {
		return false
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.open && !p.closed
}
