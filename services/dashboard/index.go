package dashboard

import (
	"net"
	"strings"
	"time"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/internal/shrink"
)

// event is one node message from the bus, parsed.
type event struct {
	kind     bus.Kind // KindNodeState, KindNodeValue or KindNodeResources
	uid      string
	endpoint string    // KindNodeValue
	value    string    // KindNodeValue: the value as text
	state    bus.State // KindNodeState
	ts       time.Time // when it happened (payload ts, else stream or arrival time)
}

// index is what the dashboard knows of every node: its presence and its
// last values. A browser's snapshot is read from it, so that a new browser
// costs no round trip to JetStream. It keeps data, not encoded messages,
// in records that are replaced, never changed (nodeRec): a snapshot under
// the hub's lock is a copy of a pointer per node, and the browser's
// writer encodes it (snapSource). It is not safe for concurrent use: the
// hub guards it.
type index struct {
	nodes  map[string]*nodeEntry
	order  []*nodeEntry // in order of appearance, for stable snapshots
	peak   shrink.Peak  // of nodes (see forget)
	online int
	names  map[string]string // gateway and site names, shared (interned)
}

type nodeEntry struct {
	uid       string
	rec       *nodeRec
	offlineAt time.Time
}

// nodeRec is a node's state and last values. It is replaced, never
// changed, so that a snapshot may read it after the hub's lock is
// released.
type nodeRec struct {
	st *bus.State
	// values are the node's last values, in order of appearance: a slice,
	// not a map, for a node has few resources (a map of two costs about
	// 250 bytes, 25 MB at 100 000 nodes) and a scan of them is as fast.
	values []valueEntry
}

type valueEntry struct {
	// key is "uid\x00endpoint", the key of the node's updates of it, which
	// a slow browser may see coalesced (frame.key); the endpoint is its end.
	key  string
	text string
	ms   int64 // the value's time in Unix milliseconds, as sent; 0: none
}

// value returns the position of endpoint's entry, or -1.
func (r *nodeRec) value(uid, endpoint string) int {
	for i := range r.values {
		if r.values[i].endpoint(uid) == endpoint {
			return i
		}
	}
	return -1
}

// endpoint is the value's resource name, the end of its key.
func (v *valueEntry) endpoint(uid string) string { return v.key[len(uid)+1:] }

func newIndex() *index {
	return &index{nodes: make(map[string]*nodeEntry), names: make(map[string]string)}
}

// apply records ev and returns the frames every subscribed browser must get,
// in order.
func (x *index) apply(ev event) []*frame {
	n, isNew := x.node(ev)
	var out []*frame
	if isNew {
		out = append(out, n.newFrame())
	}
	switch ev.kind {
	case bus.KindNodeState:
		out = append(out, x.applyState(n, isNew, ev)...)
	case bus.KindNodeValue:
		if f := x.applyValue(n, ev); f != nil {
			out = append(out, f)
		}
	}
	return out
}

// node returns the entry of ev's node, creating it (online, or in the state
// ev carries) when it is unknown.
func (x *index) node(ev event) (*nodeEntry, bool) {
	if n, ok := x.nodes[ev.uid]; ok {
		return n, false
	}
	st := bus.State{State: bus.StateOnline, Time: ev.ts}
	if ev.kind == bus.KindNodeState {
		st = ev.state
	}
	n := &nodeEntry{uid: strings.Clone(ev.uid)} // not the subject it was cut from
	x.nodes[n.uid] = n
	x.order = append(x.order, n)
	x.setState(n, st, nil)
	return n, true
}

func (x *index) applyState(n *nodeEntry, isNew bool, ev event) []*frame {
	prev := *n.rec.st
	if isNew {
		if ev.state.State == bus.StateOffline {
			return []*frame{n.outFrame()}
		}
		return nil
	}
	if sameInfo(prev, ev.state) && prev.Time.Equal(ev.state.Time) {
		return nil // the same message again (a resync reads what was live)
	}
	if ev.state.State == bus.StateReset {
		x.setState(n, ev.state, nil) // its values are gone
		if prev.State == bus.StateOffline {
			return []*frame{n.newFrame()} // its card is gone: show it again
		}
		f := mustFrame(nodeEventMsg{Type: typeReset, UID: n.uid, TS: millis(ev.ts)}, "", true)
		f.seed = newSeed(n.uid, n.rec.st) // Pyaiot re-seeds a node that rebooted
		return []*frame{f}
	}
	x.setState(n, ev.state, n.rec.values)
	switch {
	case ev.state.State == bus.StateOffline && prev.State == bus.StateOffline:
		return nil
	case ev.state.State == bus.StateOffline:
		return []*frame{n.outFrame()}
	case sameInfo(prev, ev.state):
		return nil // a repeated online, e.g. on a resync
	}
	return []*frame{n.newFrame()}
}

