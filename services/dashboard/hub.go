package dashboard

import (
	"runtime"
	"sync"
	"time"

	"github.com/goaiot/goaiot/bus"
)

// maxPending bounds the frames applied to the index and not yet queued for
// the browsers: past it, the goroutine reading node.> queues them itself
// (and NATS holds what comes meanwhile). Well below the default
// QueueLimit, so that one batch never cuts off a browser that keeps up.
const maxPending = 1024

// hub fans node events out to the subscribed browsers. The goroutine that
// reads node.> applies each event to the index and appends its frames to a
// pending list, under mu; a flusher goroutine moves the pending frames to
// every browser's queue, one batch per browser: under load a browser's
// queue is locked once per batch rather than once per value, and the
// reader is not held up by the number of browsers. Flushes are serialized
// (flushMu), and a browser subscribes between two flushes, with the
// pending frames flushed first: it therefore sees every node's "new"
// before its updates, and no event twice or never. Pushes never block, so
// one slow browser costs the others nothing.
type hub struct {
	m *metrics

	flushMu sync.Mutex // held while frames move to the browsers' queues

	mu       sync.Mutex
	idx      *index
	clients  map[*client]struct{} // browsers that sent "new"
	sites    map[string]*frame    // current site links and collisions (sites.go)
	pending  []*frame             // applied, not yet queued for the browsers
	spare    []*frame             // the previous pending list, for reuse
	list     []*client            // the previous flush's browsers, for reuse
	flushing bool                 // the flusher has been told
	wake     chan struct{}        // tells the flusher (capacity 1)

	// The flusher's, under flushMu:
	due     []dueWrite // browsers the flusher writes to when their delay ends
	dueAt   time.Time  // the earliest at of due; zero when due is empty
	writing []*client  // browsers the flusher writes to now (writeAll)
}

// dueWrite is a browser the flusher claimed (claimLater) and writes at at.
type dueWrite struct {
	c  *client
	at time.Time
}

func newHub(m *metrics) *hub {
	return &hub{m: m, idx: newIndex(), clients: make(map[*client]struct{}), sites: make(map[string]*frame),
		wake: make(chan struct{}, 1)}
}

// run flushes pending frames, and writes the browsers whose write delay
// ended, until done is closed.
func (h *hub) run(done <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var armed time.Time // when the timer fires; zero: it is not set
	defer h.releaseDue()
	for {
		select {
		case <-done:
			return
		case <-h.wake:
			h.flushAt(time.Now())
		case <-timer.C:
			armed = time.Time{}
			h.writeDue(time.Now())
		}
		if len(h.due) > 0 && !h.dueAt.Equal(armed) {
			timer.Reset(time.Until(h.dueAt))
			armed = h.dueAt
		}
	}
}

// writeDue writes the due browsers whose delay ended by now. The flusher's.
func (h *hub) writeDue(now time.Time) {
	h.flushMu.Lock()
	defer h.flushMu.Unlock()
	keep := h.due[:0]
	h.dueAt = time.Time{}
	for _, w := range h.due {
		switch {
		case w.at.After(now):
			keep = append(keep, w)
			h.noteDue(w.at)
			continue
		case !w.c.out.takeLater(): // an answer took the writing over, or the browser left
			continue
		}
		h.writing = append(h.writing, w.c)
	}
	clear(h.due[len(keep):])
	h.due = keep
	h.writeAll()
}

// noteDue keeps dueAt the earliest time of the due browsers, at being
// one more. The flusher's.
func (h *hub) noteDue(at time.Time) {
	if h.dueAt.IsZero() || at.Before(h.dueAt) {
		h.dueAt = at
	}
}

// releaseDue hands the due browsers to writer goroutines: the flusher
// stops.
func (h *hub) releaseDue() {
	for _, w := range h.due {
		if w.c.out.takeLater() {
			w.c.startWriter()
			w.c.writers.Done()
		}
	}
	h.due = nil
}

// publish applies ev and queues its frames for every subscribed browser.
func (h *hub) publish(ev event) {
	h.mu.Lock()
	frames := h.idx.apply(ev)
	known, online := h.idx.stats()
	full := h.addPending(frames)
	h.mu.Unlock()
	h.m.nodes.Set(float64(known))
	h.m.online.Set(float64(online))
	if full {
		h.flushAt(time.Time{}) // the reader's goroutine: writers write
	}
}

