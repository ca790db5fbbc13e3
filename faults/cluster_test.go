package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

// clusterWait bounds one step of the cluster test: generous, for a loaded
// two-core machine that runs seven aiot processes and elections.
const clusterWait = 60 * time.Second

// hubCluster is three `aiot hub` processes that form one NATS cluster with
// the NODES stream on three replicas, the topology of compose.yaml's
// cluster profile.
type hubCluster struct {
	members []*proc
	urls    []string // NATS client URLs, by member
	leafs   []string // leaf node URLs, by member
}

func startHubCluster(t *testing.T, sites string) *hubCluster {
	t.Helper()
	h := &hubCluster{}
	var routes, clusterAddrs []string
	for range 3 {
		a := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		clusterAddrs = append(clusterAddrs, a)
		routes = append(routes, "nats-route://"+a)
	}
	for i := range 3 {
		nats, leaf := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
		h.urls = append(h.urls, "nats://"+nats)
		h.leafs = append(h.leafs, "nats-leaf://"+leaf)
		h.members = append(h.members, launch(t, fmt.Sprintf("hub%d", i), "hub",
			"--server-name", fmt.Sprintf("hub%d", i), "--cluster-listen", clusterAddrs[i], "--routes", strings.Join(routes, ","),
			"--replicas", "3", "--nats-listen", nats, "--leaf-listen", leaf, "--insecure-leafs", "--sites", sites,
			"--http", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--mqtt-listen", "", "--history", "100000",
			"--data", t.TempDir(), "--log-level", "warn"))
	}
	for _, m := range h.members { // started together: each waits for a quorum
		m.awaitReady(2 * clusterWait)
	}
	return h
}

func (h *hubCluster) member(name string) *proc {
	for _, m := range h.members {
		if m.name == name {
			return m
		}
	}
	return nil
}

// streamInfo asks the cluster for the NODES stream's info ($JS.API.STREAM.INFO):
// its leader, replicas and state.
func streamInfo(nc *nats.Conn) (*jetstream.StreamInfo, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	// Short: a request that reached the member just killed goes unanswered,
	// and the times to recover are measured by asking again.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := js.Stream(ctx, bus.NodesStream)
	if err != nil {
		return nil, err
	}
	return st.CachedInfo(), nil
}

// leader waits for a NODES stream leader other than not and returns it.
func leader(t *testing.T, nc *nats.Conn, not string) string {
	t.Helper()
	var l string
	bustest.Eventually(t, clusterWait, "a NODES stream leader other than "+not, func() error {
		info, err := streamInfo(nc)
		if err != nil {
			return err
		}
		if info.Cluster == nil {
			return fmt.Errorf("no cluster info")
		}
		l = info.Cluster.Leader
		return bustest.Want(l != "" && l != not, "leader", l)
	})
	return l
}

// caughtUp waits until member is a current replica of NODES with no lag.
func caughtUp(t *testing.T, nc *nats.Conn, member string) {
	t.Helper()
	bustest.Eventually(t, clusterWait, member+" a current replica", func() error {
		info, err := streamInfo(nc)
		if err != nil {
			return err
		}
		if info.Cluster != nil && info.Cluster.Leader == member {
			return nil
		}
		for _, r := range info.Cluster.Replicas {
			if r.Name == member {
				return bustest.Want(r.Current && r.Lag == 0 && !r.Offline, "current", r.Current, "lag", r.Lag, "offline", r.Offline)
			}
		}
		return fmt.Errorf("%s not among the replicas", member)
	})
}

// storedTotal is the number of messages NODES holds, 0 when unknown.
func storedTotal(nc *nats.Conn) uint64 {
	info, err := streamInfo(nc)
	if err != nil {
		return 0
	}
	return info.State.Msgs
}

// recovered waits until the hub stores new values again and returns when.
func recovered(t *testing.T, nc *nats.Conn, from uint64) time.Time {
	t.Helper()
	bustest.Eventually(t, clusterWait, "values stored again", func() error {
		n := storedTotal(nc)
		return bustest.Want(n > from, "stored", n, "was", from)
	})
	return time.Now()
}

