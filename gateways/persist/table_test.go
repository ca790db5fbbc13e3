package persist_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/persist"
)

const wait = 10 * time.Second

// entry is a test gateway's entry.
type entry struct {
	ID string `json:"id"`
	N  int    `json:"n"`
}

func decode(id string, b []byte) (entry, error) {
	var e entry
	if err := json.Unmarshal(b, &e); err != nil {
		return entry{}, err
	}
	if e.ID != id {
		return entry{}, fmt.Errorf("entry of %q under the key of %q", e.ID, id)
	}
	return e, nil
}

// nodes is the node table of a test gateway.
type nodes struct {
	mu sync.Mutex
	m  map[string]entry
}

func newNodes() *nodes { return &nodes{m: map[string]entry{}} }

func (n *nodes) set(id string, v int) {
	n.mu.Lock()
	n.m[id] = entry{ID: id, N: v}
	n.mu.Unlock()
}

func (n *nodes) del(id string) {
	n.mu.Lock()
	delete(n.m, id)
	n.mu.Unlock()
}

func (n *nodes) entries(ids []string) map[string]entry {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ids == nil {
		return maps.Clone(n.m)
	}
	out := map[string]entry{}
	for _, id := range ids {
		if e, ok := n.m[id]; ok {
			out[id] = e
		}
	}
	return out
}

