package dashboard

import (
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
}

func newHub(m *metrics) *hub {
	return &hub{m: m, idx: newIndex(), clients: make(map[*client]struct{}), sites: make(map[string]*frame),
		wake: make(chan struct{}, 1)}
}

// run flushes pending frames until done is closed.
func (h *hub) run(done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-h.wake:
			h.flush()
		}
	}
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
		h.flush()
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

// flush queues the pending frames for every subscribed browser.
func (h *hub) flush() {
	h.flushMu.Lock()
	defer h.flushMu.Unlock()
	h.mu.Lock()
	frames, clients := h.takePending()
	h.mu.Unlock()
	if len(frames) == 0 {
		return
	}
	cut := h.deliver(frames, clients)
	h.mu.Lock()
	for _, c := range cut {
		delete(h.clients, c)
	}
	h.recycle(frames, clients)
	h.mu.Unlock()
}

// deliver queues frames for every browser of clients and returns those
// cut off. h.flushMu is held.
func (h *hub) deliver(frames []*frame, clients []*client) (cut []*client) {
	var pyaiot []*frame // computed once for every Pyaiot browser
	for _, c := range clients {
		fs := frames
		if !c.ext {
			if pyaiot == nil {
				pyaiot = framesFor(false, frames)
			}
			fs = pyaiot
		}
		if !h.pushAll(c, fs) {
			cut = append(cut, c)
		}
	}
	return cut
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
func (h *hub) pushAll(c *client, frames []*frame) bool {
	r, coalesced := c.out.pushMany(frames)
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
		for _, o := range h.deliver(frames, clients) {
			delete(h.clients, o)
		}
		h.recycle(frames, clients)
	}
	snap := h.idx.snapshot(c.ext)
	if c.ext {
		snap = h.withSites(snap)
	}
	switch c.out.pushSnapshot(framesFor(c.ext, snap)) {
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
	return ok && n.state.State != bus.StateOffline
}

// stats counts known and online nodes.
func (h *hub) stats() (known, online int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.idx.stats()
}