// addPending appends frames to the pending list and tells the flusher; it
// reports whether the list is full. h.mu is held.
func (h *hub) addPending(frames []*frame) bool {
	if len(frames) == 0 {
		return false
	}
	h.pending = append(h.pending, frames...)
	if !h.flushing {
		h.flushing = true
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
	return len(h.pending) >= maxPending
}

// flush queues the pending frames for every subscribed browser, for
// writer goroutines to write.
func (h *hub) flush() { h.flushAt(time.Time{}) }

// flushAt queues the pending frames for every subscribed browser; with a
// time now (the flusher's goroutine only), it writes them itself where it
// may (writenow.go).
func (h *hub) flushAt(now time.Time) {
	h.flushMu.Lock()
	defer h.flushMu.Unlock()
	h.mu.Lock()
	frames, clients := h.takePending()
	h.mu.Unlock()
	if len(frames) == 0 {
		return
	}
	cut := h.deliver(frames, clients, now)
	h.mu.Lock()
	for _, c := range cut {
		delete(h.clients, c)
	}
	h.recycle(frames, clients)
	h.mu.Unlock()
}

// deliver queues frames for every browser of clients and returns those
// cut off; with a time now, it writes them itself to the browsers that may
// be written to at once (writenow.go). h.flushMu is held.
func (h *hub) deliver(frames []*frame, clients []*client, now time.Time) (cut []*client) {
	var pyaiot []*frame // computed once for every Pyaiot browser
	for _, c := range clients {
		fs := frames
		if !c.ext {
			if pyaiot == nil {
				pyaiot = framesFor(false, frames)
			}
			fs = pyaiot
		}
		if !h.pushAll(c, fs, now) {
			cut = append(cut, c)
		}
	}
	h.writeAll()
	return cut
}

// minPerWriter is the fewest browsers one goroutine of writeAll writes to:
// below it, starting another costs more than its writes.
const minPerWriter = 32

// writeAll writes to the browsers in h.writing (claimed: writeNow) and
// empties it, on up to GOMAXPROCS goroutines, the flusher's included, so
// that a thousand browsers do not wait for one core. The flusher's.
func (h *hub) writeAll() {
	cs := h.writing
	defer func() {
		clear(cs)
		h.writing = cs[:0]
	}()
	parts := min(runtime.GOMAXPROCS(0), len(cs)/minPerWriter)
	if parts <= 1 {
		for _, c := range cs {
			c.writeNow()
		}
		return
	}
	size := (len(cs) + parts - 1) / parts
	var wg sync.WaitGroup
	for i := size; i < len(cs); i += size {
		part := cs[i:min(i+size, len(cs))]
		wg.Go(func() {
			for _, c := range part {
				c.writeNow()
			}
		})
	}
	for _, c := range cs[:size] {
		c.writeNow()
	}
	wg.Wait()
}

// recycle keeps the lists of a flush for the next one. h.mu is held.
func (h *hub) recycle(frames []*frame, clients []*client) {
	clear(frames)
	h.spare = frames[:0]
	clear(clients)
	h.list = clients[:0]
}

// takePending returns the pending frames and the browsers to queue them
// for, and empties the list. h.mu is held.
func (h *hub) takePending() ([]*frame, []*client) {
	frames := h.pending
	h.pending, h.spare = h.spare, nil
	h.flushing = false
	if len(frames) == 0 {
		return nil, nil
	}
	clients := h.list
	h.list = nil
	for c := range h.clients {
		clients = append(clients, c)
	}
	return frames, clients
}

// pushAll queues frames for c; a browser whose queue is full is cut off.
// It reports whether c is still subscribed (false too for a browser that
// left).
func (h *hub) pushAll(c *client, frames []*frame, now time.Time) bool {
	r, coalesced, k, at := c.out.pushManyClaim(frames, now)
	if coalesced > 0 {
		h.m.coalesced.Add(float64(coalesced))
	}
	switch r {
	case overflow:
		c.cut(cutSlow)
		return false
	case discarded: // the browser left since the flush began
		return false
	}
	switch k {
	case claimWrite:
		h.writing = append(h.writing, c)
	case claimLater:
		h.due = append(h.due, dueWrite{c, at})
		h.noteDue(at)
	}
	return true
}

// forget drops the nodes offline since before cutoff from the index.
func (h *hub) forget(cutoff time.Time) int {
	h.mu.Lock()
	n := h.idx.forget(cutoff)
	known, online := h.idx.stats()
	h.mu.Unlock()
	h.m.nodes.Set(float64(known))
	h.m.online.Set(float64(online))
	return n
}

// subscribe queues the snapshot for c and subscribes it to live events. A
// browser that is already subscribed gets the snapshot again (a resync).
func (h *hub) subscribe(c *client) {
	h.flushMu.Lock()
	defer h.flushMu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	// What the index holds and the browsers were not sent yet goes to them
	// first: it is in the snapshot.
	if frames, clients := h.takePending(); len(frames) > 0 {
		for _, o := range h.deliver(frames, clients, time.Time{}) {
			delete(h.clients, o)
		}
		h.recycle(frames, clients)
	}
	snap := h.idx.snapshot(c.ext)
	if c.ext {
		snap = h.withSites(snap)
	}
	switch c.out.pushSnapshot(snap) {
	case overflow, discarded:
		delete(h.clients, c)
		c.cut(cutSlow)
		return
	}
	h.clients[c] = struct{}{}
	h.m.snapshotsN.Inc()
}

// unsubscribe stops live events to c.
func (h *hub) unsubscribe(c *client) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
}

// owned tells whether node uid's last $state says a gateway owns it
// (online or reset).
func (h *hub) owned(uid string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	n, ok := h.idx.nodes[uid]
	return ok && n.rec.st.State != bus.StateOffline
}

// stats counts known and online nodes.
func (h *hub) stats() (known, online int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.idx.stats()
}