// sameInfo reports whether a and b would show the same in a "new".
func sameInfo(a, b bus.State) bool {
	return a.State == b.State && a.Protocol == b.Protocol && a.Gateway == b.Gateway &&
		a.Site == b.Site && a.Address == b.Address
}

// setState gives n the state st and the values.
func (x *index) setState(n *nodeEntry, st bus.State, values []valueEntry) {
	was := ""
	if n.rec != nil {
		was = n.rec.st.State
	}
	n.rec = &nodeRec{st: x.interned(st), values: values}
	if (was == "" || was == bus.StateOffline) && st.State != bus.StateOffline {
		x.online++
	} else if was != "" && was != bus.StateOffline && st.State == bus.StateOffline {
		x.online--
	}
	if st.State == bus.StateOffline && (was != bus.StateOffline || n.offlineAt.IsZero()) {
		n.offlineAt = st.Time
		if n.offlineAt.IsZero() {
			n.offlineAt = time.Now()
		}
	}
}

// maxNames bounds the gateway and site names the index shares: they come
// from the gateways, which are few, but a name beyond it is kept as it is.
const maxNames = 1024

// interned returns st to keep, its strings shared with the other nodes'
// where they are the same (the state, protocol, gateway and site): the
// decoder made new ones for every message.
func (x *index) interned(st bus.State) *bus.State {
	st.State, st.Protocol = known(st.State), known(st.Protocol)
	for _, s := range []*string{&st.Gateway, &st.Site} {
		if name, ok := x.names[*s]; ok {
			*s = name
		} else if len(x.names) < maxNames {
			x.names[*s] = *s
		}
	}
	return &st
}

// known returns the package constant equal to s, else s.
func known(s string) string {
	for _, k := range [...]string{bus.StateOnline, bus.StateOffline, bus.StateReset, bus.ProtocolCoAP,
		bus.ProtocolMQTT, bus.ProtocolMQTTSN, bus.ProtocolWebSocket} {
		if s == k {
			return k
		}
	}
	return s
}

// newFrame is the node's "new", with its seed values for Pyaiot's page.
func (n *nodeEntry) newFrame() *frame {
	wire, hdr := newWire(n.uid, n.rec.st)
	return &frame{wire: wire, hdr: hdr, barrier: true, seed: newSeed(n.uid, n.rec.st)}
}

// outFrame is the node's "out".
func (n *nodeEntry) outFrame() *frame {
	return mustFrame(nodeEventMsg{Type: typeOut, UID: n.uid, TS: millis(n.rec.st.Time)}, "", true)
}

// applyValue records a value and returns its "update", or nil when it is
// the value already recorded (the same message read again).
func (x *index) applyValue(n *nodeEntry, ev event) *frame {
	ms := millis(ev.ts)
	old := n.rec.values
	i := n.rec.value(n.uid, ev.endpoint)
	if i >= 0 && old[i].text == ev.value && old[i].ms == ms {
		return nil // the same message again (or one a browser shows the same)
	}
	values := make([]valueEntry, len(old), len(old)+max(0, -i))
	copy(values, old)
	if i < 0 {
		values = append(values, valueEntry{key: n.uid + "\x00" + ev.endpoint})
		i = len(values) - 1
	}
	v := &values[i]
	v.text, v.ms = ev.value, ms
	n.rec = &nodeRec{st: n.rec.st, values: values}
	return updateFrame(n.uid, ev.endpoint, v.text, ms, v.key)
}

// snapshot is every node as a browser must learn it: "new", its values,
// then "out" if it is offline; then "synced". Pyaiot's page (ext false)
// gets no extension message and never shows offline nodes: they are left
// out, and each node's seed values follow its "new". The nodes' frames
// come as one placeholder, which the browser's writer expands and encodes
// as it takes them (snapSource): here a snapshot costs a copy of a pointer
// per node.
func (x *index) snapshot(ext bool) []*frame {
	nodes := make([]snapNode, 0, len(x.order))
	for _, n := range x.order {
		if !ext && n.rec.st.State == bus.StateOffline {
			continue
		}
		nodes = append(nodes, snapNode{uid: n.uid, rec: n.rec})
	}
	out := []*frame{{snap: &snapSource{nodes: nodes, ext: ext}, barrier: true}}
	if !ext {
		return out
	}
	return append(out, mustFrame(syncedMsg{Type: typeSynced, Nodes: len(x.order)}, "", false))
}

// snapSource is the nodes of a snapshot still to be sent to its browser,
// as they were when it was taken.
type snapSource struct {
	nodes []snapNode
	ext   bool // goaiot's page: offline nodes and no seed values
}

type snapNode struct {
	uid string
	rec *nodeRec
}

