package dashboard

import (
	"net"
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

// index is what the dashboard knows of every node: its presence, its last
// values and their encoded frames. A browser's snapshot is read from it, so
// that a new browser costs no round trip to JetStream. It is not safe for
// concurrent use: the hub guards it.
type index struct {
	nodes  map[string]*nodeEntry
	order  []*nodeEntry // in order of appearance, for stable snapshots
	peak   shrink.Peak  // of nodes (see forget)
	online int
}

type nodeEntry struct {
	uid       string
	state     bus.State
	newFrame  *frame // "new" with the current state
	outFrame  *frame // "out", when offline
	offlineAt time.Time
	// values are the node's last values, in order of appearance: a slice,
	// not a map, for a node has few resources (a map of two costs about
	// 250 bytes, 25 MB at 100 000 nodes) and a scan of them is as fast.
	values []*valueEntry
}

type valueEntry struct {
	endpoint string
	text     string
	ts       time.Time
	frame    *frame
}

// value returns the entry of endpoint, or nil.
func (n *nodeEntry) value(endpoint string) *valueEntry {
	for _, v := range n.values {
		if v.endpoint == endpoint {
			return v
		}
	}
	return nil
}

func newIndex() *index {
	return &index{nodes: make(map[string]*nodeEntry)}
}

// apply records ev and returns the frames every subscribed browser must get,
// in order.
func (x *index) apply(ev event) []*frame {
	n, isNew := x.node(ev)
	var out []*frame
	if isNew {
		out = append(out, n.newFrame)
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
	n := &nodeEntry{uid: ev.uid}
	x.nodes[ev.uid] = n
	x.order = append(x.order, n)
	x.setState(n, st)
	return n, true
}

func (x *index) applyState(n *nodeEntry, isNew bool, ev event) []*frame {
	prev := n.state
	if isNew {
		if ev.state.State == bus.StateOffline {
			return []*frame{n.outFrame}
		}
		return nil
	}
	if sameInfo(prev, ev.state) && prev.Time.Equal(ev.state.Time) {
		return nil // the same message again (a resync reads what was live)
	}
	x.setState(n, ev.state)
	switch ev.state.State {
	case bus.StateOffline:
		if prev.State == bus.StateOffline {
			return nil
		}
		return []*frame{n.outFrame}
	case bus.StateReset:
		clear(n.values) // let the entries go
		n.values = n.values[:0]
		if prev.State == bus.StateOffline {
			return []*frame{n.newFrame} // its card is gone: show it again
		}
		f := mustFrame(nodeEventMsg{Type: typeReset, UID: n.uid, TS: millis(ev.ts)}, "", true)
		f.seed = n.newFrame.seed // Pyaiot re-seeds a node that rebooted
		return []*frame{f}
	}
	if sameInfo(prev, ev.state) {
		return nil // a repeated online, e.g. on a resync
	}
	return []*frame{n.newFrame}
}

// sameInfo reports whether a and b would show the same in a "new".
func sameInfo(a, b bus.State) bool {
	return a.State == b.State && a.Protocol == b.Protocol && a.Gateway == b.Gateway &&
		a.Site == b.Site && a.Address == b.Address
}

func (x *index) setState(n *nodeEntry, st bus.State) {
	was := n.state.State
	n.state = st
	if (was == "" || was == bus.StateOffline) && st.State != bus.StateOffline {
		x.online++
	} else if was != "" && was != bus.StateOffline && st.State == bus.StateOffline {
		x.online--
	}
	n.newFrame = mustFrame(newMsg{
		Type: typeNew, UID: n.uid, Site: st.Site, Gateway: st.Gateway, Protocol: st.Protocol,
		Address: st.Address, State: st.State, TS: millis(st.Time),
	}, "", true)
	n.newFrame.seed = newSeed(n.uid, st)
	n.outFrame = nil
	if st.State == bus.StateOffline {
		n.outFrame = mustFrame(nodeEventMsg{Type: typeOut, UID: n.uid, TS: millis(st.Time)}, "", true)
		if was != bus.StateOffline || n.offlineAt.IsZero() {
			n.offlineAt = st.Time
			if n.offlineAt.IsZero() {
				n.offlineAt = time.Now()
			}
		}
	}
}

// applyValue records a value and returns its "update", or nil when it is
// the value already recorded (the same message read again).
func (x *index) applyValue(n *nodeEntry, ev event) *frame {
	v := n.value(ev.endpoint)
	if v == nil {
		v = &valueEntry{endpoint: ev.endpoint}
		n.values = append(n.values, v)
	} else if v.text == ev.value && v.ts.Equal(ev.ts) {
		return nil // the same message again
	}
	key := ev.uid + "\x00" + ev.endpoint
	if v.frame != nil {
		key = v.frame.key // share the key string
	}
	v.text, v.ts = ev.value, ev.ts
	v.frame = updateFrame(ev.uid, ev.endpoint, ev.value, millis(ev.ts), key)
	return v.frame
}

// snapshot is every node as a browser must learn it: "new", its values,
// then "out" if it is offline; then "synced". Pyaiot's page (withOffline
// false) never shows offline nodes: they are left out.
func (x *index) snapshot(withOffline bool) []*frame {
	out := make([]*frame, 0, len(x.order)*4+1)
	for _, n := range x.order {
		if !withOffline && n.outFrame != nil {
			continue
		}
		out = append(out, n.newFrame)
		for _, v := range n.values {
			out = append(out, v.frame)
		}
		if n.outFrame != nil {
			out = append(out, n.outFrame)
		}
	}
	return append(out, mustFrame(syncedMsg{Type: typeSynced, Nodes: len(x.order)}, "", false))
}

// forget drops the nodes offline since before cutoff (browsers were told
// "out" when they left; from now on they are not in snapshots either) and
// returns how many it dropped.
func (x *index) forget(cutoff time.Time) int {
	kept := x.order[:0]
	for _, n := range x.order {
		if n.state.State == bus.StateOffline && n.offlineAt.Before(cutoff) {
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
// instead. Its strings share the node's state's memory.
type seed struct {
	uid, protocol, host string
	ts                  int64
}

// newSeed returns the seed of node uid in state st; nil when st names no
// protocol.
func newSeed(uid string, st bus.State) *seed {
	if st.Protocol == "" {
		return nil
	}
	s := &seed{uid: uid, protocol: st.Protocol, ts: millis(st.Time)}
	if st.Protocol == bus.ProtocolCoAP {
		s.host = addressHost(st.Address)
	}
	return s
}

// frames encodes the seed values; none for a nil seed.
func (s *seed) frames() []*frame {
	if s == nil {
		return nil
	}
	out := []*frame{updateFrame(s.uid, "protocol", s.protocol, s.ts, "")}
	switch s.protocol {
	case bus.ProtocolCoAP:
		if s.host != "" {
			out = append(out, updateFrame(s.uid, "ip", s.host, s.ts, ""))
		}
	case bus.ProtocolMQTT, bus.ProtocolMQTTSN:
		out = append(out, updateFrame(s.uid, "id", s.uid, s.ts, ""))
	}
	return out
}

// addressHost is the host part of a host:port address, or the address.
func addressHost(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
