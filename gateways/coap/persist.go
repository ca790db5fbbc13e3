package coap

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/gateways/persist"
)

// persistKind is the first token of the CoAP gateway's keys in NODE_TABLES.
const persistKind = "coap"

// entryVersion is the version of nodeEntry written; others are skipped.
const entryVersion = 1

// nodeEntry is what NODE_TABLES keeps of one CoAP node: where its last
// /alive came from, so that its values are matched to it after a restart.
type nodeEntry struct {
	V     int       `json:"v"`
	UID   string    `json:"uid"`
	From  string    `json:"from"`           // source ip:port of its /alive
	To    string    `json:"to,omitempty"`   // gateway address it was sent to (wildcard listener)
	DTLS  bool      `json:"dtls,omitempty"` // known over DTLS
	Since time.Time `json:"since"`          // when this incarnation began
}

// decodeEntry parses a stored entry of node uid and checks it as input
// from the network is checked.
func decodeEntry(uid string, data []byte) (nodeEntry, error) {
	var e nodeEntry
	if err := json.Unmarshal(data, &e); err != nil {
		return nodeEntry{}, fmt.Errorf("coap entry: %w", err)
	}
	switch {
	case e.V != entryVersion:
		return nodeEntry{}, fmt.Errorf("coap entry: version %d, want %d", e.V, entryVersion)
	case e.UID != uid:
		return nodeEntry{}, fmt.Errorf("coap entry: of node %q under the key of %q", e.UID, uid)
	}
	if err := bus.ValidateNodeID(e.UID); err != nil {
		return nodeEntry{}, fmt.Errorf("coap entry: %w", err)
	}
	if _, err := entrySource(e.From); err != nil {
		return nodeEntry{}, err
	}
	if e.To != "" && net.ParseIP(e.To) == nil {
		return nodeEntry{}, fmt.Errorf("coap entry: gateway address %q: not an IP address", e.To)
	}
	return e, nil
}

// entrySource parses an entry's source address.
func entrySource(from string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(from)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("coap entry: source: %w", err)
	}
	if ap.Port() == 0 || ap.Addr().IsUnspecified() {
		return netip.AddrPort{}, fmt.Errorf("coap entry: source %s: no address or port", ap)
	}
	return ap, nil
}

// entry is what NODE_TABLES keeps of n. g.mu held.
func (n *node) entry() nodeEntry {
	e := nodeEntry{V: entryVersion, UID: n.uid, From: n.src.from.String(), DTLS: n.src.secure, Since: n.since.UTC()}
	if n.src.to != nil {
		e.To = n.src.to.String()
	}
	return e
}

func (g *Gateway) newTable() (*persist.Table[nodeEntry], error) {
	return persist.New(persist.Config[nodeEntry]{ // caps: the node cap (persist's default when unset)
		Conn: g.cfg.Conn, Logger: g.log, Kind: persistKind, Gateway: g.cfg.Gateway,
		Entries: g.entries, Decode: decodeEntry, Delay: g.cfg.PersistDelay,
		MaxEntries: g.cfg.MaxNodes, MaxPending: g.cfg.MaxNodes,
	})
}

// entries returns the entries of the nodes ids (all when ids is nil).
func (g *Gateway) entries(ids []string) map[string]nodeEntry {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ids == nil {
		ids = slices.Collect(maps.Keys(g.nodes))
	}
	out := make(map[string]nodeEntry, len(ids))
	for _, uid := range ids {
		if n := g.nodes[uid]; n != nil {
			out[uid] = n.entry()
		}
	}
	return out
}

// restore loads the node table and makes its nodes known (not online:
// each goes online through the tracker when it next speaks). It returns
// how many it restored. Without the bucket the gateway runs unpersisted.
func (g *Gateway) restore(ctx context.Context) int {
	if g.table == nil {
		return 0
	}
	stored, err := g.table.Load(ctx)
	if err != nil {
		g.log.Error("node table not persisted: a restart will forget the nodes until their next beacon", "err", err)
		return 0
	}
	// The newest incarnation wins a source two entries name.
	list := slices.SortedFunc(maps.Values(stored), func(a, b nodeEntry) int { return cmp.Compare(a.Since.UnixNano(), b.Since.UnixNano()) })
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, e := range list {
		from, _ := entrySource(e.From) // checked by decodeEntry
		src := g.sourceAt(from, e.DTLS)
		if e.To != "" {
			src.to = net.ParseIP(e.To)
		}
		g.nodes[e.UID] = &node{uid: e.UID, src: src, addr: g.nodeAddr(src), since: e.Since, restored: true}
		g.bySource[src.key] = e.UID
	}
	if len(list) > 0 {
		g.log.Info("nodes restored from the node table: online when they next speak", "nodes", len(list))
	}
	return len(list)
}

// forgetSilentRestored forgets, one node timeout after the start, the
// restored nodes that did not speak since (the others are the tracker's
// now, and time out as usual).
func (g *Gateway) forgetSilentRestored(ctx context.Context) {
	t := time.NewTimer(g.cfg.NodeTimeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	forgotten := 0
	for uid, n := range g.nodes {
		if !n.restored {
			continue
		}
		n.restored = false
		if _, seen := g.tracker.Lookup(uid); !seen {
			g.dropLocked(uid)
			forgotten++
		}
	}
	if forgotten > 0 {
		g.log.Info("restored nodes silent since the start: forgotten", "nodes", forgotten, "after", g.cfg.NodeTimeout)
	}
}

// flushTable writes the table's pending changes once the gateway stopped.
func (g *Gateway) flushTable() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !g.table.Flush(ctx) {
		g.log.Warn("node table: changes not written before stopping (bucket unreachable)")
	}
}
