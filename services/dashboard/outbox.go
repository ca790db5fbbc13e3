package dashboard

import (
	"sync"
	"time"
)

// keepQueue is the capacity a browser's emptied queue keeps; a larger one
// (left by a snapshot) is let go, so an idle browser holds little.
const keepQueue = 256

// keepLatest is how many update keys an emptied queue remembers; beyond
// it the map is let go.
const keepLatest = 64

// outbox is the bounded queue of frames waiting for one browser. Pushing
// never blocks. Once more than slowAfter frames wait, an update replaces the
// queued update of the same resource instead of queueing behind it (the
// browser is slow: it gets the latest value, not every value). Other frames
// are never dropped; when more than limit frames wait besides what is left
// of the last snapshot, push fails and the browser is cut off.
type outbox struct {
	mu    sync.Mutex
	buf   []*frame // queued frames are buf[head:]
	head  int
	start uint64 // absolute position of buf[head]
	// floor is the position after the last queued lifecycle frame: an
	// update queued before it is never replaced by one queued after it.
	floor uint64
	// latest maps an update key to the absolute position of its latest
	// queued frame, kept only while more than slowAfter frames wait (the
	// only time it is read), so that pushing to a browser that keeps up
	// costs no map operation. Keys of taken frames are harmless: their
	// positions are behind the queue's start.
	latest map[string]uint64
	slow   bool // latest is kept
	// snaps counts the snapshot placeholders queued (frame.snap): a
	// browser with one is written by its writer goroutine, never by the
	// hub's flusher, which would encode the snapshot.
	snaps   int
	snapEnd uint64 // absolute position after the last snapshot's frames
	limit   int
	// slowAfter is the queue length from which updates coalesce.
	slowAfter int
	closed    bool
	// writing: a writer runs (see client.drain); pushing frames while none
	// runs calls startWriter, which starts one. A running writer checks for
	// more (idle) before it ends.
	writing     bool
	startWriter func()
	// later: the writer is the hub's flusher, at the end of the write
	// delay (claimLater); an answer takes the writing over (pushClaim).
	later bool
	// claimNow (nil: never) is asked, under the lock, whether the pusher
	// writes the queue itself, now or at a time it returns (see
	// pushManyClaim); anything but claimNone counts it as the writer.
	claimNow func(now time.Time, queued []*frame) (claim, time.Time)
}

// claim is who writes a browser's queue that the hub's flusher pushed to
// when no writer ran.
type claim int

const (
	claimNone  claim = iota // a writer goroutine (startWriter)
	claimWrite              // the flusher, now
	claimLater              // the flusher, at the time claimNow returned
)

// newOutbox returns an empty outbox; start (nil: none) is called, under
// the lock, when frames are pushed and no writer runs.
func newOutbox(limit, slowAfter int, start func()) *outbox {
	return &outbox{
		limit:       limit,
		slowAfter:   slowAfter,
		startWriter: start,
	}
}

// pushResult says what happened to a pushed frame.
type pushResult int

const (
	queued    pushResult = iota
	coalesced            // it replaced a queued update of the same resource
	overflow             // the queue is full: the browser must be cut off
	discarded            // the outbox is closed
)

// push queues f.
func (o *outbox) push(f *frame) pushResult {
	o.mu.Lock()
	r := o.pushLocked(f)
	if r == queued {
		o.wakeLocked()
	}
	o.mu.Unlock()
	return r
}

// pushClaim queues f like push, but when no writer runs it starts none:
// it counts the caller as the writer (claim is called under the lock, as
// startWriter is) and reports true; the caller then writes the queue.
func (o *outbox) pushClaim(f *frame, claim func()) (pushResult, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r := o.pushLocked(f)
	if r != queued {
		return r, false
	}
	if (o.writing && !o.later) || o.startWriter == nil {
		o.wakeLocked()
		return r, false
	}
	if o.later {
		o.later = false // the caller takes the flusher's claim over, and its count (takeLater)
		return r, true
	}
	o.writing = true
	claim()
	return r, true
}

// takeLater reports whether the flusher's claimLater still holds (no
// answer took the writing over, the outbox did not close), and ends it:
// the caller then holds the claim's count of a writer.
func (o *outbox) takeLater() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	ok := o.later
	o.later = false
	return ok
}

// pushManyClaim queues frames in order, under one lock, and returns the
// first overflow or discarded (else queued) and how many frames were
// coalesced. When no writer runs and claimNow claims the queue, it starts
// none but counts the caller as the writer, now or at the time returned:
// the caller then writes the queue (client.writeNow).
func (o *outbox) pushManyClaim(frames []*frame, now time.Time) (pushResult, int, claim, time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, n := o.pushManyLocked(frames)
	if r == queued && !o.writing && !o.closed && o.head < len(o.buf) && o.claimNow != nil && o.snaps == 0 {
		if k, at := o.claimNow(now, o.buf[o.head:]); k != claimNone {
			o.writing, o.later = true, k == claimLater
			return r, n, k, at
		}
	}
	o.wakeLocked()
	return r, n, claimNone, time.Time{}
}