// newTable makes the table of gateway gw over n; edit adjusts its config.
func newTable(t *testing.T, nc *nats.Conn, gw string, n *nodes, edit func(*persist.Config[entry])) *persist.Table[entry] {
	t.Helper()
	cfg := persist.Config[entry]{Conn: nc, Logger: bustest.Logger(t), Kind: "test", Gateway: gw,
		Entries: n.entries, Decode: decode, Delay: 20 * time.Millisecond}
	if edit != nil {
		edit(&cfg)
	}
	tb, err := persist.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func load(t *testing.T, tb *persist.Table[entry]) map[string]entry {
	t.Helper()
	got, err := tb.Load(t.Context())
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return got
}

// bucket is NODE_TABLES as an admin sees it.
func bucket(t *testing.T, nc *nats.Conn) jetstream.KeyValue {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	kv, err := bus.EnsureNodeTables(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// stored returns the bucket's keys and values.
func stored(t *testing.T, kv jetstream.KeyValue) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, e := range bustest.Entries(t, kv) {
		out[k] = string(e.Value())
	}
	return out
}

func equal(got map[string]string, want map[string]string) bool { return maps.Equal(got, want) }

func TestTableWritesAndRestores(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	kv := bucket(t, nc)
	n := newNodes()
	tb := newTable(t, nc, "gw@a", n, nil)
	if got := load(t, tb); len(got) != 0 {
		t.Fatalf("fresh bucket: loaded %v", got)
	}
	stop := bustest.Run(t, tb.Run)

	n.set("a", 1)
	n.set("b.2", 2)
	tb.Changed("a")
	tb.Changed("b.2")
	want := map[string]string{"test.gw=40a.a": `{"id":"a","n":1}`, "test.gw=40a.b=2E2": `{"id":"b.2","n":2}`}
	bustest.Eventually(t, wait, "both entries stored", func() error { return bustest.Want(equal(stored(t, kv), want)) })

	n.del("a")
	n.set("b.2", 3)
	tb.Changed("a")
	tb.Changed("b.2")
	want = map[string]string{"test.gw=40a.b=2E2": `{"id":"b.2","n":3}`}
	bustest.Eventually(t, wait, "a deleted, b.2 changed", func() error { return bustest.Want(equal(stored(t, kv), want)) })
	stop()

	t.Run("restored by the same gateway", func(t *testing.T) {
		got := load(t, newTable(t, nc, "gw@a", newNodes(), nil))
		if len(got) != 1 || got["b.2"] != (entry{ID: "b.2", N: 3}) {
			t.Fatalf("loaded %v", got)
		}
	})
	t.Run("not by another", func(t *testing.T) {
		if got := load(t, newTable(t, nc, "gw@b", newNodes(), nil)); len(got) != 0 {
			t.Fatalf("gw@b loaded %v", got)
		}
	})
	if st := tb.Stats(); !st.Enabled || st.Written != 3 || st.Deleted != 1 || st.Failed != 0 {
		t.Fatalf("stats %+v: want 3 written, 1 deleted, none failed", st)
	}
}

// TestTableSkipsBadEntries: whatever is under the gateway's prefix, Load
// restores the good entries and skips the rest with a log line.
func TestTableSkipsBadEntries(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	kv := bucket(t, nc)
	put := func(key, value string) {
		t.Helper()
		if _, err := kv.Put(t.Context(), key, []byte(value)); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	put("test.gw.good", `{"id":"good","n":1}`)
	put("test.gw.=ZZ", `{"id":"x","n":1}`)            // a key escape never makes
	put("test.gw.garbage", "\x00\xffnot json")        // corrupt
	put("test.gw.foreign", `{"id":"other","n":1}`)    // another id's entry
	put("test.gw.empty", ``)                          // empty
	put("test.other.good", `{"id":"good","n":2}`)     // another gateway's
	put("test.gw.huge", `{"id":"huge","n":1e999999}`) // does not decode
	tb := newTable(t, nc, "gw", newNodes(), nil)
	got := load(t, tb)
	if len(got) != 1 || got["good"].N != 1 {
		t.Fatalf("loaded %v, want only good", got)
	}
	if st := tb.Stats(); st.Loaded != 1 || st.Skipped != 5 {
		t.Fatalf("stats %+v: want 1 loaded, 5 skipped", st)
	}
}

func TestTableBounds(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	kv := bucket(t, nc)
	for i := range 5 {
		id := "n" + strconv.Itoa(i)
		if _, err := kv.Put(t.Context(), "test.gw."+id, fmt.Appendf(nil, `{"id":%q}`, id)); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("MaxEntries", func(t *testing.T) {
		tb := newTable(t, nc, "gw", newNodes(), func(c *persist.Config[entry]) { c.MaxEntries = 3 })
		if got := load(t, tb); len(got) != 3 {
			t.Fatalf("loaded %d entries, want 3", len(got))
		}
		if st := tb.Stats(); st.Skipped != 2 {
			t.Fatalf("stats %+v: want 2 skipped", st)
		}
	})
	t.Run("MaxPending", func(t *testing.T) {
		tb := newTable(t, nc, "gw", newNodes(), func(c *persist.Config[entry]) { c.MaxPending = 2 })
		load(t, tb) // not running: nothing is written
		for _, id := range []string{"a", "b", "a", "c", "d"} {
			tb.Changed(id)
		}
		if st := tb.Stats(); st.Pending != 2 || st.Dropped != 2 {
			t.Fatalf("stats %+v: want 2 pending, 2 dropped", st)
		}
	})
	t.Run("entry too large", func(t *testing.T) {
		huge := entry{ID: strings.Repeat("x", bus.NodeTablesMaxValue)}
		tb := newTable(t, nc, "gw", newNodes(), func(c *persist.Config[entry]) {
			c.Entries = func([]string) map[string]entry { return map[string]entry{"big": huge} }
		})
		load(t, tb)
		tb.Changed("big")
		if !tb.Flush(t.Context()) {
			t.Fatal("flush failed")
		}
		if st := tb.Stats(); st.TooLarge != 1 || st.Written != 0 || st.Failed != 0 {
			t.Fatalf("stats %+v: want 1 too large, nothing written or failed", st)
		}
	})
}

// TestTableFlushOnStop: changes made just before a gateway stops are
// written by its final Flush, however long Delay is.
func TestTableFlushOnStop(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	n := newNodes()
	tb := newTable(t, nc, "gw", n, func(c *persist.Config[entry]) { c.Delay = time.Hour })
	load(t, tb)
	stop := bustest.Run(t, tb.Run)
	n.set("late", 7)
	tb.Changed("late")
	stop()
	if !tb.Flush(t.Context()) {
		t.Fatal("flush failed")
	}
	if got := stored(t, bucket(t, nc)); got["test.gw.late"] != `{"id":"late","n":7}` {
		t.Fatalf("stored %v", got)
	}
}

// TestTableRefresh: live entries are written again every Refresh, so the
// bucket's TTL never drops them.
func TestTableRefresh(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	kv := bucket(t, nc)
	n := newNodes()
	tb := newTable(t, nc, "gw", n, func(c *persist.Config[entry]) { c.Refresh = 50 * time.Millisecond })
	load(t, tb)
	n.set("x", 1)
	tb.Changed("x")
	bustest.Run(t, tb.Run)
	revision := func() uint64 {
		e, err := kv.Get(t.Context(), "test.gw.x")
		if err != nil {
			return 0
		}
		return e.Revision()
	}
	bustest.Eventually(t, wait, "x stored", func() error { return bustest.Want(revision() > 0) })
	first := revision()
	bustest.Eventually(t, wait, "x written again", func() error { return bustest.Want(revision() > first) })
}

// TestTableRetriesAfterNATSRestart: writes that fail while NATS is down
// are written once it is back (same port, same data directory).
func TestTableRetriesAfterNATSRestart(t *testing.T) {
	dir, listen := t.TempDir(), freeAddr(t)
	at := func(c *bus.ServerConfig) { c.Listen = listen }
	srv := bustest.StartServer(t, bustest.WithDataDir(dir), at)
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	n := newNodes()
	tb := newTable(t, nc, "gw", n, func(c *persist.Config[entry]) { c.Timeout = 500 * time.Millisecond })
	load(t, tb)
	bustest.Run(t, tb.Run)

	srv.Shutdown()
	n.set("during", 1)
	tb.Changed("during")
	bustest.Eventually(t, wait, "a failed write", func() error { return bustest.Want(tb.Stats().Failed > 0) })
	srv = bustest.StartServer(t, bustest.WithDataDir(dir), at)
	kv := bucket(t, bustest.Connect(t, srv))
	bustest.Eventually(t, 2*wait, "the write done after the restart", func() error {
		return bustest.Want(stored(t, kv)["test.gw.during"] == `{"id":"during","n":1}`)
	})
}

// freeAddr is a free loopback TCP address, for a server started twice.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestTableRoles: the gateway role uses the bucket end to end; the other
// roles cannot, and a table without it stays off (not persisted).
func TestTableRoles(t *testing.T) {
	auth := &bus.Auth{}
	ids := map[bus.Role]*bus.Identity{}
	for _, r := range []bus.Role{bus.RoleGateway, bus.RoleDashboard, bus.RoleViewer} {
		id, err := bus.NewIdentity(r)
		if err != nil {
			t.Fatal(err)
		}
		ids[r] = id
		auth.Users = append(auth.Users, id.User(string(r)))
	}
	srv, err := bus.NewServer(bus.ServerConfig{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Auth: auth, Logger: bustest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	connect := func(r bus.Role) *nats.Conn {
		quiet := nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}) // refusals are expected
		nc, err := nats.Connect(srv.ClientURL(), ids[r].Option(), quiet)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}

	gw := connect(bus.RoleGateway)
	n := newNodes()
	tb := newTable(t, gw, "gw", n, nil)
	load(t, tb)
	stop := bustest.Run(t, tb.Run)
	n.set("a", 1)
	n.set("b", 2)
	tb.Changed("a")
	tb.Changed("b")
	bustest.Eventually(t, wait, "written as the gateway role", func() error { return bustest.Want(tb.Stats().Written == 2) })
	n.del("a")
	tb.Changed("a")
	bustest.Eventually(t, wait, "deleted as the gateway role", func() error { return bustest.Want(tb.Stats().Deleted == 1) })
	stop()
	if st := tb.Stats(); st.Failed != 0 {
		t.Fatalf("stats %+v: failures as the gateway role", st)
	}
	if got := load(t, newTable(t, gw, "gw", newNodes(), nil)); len(got) != 1 || got["b"].N != 2 {
		t.Fatalf("gateway role loaded %v", got)
	}

	for _, r := range []bus.Role{bus.RoleDashboard, bus.RoleViewer} {
		t.Run(string(r), func(t *testing.T) {
			tb := newTable(t, connect(r), "gw", newNodes(), func(c *persist.Config[entry]) { c.Timeout = 2 * time.Second })
			if got, err := tb.Load(t.Context()); err == nil {
				t.Fatalf("%s loaded %v", r, got)
			}
			tb.Changed("b")
			if st := tb.Stats(); st.Enabled || st.Pending != 0 {
				t.Fatalf("stats %+v: want off", st)
			}
		})
	}
}

func TestNilTable(t *testing.T) {
	var tb *persist.Table[entry]
	tb.Changed("x")
	if got, err := tb.Load(t.Context()); got != nil || err != nil {
		t.Fatalf("Load = %v, %v", got, err)
	}
	if !tb.Flush(t.Context()) || tb.Stats() != (persist.Stats{}) {
		t.Fatal("a nil table is not a quiet one")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := tb.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkTableFlush writes b.N changed entries to a real embedded
// server in one flush, as a gateway does after many nodes appeared at once.
func BenchmarkTableFlush(b *testing.B) {
	srv := bustest.StartServer(b)
	nc := bustest.Connect(b, srv)
	n := newNodes()
	tb, err := persist.New(persist.Config[entry]{Conn: nc, Logger: bustest.Quiet(), Kind: "bench", Gateway: "gw",
		Entries: n.entries, Decode: decode, MaxPending: b.N + 1})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tb.Load(b.Context()); err != nil {
		b.Fatal(err)
	}
	for i := range b.N {
		id := "n" + strconv.Itoa(i)
		n.set(id, i)
		tb.Changed(id)
	}
	b.ResetTimer()
	if !tb.Flush(b.Context()) {
		b.Fatal("flush failed")
	}
	b.StopTimer()
	if st := tb.Stats(); st.Written != int64(b.N) {
		b.Fatalf("stats %+v", st)
	}
}