// command sends led=1 to node through nc until a gateway answers ok.
func command(t *testing.T, nc *nats.Conn, node string) {
	t.Helper()
	bustest.Eventually(t, clusterWait, "command to "+node+" answered ok", func() error {
		m, err := nc.Request(bus.GatewaySet(node, "led"), []byte("1"), 5*time.Second)
		if err != nil {
			return err
		}
		r, err := bus.ParseReply(m.Data)
		if err != nil {
			return err
		}
		return bustest.Want(r.OK, "reply", string(m.Data))
	})
}

// roamingBrowser is a web app: it follows one dashboard's /ws and, when
// that dashboard is gone, reconnects to the next one.
type roamingBrowser struct {
	urls       []string
	updates    atomic.Int64
	reconnects atomic.Int64
}

func (b *roamingBrowser) run(ctx context.Context) error {
	for i := 0; ctx.Err() == nil; i++ {
		b.follow(ctx, b.urls[i%len(b.urls)])
		if ctx.Err() == nil {
			b.reconnects.Add(1)
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// follow reads one dashboard's frames until it goes away or ctx ends.
func (b *roamingBrowser) follow(ctx context.Context, url string) {
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"new","data":"client"}`)) != nil {
		return
	}
	for {
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second)) // values pause while the hub elects a stream leader
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		var m message
		if json.Unmarshal(data, &m) == nil && m.Type == "update" {
			b.updates.Add(1)
		}
	}
}

// receiving waits until b gets updates again.
func (b *roamingBrowser) receiving(t *testing.T, what string) {
	t.Helper()
	from := b.updates.Load()
	bustest.Eventually(t, clusterWait, what+" receives updates", func() error {
		return bustest.Want(b.updates.Load() > from+10, "updates", b.updates.Load()-from)
	})
}

// countingWSNode sends "1", "2", … as its resource count until stopped,
// reconnecting if the gateway drops it; sent counts what was written.
type countingWSNode struct {
	url  string
	sent atomic.Int64
}

func (n *countingWSNode) run(ctx context.Context) error {
	for ctx.Err() == nil {
		conn, _, err := websocket.DefaultDialer.DialContext(ctx, n.url, nil)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go func() { // discover requests and pings; answer nothing
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					return
				}
			}
		}()
		n.send(ctx, conn)
		conn.Close()
	}
	return nil
}

func (n *countingWSNode) send(ctx context.Context, conn *websocket.Conn) {
	tick := time.NewTicker(25 * time.Millisecond) // within the gateway's 50 frames/s per node
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		next := n.sent.Load() + 1
		frame := fmt.Sprintf(`{"type":"update","data":{"count":"%d"}}`, next)
		if conn.WriteMessage(websocket.TextMessage, []byte(frame)) != nil {
			return
		}
		n.sent.Store(next)
	}
}

// siteTally is what one site stored and what the hub stored of it.
type siteTally struct {
	stored  uint64 // the site's NODES last sequence when counted
	copies  map[uint64]int
	missing int
	doubled int
}

// tally reads every message of the hub's NODES and counts, per site, the
// copies of each of the site's sequences (the Nats-Stream-Source header).
// Its errors are worth trying again (a member just restarted).
func tally(hub *nats.Conn, siteStored map[string]uint64) (map[string]*siteTally, error) {
	out := map[string]*siteTally{}
	for s, n := range siteStored {
		out[s] = &siteTally{stored: n, copies: map[uint64]int{}}
	}
	info, err := streamInfo(hub)
	if err != nil {
		return nil, err
	}
	copies, siteOf, err := readSources(hub, info.State.Msgs, out)
	if err != nil {
		return nil, err
	}
	for src, c := range copies {
		st := out[siteOf[src]]
		if st == nil {
			return nil, fmt.Errorf("source %s: no node of a known site", src)
		}
		st.copies = c
	}
	for _, st := range out {
		st.count()
	}
	return out, nil
}

// readSources reads total messages of the hub's NODES: the copies of each
// source sequence by source (its index name in the header), and the site
// of each source, from its node ids (<site>-…).
func readSources(hub *nats.Conn, total uint64, sites map[string]*siteTally) (map[string]map[uint64]int, map[string]string, error) {
	js, err := jetstream.New(hub)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, bus.NodesStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, nil, err
	}
	copies, siteOf := map[string]map[uint64]int{}, map[string]string{}
	for read := uint64(0); read < total; {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, nil, err
		}
		for m := range batch.Messages() {
			read++
			f := strings.Fields(m.Headers().Get("Nats-Stream-Source"))
			if len(f) < 2 {
				return nil, nil, fmt.Errorf("stored message on %s not sourced from a site", m.Subject())
			}
			seq, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return nil, nil, fmt.Errorf("source header %q: %w", f, err)
			}
			if copies[f[0]] == nil {
				copies[f[0]] = map[uint64]int{}
			}
			copies[f[0]][seq]++
			if site, _, ok := strings.Cut(strings.TrimPrefix(m.Subject(), "node."), "-"); ok && sites[site] != nil {
				siteOf[f[0]] = site
			}
		}
		if batch.Error() != nil {
			return nil, nil, batch.Error()
		}
	}
	return copies, siteOf, nil
}

// count finds the site's sequences up to stored missing at the hub, and
// every extra copy of any sequence.
func (st *siteTally) count() {
	for seq := uint64(1); seq <= st.stored; seq++ {
		if st.copies[seq] == 0 {
			st.missing++
		}
	}
	for _, c := range st.copies {
		if c > 1 {
			st.doubled += c - 1
		}
	}
}

// inOrder reads subject's stored values and checks they are "1"…"n", each
// once, in order.
func inOrder(nc *nats.Conn, subject string, n int) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, bus.NodesStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return err
	}
	var got []string
	for len(got) < n {
		batch, err := cons.Fetch(n-len(got), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return err
		}
		before := len(got)
		for m := range batch.Messages() {
			v, err := bus.ParseValue(m.Data())
			if err != nil {
				return fmt.Errorf("stored value %q: %w", m.Data(), err)
			}
			got = append(got, v.Text())
		}
		if len(got) == before {
			break // nothing more stored
		}
	}
	if len(got) != n {
		return fmt.Errorf("%d values stored, want %d", len(got), n)
	}
	for i, v := range got {
		if v != strconv.Itoa(i+1) {
			return fmt.Errorf("value %d is %q, want %d", i, v, i+1)
		}
	}
	return nil
}

// siteLastSeq is the last sequence of a site's own NODES stream.
func siteLastSeq(t *testing.T, site *proc) uint64 {
	t.Helper()
	nc, err := nats.Connect("nats://" + site.addr("nats"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var last uint64
	bustest.Eventually(t, clusterWait, site.name+"'s stream info", func() error {
		info, err := streamInfo(nc)
		if err == nil {
			last = info.State.LastSeq
		}
		return err
	})
	return last
}

// TestClusterMemberLoss is the three-member hub of compose.yaml's cluster
// profile under faults: three `aiot hub` members (one NATS cluster, NODES
// on three replicas), two sites as leaf nodes of the cluster running
// gateways of every protocol with simulated nodes, two `aiot dashboard`
// processes with a browser each. It kills (SIGKILL) the NODES stream
// leader, later another member and a dashboard, and starts them again;
// meanwhile browsers keep receiving (the one whose dashboard died moves to
// the other), commands keep working, each killed member catches up, and in
// the end every value each site stored is stored exactly once at the hub:
// none lost, none doubled. AIOT_CLUSTER_LONG=1 repeats the kills for a
// longer run.
func TestClusterMemberLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("seven aiot processes: not with -short")
	}
	began := time.Now()
	hubs := startHubCluster(t, "s1,s2")
	allHubs := strings.Join(hubs.urls, ",")
	var sites []*proc
	for i, name := range []string{"s1", "s2"} {
		sites = append(sites, launch(t, name, "site", "--site", name, "--hub", strings.Join(hubs.leafs, ","),
			"--heartbeat", "300ms", "--demo", "--sim-prefix", name, "--sim-interval", "300ms",
			"--coap-nodes", "2", "--mqtt-nodes", "2", "--mqttsn-nodes", "2", "--ws-nodes", "1",
			"--sim-coap-from", nodeIP(40+10*i), "--history", "100000",
			"--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0",
			"--coap-listen", "127.0.0.1:0", "--mqttsn-listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn"))
	}
	var dashURLs []string
	var dashboards []*proc
	for i := range 2 {
		http := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		dashURLs = append(dashURLs, "ws://"+http+"/ws")
		dashboards = append(dashboards, launch(t, fmt.Sprintf("dash%d", i), "dashboard", "--nats", allHubs, "--http", http, "--log-level", "warn"))
	}
	for _, p := range append(sites, dashboards...) {
		p.awaitReady(clusterWait)
	}
	hub, err := bus.Connect(bus.ConnectConfig{Name: "observer", URL: allHubs, Logger: bustest.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Close)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	counter := &countingWSNode{url: "ws://" + sites[0].addr("http") + "/node?id=s1-count"}
	var wg sync.WaitGroup
	wg.Go(func() { _ = counter.run(ctx) })
	browsers := []*roamingBrowser{{urls: dashURLs}, {urls: []string{dashURLs[1], dashURLs[0]}}}
	for _, b := range browsers {
		wg.Go(func() { _ = b.run(ctx) })
	}
	for i, b := range browsers {
		b.receiving(t, fmt.Sprintf("browser %d", i))
	}
	command(t, hub, "s1-coap-1")
	command(t, hub, "s2-mqttsn-1")
	setup := time.Since(began)

	rounds := 1
	if os.Getenv("AIOT_CLUSTER_LONG") != "" {
		rounds = 5
	}
	var recoveries, elections []time.Duration
	kill := func(victim *proc, why string) {
		t.Helper()
		before := storedTotal(hub)
		killed := time.Now()
		victim.kill()
		leader(t, hub, victim.name)
		elected := time.Since(killed)
		took := recovered(t, hub, before).Sub(killed)
		recoveries = append(recoveries, took)
		elections = append(elections, elected)
		for i, b := range browsers {
			b.receiving(t, fmt.Sprintf("browser %d", i))
		}
		command(t, hub, "s1-mqtt-1")
		command(t, hub, "s2-ws-1")
		t.Logf("%s %s killed: a stream leader %s later, values stored again %s later; browsers receive, commands answered",
			why, victim.name, elected.Round(time.Millisecond), took.Round(time.Millisecond))
	}
	for round := range rounds {
		first := hubs.member(leader(t, hub, ""))
		kill(first, "NODES stream leader")
		first.restart(clusterWait)
		caughtUp(t, hub, first.name)

		second := hubs.member(leader(t, hub, ""))
		if second == first {
			second = hubs.members[(slicesIndex(hubs.members, first)+1)%3]
		}
		dash := dashboards[round%2]
		dash.kill() // its browser moves to the other dashboard
		kill(second, "another member,")
		dash.restart(clusterWait)
		second.restart(clusterWait)
		caughtUp(t, hub, second.name)
	}

	cancel() // the counting node stops: every value it sent is now in flight or stored
	wg.Wait()
	sent := counter.sent.Load()
	siteStored := map[string]uint64{}
	for _, s := range sites {
		siteStored[s.name] = siteLastSeq(t, s)
	}
	var tallies map[string]*siteTally
	bustest.Eventually(t, clusterWait, "the hub has every value the sites stored", func() error {
		var err error
		if tallies, err = tally(hub, siteStored); err != nil {
			return err
		}
		for name, st := range tallies {
			if st.missing > 0 {
				return fmt.Errorf("site %s: %d of %d missing", name, st.missing, st.stored)
			}
		}
		return nil
	})
	var storedAll uint64
	for name, st := range tallies {
		storedAll += st.stored
		if st.doubled > 0 {
			t.Errorf("site %s: stored %d, at the hub %d doubled", name, st.stored, st.doubled)
		}
	}
	t.Run("every value of the counting node once, in order", func(t *testing.T) {
		bustest.Eventually(t, clusterWait, "the counting node's values read", func() error {
			return inOrder(hub, bus.NodeValue("s1-count", "count"), int(sent))
		})
	})
	for _, m := range hubs.members {
		caughtUp(t, hub, m.name)
	}
	t.Logf("cluster: %d values stored at the sites (%d by the counting ws node), every one stored once at the hub: 0 lost, 0 doubled; "+
		"%d member kills: a stream leader after %v, values stored again after %v; browsers reconnected %d and %d times; setup %s, total %s",
		storedAll, sent, len(recoveries), roundAll(elections), roundAll(recoveries), browsers[0].reconnects.Load(), browsers[1].reconnects.Load(),
		setup.Round(time.Second), time.Since(began).Round(time.Second))
}

func slicesIndex(ps []*proc, p *proc) int {
	for i, q := range ps {
		if q == p {
			return i
		}
	}
	return -1
}

func roundAll(ds []time.Duration) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Round(time.Millisecond).String())
	}
	return out
}