func (o *outbox) pushManyLocked(frames []*frame) (pushResult, int) {
	n := 0
	for _, f := range frames {
		switch o.pushLocked(f) {
		case coalesced:
			n++
		case overflow:
			return overflow, n
		case discarded:
			return discarded, n
		}
	}
	return queued, n
}

// pushSnapshot queues frames (a snapshot). The frames of the snapshot that
// are still queued do not count toward the limit: a large snapshot is not
// a slow browser, but once the browser has taken it the limit is the same
// as before.
func (o *outbox) pushSnapshot(frames []*frame) pushResult {
	o.mu.Lock()
	o.snapEnd = o.start + uint64(len(o.buf)-o.head+len(frames))
	r, _ := o.pushManyLocked(frames)
	o.wakeLocked()
	o.mu.Unlock()
	return r
}

func (o *outbox) pushLocked(f *frame) pushResult {
	if o.closed {
		return discarded
	}
	n := len(o.buf) - o.head
	pos := o.start + uint64(n)
	if n > o.slowAfter && !o.slow {
		o.indexQueued()
	}
	if f.barrier {
		o.floor = pos + 1
	} else if f.key != "" && o.slow {
		if p, ok := o.latest[f.key]; ok && p >= o.start && p >= o.floor {
			o.buf[o.head+int(p-o.start)] = f
			return coalesced
		}
	}
	if n >= o.limit+o.snapshotLeft() {
		return overflow
	}
	if f.key != "" && o.slow {
		o.latest[f.key] = pos
	}
	if f.snap != nil {
		o.snaps++
	}
	if o.head > 0 && len(o.buf) == cap(o.buf) {
		// Reuse the space of taken frames instead of growing.
		copy(o.buf, o.buf[o.head:])
		clear(o.buf[n:])
		o.buf = o.buf[:n]
		o.head = 0
	}
	o.buf = append(o.buf, f)
	return queued
}

// indexQueued starts keeping latest: the browser has fallen behind.
func (o *outbox) indexQueued() {
	o.slow = true
	if o.latest == nil {
		o.latest = make(map[string]uint64)
	}
	for i, f := range o.buf[o.head:] {
		if f.key != "" {
			o.latest[f.key] = o.start + uint64(i)
		}
	}
}

// snapshotLeft is the number of frames of the last snapshot still queued.
func (o *outbox) snapshotLeft() int {
	if o.snapEnd <= o.start {
		return 0
	}
	return int(o.snapEnd - o.start)
}

// wakeLocked starts a writer when frames are queued and none runs. o.mu
// is held, so that close, which takes it, happens after the start: a
// client that closed its outbox and then waits for its writers does not
// miss one that was starting (startWriter only counts the writer and
// starts its goroutine).
func (o *outbox) wakeLocked() {
	if o.writing || o.closed || o.head == len(o.buf) || o.startWriter == nil {
		return
	}
	o.writing = true
	o.startWriter()
}

// idle reports whether nothing is queued, and then counts the writer as
// stopped: the next push starts another.
func (o *outbox) idle() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.head < len(o.buf) && !o.closed {
		return false
	}
	o.writing = false
	return true
}

// take moves up to max queued frames into dst and returns it. A snapshot's
// placeholder is expanded into its nodes' frames, max at a time (a node's
// frames are never split); it leaves the queue once all are taken.
func (o *outbox) take(dst []*frame, max int) []*frame {
	o.mu.Lock()
	defer o.mu.Unlock()
	for len(dst) < max && o.head < len(o.buf) {
		f := o.buf[o.head]
		if f.snap == nil {
			dst = append(dst, f)
		} else if dst = f.snap.expand(dst, max); !f.snap.done() {
			break
		} else {
			o.snaps--
		}
		o.buf[o.head] = nil // let the shared frames go
		o.head++
		o.start++
	}
	if o.head == len(o.buf) {
		o.buf = o.buf[:0]
		if cap(o.buf) > keepQueue {
			o.buf = nil
		}
		o.head = 0
		o.slow = false
		if len(o.latest) > keepLatest {
			o.latest = nil
		}
	}
	return dst
}

// close drops what is queued and refuses further frames; it returns how
// many frames were dropped, and whether the flusher's claimLater was
// ended: the caller then holds its count of a writer.
func (o *outbox) close() (int, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(o.buf) - o.head
	later := o.later
	o.closed, o.later = true, false
	o.buf, o.head, o.snaps = nil, 0, 0
	o.latest = nil
	return n, later
}