// expand appends the frames of the next nodes to dst until dst holds max
// frames or no node is left. The frames are encoded when written (snapMsg).
func (s *snapSource) expand(dst []*frame, max int) []*frame {
	for len(s.nodes) > 0 && len(dst) < max {
		dst = s.nodes[0].appendFrames(dst, s.ext)
		s.nodes[0] = snapNode{} // let it go
		s.nodes = s.nodes[1:]
	}
	return dst
}

// done reports whether every node was expanded.
func (s *snapSource) done() bool { return len(s.nodes) == 0 }

// appendFrames appends the node's frames: "new", its seed values (Pyaiot's
// page), its values, and "out" when it is offline.
func (n snapNode) appendFrames(dst []*frame, ext bool) []*frame {
	st := n.rec.st
	offline := st.State == bus.StateOffline
	count := 1 + len(n.rec.values)
	if offline {
		count++
	}
	if !ext {
		eachSeed(n.uid, st, func(string, string) { count++ })
	}
	msgs, frames := make([]snapMsg, count), make([]frame, count)
	i := 0
	add := func(m snapMsg, key string, barrier bool) {
		msgs[i] = m
		f := &frames[i]
		f.src, f.key, f.barrier = &msgs[i], key, barrier
		dst = append(dst, f)
		i++
	}
	add(snapMsg{uid: n.uid, st: st}, "", true)
	if !ext {
		eachSeed(n.uid, st, func(endpoint, text string) {
			add(snapMsg{uid: n.uid, endpoint: endpoint, text: text, ts: millis(st.Time)}, "", false)
		})
	}
	for _, v := range n.rec.values {
		add(snapMsg{uid: n.uid, endpoint: v.endpoint(n.uid), text: v.text, ts: v.ms}, v.key, false)
	}
	if offline {
		add(snapMsg{uid: n.uid, ts: millis(st.Time)}, "", true)
	}
	return dst
}

// snapMsg is a snapshot's message before it is encoded: a node's "new"
// (st set), an "update" of one of its values or seed values (endpoint
// set), or its "out" (neither). Its strings and state are the index's,
// never changed, so it is encoded by the browser's writer.
type snapMsg struct {
	uid, endpoint, text string
	st                  *bus.State
	ts                  int64 // Unix milliseconds; 0: none
}

// encode returns the message's text frame and its header's length.
func (m *snapMsg) encode() ([]byte, uint8) {
	switch {
	case m.st != nil:
		return newWire(m.uid, m.st)
	case m.endpoint != "":
		return updateWire(m.uid, m.endpoint, m.text, m.ts)
	}
	f := mustFrame(nodeEventMsg{Type: typeOut, UID: m.uid, TS: m.ts}, "", true)
	return f.wire, f.hdr
}

// forget drops the nodes offline since before cutoff (browsers were told
// "out" when they left; from now on they are not in snapshots either) and
// returns how many it dropped.
func (x *index) forget(cutoff time.Time) int {
	kept := x.order[:0]
	for _, n := range x.order {
		if n.rec.st.State == bus.StateOffline && n.offlineAt.Before(cutoff) {
			delete(x.nodes, n.uid)
			continue
		}
		kept = append(kept, n)
	}
	dropped := len(x.order) - len(kept)
	clear(x.order[len(kept):]) // let the dropped entries go
	x.order = shrink.Slice(kept)
	x.nodes = shrink.Map(x.nodes, &x.peak)
	return dropped
}

// stats counts the known and online nodes.
func (x *index) stats() (known, online int) { return len(x.order), x.online }

// seed is what Pyaiot's gateways sent right after a node's "new" (its page
// lists them in the node's menu): "protocol", and the CoAP node's "ip" or
// the MQTT node's "id". goaiot's page gets them as fields of "new"
// instead.
type seed struct {
	uid string
	st  *bus.State // the index's, never changed
}

// newSeed returns the seed of node uid in state st; nil when st names no
// protocol.
func newSeed(uid string, st *bus.State) *seed {
	if st.Protocol == "" {
		return nil
	}
	return &seed{uid: uid, st: st}
}

// frames encodes the seed values; none for a nil seed.
func (s *seed) frames() []*frame {
	if s == nil {
		return nil
	}
	var out []*frame
	eachSeed(s.uid, s.st, func(endpoint, text string) {
		out = append(out, updateFrame(s.uid, endpoint, text, millis(s.st.Time), ""))
	})
	return out
}

// eachSeed calls fn with each seed value (endpoint, text) of node uid in
// state st, in the order Pyaiot sent them.
func eachSeed(uid string, st *bus.State, fn func(endpoint, text string)) {
	if st.Protocol == "" {
		return
	}
	fn("protocol", st.Protocol)
	switch st.Protocol {
	case bus.ProtocolCoAP:
		if host := addressHost(st.Address); host != "" {
			fn("ip", host)
		}
	case bus.ProtocolMQTT, bus.ProtocolMQTTSN:
		fn("id", uid)
	}
}

// addressHost is the host part of a host:port address, or the address.
func addressHost(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
