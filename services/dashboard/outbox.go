package dashboard

import (
	"sync"
)

// outbox is the bounded queue of frames waiting for one browser. Pushing
// never blocks. Once more than slowAfter frames wait, an update replaces the
// queued update of the same resource instead of queueing behind it (the
// browser is slow: it gets the latest value, not every value). Other frames
// are never dropped; when more than limit frames wait, push fails and the
// browser is cut off.
type outbox struct {
	mu        sync.Mutex
	buf       []*frame // queued frames are buf[head:]
	head      int
	start     uint64            // absolute position of buf[head]
	latest    map[string]uint64 // update key → absolute position of its queued frame
	limit     int               // the base limit, plus the size of the last snapshot
	base      int
	slowAfter int
	closed    bool
	ready     chan struct{} // signalled (capacity 1) when frames are pushed
}

func newOutbox(limit, slowAfter int) *outbox {
	return &outbox{
		latest:    make(map[string]uint64),
		limit:     limit,
		base:      limit,
		slowAfter: slowAfter,
		ready:     make(chan struct{}, 1),
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
	o.mu.Unlock()
	if r == queued {
		o.signal()
	}
	return r
}

// pushAll queues frames (a snapshot) and raises the limit by their number,
// so that a large snapshot does not count as a slow browser.
func (o *outbox) pushAll(frames []*frame) pushResult {
	o.mu.Lock()
	o.limit = o.base + len(frames)
	r := queued
	for _, f := range frames {
		if r = o.pushLocked(f); r == overflow || r == discarded {
			break
		}
	}
	o.mu.Unlock()
	o.signal()
	return r
}

func (o *outbox) pushLocked(f *frame) pushResult {
	if o.closed {
		return discarded
	}
	n := len(o.buf) - o.head
	if f.barrier {
		clear(o.latest)
	} else if f.key != "" {
		if pos, ok := o.latest[f.key]; ok && pos >= o.start && n > o.slowAfter {
			o.buf[o.head+int(pos-o.start)] = f
			return coalesced
		}
	}
	if n >= o.limit {
		return overflow
	}
	if f.key != "" {
		o.latest[f.key] = o.start + uint64(n)
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

func (o *outbox) signal() {
	select {
	case o.ready <- struct{}{}:
	default:
	}
}

// take moves up to max queued frames into dst and returns it.
func (o *outbox) take(dst []*frame, max int) []*frame {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := min(max, len(o.buf)-o.head)
	dst = append(dst, o.buf[o.head:o.head+n]...)
	clear(o.buf[o.head : o.head+n]) // let the shared frames go
	o.head += n
	o.start += uint64(n)
	if o.head == len(o.buf) {
		o.buf = o.buf[:0]
		o.head = 0
		clear(o.latest)
	}
	return dst
}

// close drops what is queued and refuses further frames; it returns how
// many frames were dropped.
func (o *outbox) close() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(o.buf) - o.head
	o.closed = true
	o.buf, o.head = nil, 0
	clear(o.latest)
	return n
}
