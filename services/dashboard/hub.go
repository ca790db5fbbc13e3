package dashboard

import (
	"sync"
	"time"
)

// hub fans node events out to the subscribed browsers. Applying an event to
// the index and queueing its frames for every browser happen under one lock,
// and so does taking a snapshot for a new browser: a browser therefore sees
// every node's "new" before its updates, and no event twice or never. Pushes
// never block, so one slow browser costs the others nothing.
type hub struct {
	m *metrics

	mu      sync.Mutex
	idx     *index
	clients map[*client]struct{} // browsers that sent "new"
	sites   map[string]*frame    // current site links and collisions (sites.go)
}

func newHub(m *metrics) *hub {
	return &hub{m: m, idx: newIndex(), clients: make(map[*client]struct{}), sites: make(map[string]*frame)}
}

// publish applies ev and queues its frames for every subscribed browser.
func (h *hub) publish(ev event) {
	h.mu.Lock()
	frames := h.idx.apply(ev)
	var pyaiot []*frame // computed once for every Pyaiot browser
	for c := range h.clients {
		fs := frames
		if !c.ext {
			if pyaiot == nil {
				pyaiot = framesFor(false, frames)
			}
			fs = pyaiot
		}
		for _, f := range fs {
			if !h.push(c, f) {
				break
			}
		}
	}
	known, online := h.idx.stats()
	h.mu.Unlock()
	h.m.nodes.Set(float64(known))
	h.m.online.Set(float64(online))
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

// push queues f for c; a browser whose queue is full is unsubscribed and cut
// off. It reports whether c is still subscribed. h.mu is held.
func (h *hub) push(c *client, f *frame) bool {
	switch c.out.push(f) {
	case coalesced:
		h.m.coalesced.Inc()
	case overflow, discarded:
		delete(h.clients, c)
		c.cut(cutSlow)
		return false
	}
	return true
}

// subscribe queues the snapshot for c and subscribes it to live events. A
// browser that is already subscribed gets the snapshot again (a resync).
func (h *hub) subscribe(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	snap := h.idx.snapshot(c.ext)
	if c.ext {
		snap = h.withSites(snap)
	}
	switch c.out.pushAll(framesFor(c.ext, snap)) {
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

// stats counts known and online nodes.
func (h *hub) stats() (known, online int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.idx.stats()
}
