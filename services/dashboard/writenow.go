package dashboard

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// The hub's flusher writes a browser's frames itself, with one
// non-blocking system call, when no writer runs, nothing needs compressing
// and the connection is plain TCP: at once when nothing was written to the
// browser for WriteDelay, else when that delay ends (the flusher keeps the
// due browsers and one timer; what comes meanwhile joins the write). A
// writer goroutine per write and its wake-up cost more CPU than the write
// itself at 1 000 values/s to 100 browsers. What the socket does not take
// at once (its buffer is full: the browser is slow) is left to a writer
// goroutine, which writes it first, with the write deadline, as before.
// A write that waits (the writer's, a ping's, a close's) leaves its
// deadline on the socket; the flusher clears it before its own write,
// for Go fails even a non-blocking write once the deadline has passed.

// rawConn is the socket of a plain TCP connection, for non-blocking
// writes; nil for any other (TLS: the bytes must go through tls.Conn).
func rawConn(nc net.Conn) syscall.RawConn {
	tc, ok := nc.(*net.TCPConn)
	if !ok || !canWriteNonblock {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// claimNow says who writes queued to c, the flusher having pushed it when
// no writer ran: the flusher now (nothing written for WriteDelay), the
// flusher at the end of the delay, or a writer goroutine (no raw socket,
// something to compress, not the flusher). A claim counts as a writer
// until writeNow or the hub's release ends it. The outbox's lock is held.
func (c *client) claimNow(now time.Time, queued []*frame) (claim, time.Time) {
	if c.raw == nil || now.IsZero() {
		return claimNone, time.Time{}
	}
	if c.deflate {
		for _, f := range queued {
			if f.size() >= compressMin {
				return claimNone, time.Time{} // gorilla compresses it: the writer's
			}
		}
	}
	c.writers.Add(1)
	if d := c.d.cfg.WriteDelay; d > 0 && now.Sub(c.last) < d {
		return claimLater, c.last.Add(d)
	}
	return claimWrite, time.Time{}
}

// writeNow writes what c has queued without blocking, c having been
// claimed (claimNow); a writer goroutine takes over what is left. The
// flusher's.
func (c *client) writeNow() {
	defer c.writers.Done()
	select {
	case <-c.closing:
		return // still counted as writing: no writer starts
	default:
	}
	select {
	case c.wmu <- struct{}{}:
	default:
		c.startWriter() // a control frame is being written: wait for it there
		return
	}
	err := c.clearDeadline()
	rest := false
	if err == nil {
		rest, err = c.writeQueuedNow()
	}
	<-c.wmu
	switch {
	case err != nil:
		c.writeFailed(err)
	case rest || !c.out.idle():
		c.startWriter()
	}
}

// writeQueuedNow writes the queue a batch at a time until it is empty or
// the socket is full; rest: bytes were left in c.rest for the writer. wmu.
func (c *client) writeQueuedNow() (rest bool, err error) {
	bp := c.d.batches.Get().(*[]*frame)
	defer c.d.batches.Put(bp)
	wp := c.d.wbufs.Get().(*[]byte)
	defer func() {
		if cap(*wp) <= maxWriteBuf {
			c.d.wbufs.Put(wp)
		}
	}()
	for batch := c.out.take((*bp)[:0], writeBatch); len(batch) > 0; batch = c.out.take(batch[:0], writeBatch) {
		buf := c.appendFrames((*wp)[:0], batch)
		*wp = buf
		n, err := c.writeNonblock(buf)
		if err != nil {
			c.d.m.dropped.Add(float64(len(batch)))
			clear(batch)
			return false, err
		}
		c.d.m.framesOut.Add(float64(len(batch)))
		c.d.m.flusherW.Inc()
		clear(batch)
		if n < len(buf) {
			c.rest = append(c.rest[:0], buf[n:]...)
			return true, nil
		}
		c.last = time.Now()
	}
	return false, nil
}

// writeNonblock writes b to the socket without waiting; n < len(b) with
// no error: the socket's buffer is full.
func (c *client) writeNonblock(b []byte) (int, error) {
	w := &c.nb
	w.b, w.n, w.err = b, 0, nil
	err := c.raw.Write(w.write)
	n, werr := w.n, w.err
	w.b, w.err = nil, nil
	if err != nil {
		return n, err
	}
	return n, werr
}

// nonblock is a write in progress for writeNonblock; write, bound once
// per browser, spares a closure per write. The writer's.
type nonblock struct {
	b     []byte
	n     int
	err   error
	write func(fd uintptr) bool
}

// writeTo writes w.b to fd until done or the socket is full, for
// RawConn.Write; it never asks to wait (true).
func (w *nonblock) writeTo(fd uintptr) bool {
	for w.n < len(w.b) {
		m, err := nonblockWrite(fd, w.b[w.n:])
		if m > 0 {
			w.n += m
		}
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			return true
		case err != nil:
			w.err = err
			return true
		}
	}
	return true
}

// writeRest writes what the flusher left (writeNow), with the write
// deadline. The writer's.
func (c *client) writeRest() error {
	if len(c.rest) == 0 {
		return nil
	}
	if _, err := c.lockWrite(); err != nil {
		return err
	}
	defer func() { <-c.wmu }()
	err := c.flush(c.rest)
	c.rest = c.rest[:0]
	if cap(c.rest) > maxWriteBuf {
		c.rest = nil
	}
	c.last = time.Now()
	return err
}
