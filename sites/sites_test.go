package sites_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/sites"
)

// TestOutageLosesNothingAndStoresOnce is the core promise: values published
// at a site while its link is cut reach the hub's history afterwards, and
// every value is stored exactly once although node.> also crosses the leaf
// connection live.
func TestOutageLosesNothingAndStoresOnce(t *testing.T) {
	tests := []struct {
		name string
		hold time.Duration // how long the link stays cut after the outage's values
	}{
		{"short outage", 0},
		// Past 10 s the site deletes the hub's source consumer (its
		// inactivity threshold): the hub must create it again where it
		// stopped.
		{"outage longer than the source consumer lives", 12 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if testing.Short() && tt.hold > 0 {
				t.Skip("long outage in -short mode")
			}
			testOutage(t, tt.hold)
		})
	}
}

func testOutage(t *testing.T, hold time.Duration) {
	hub, hubNC := startHub(t)
	reg := prometheus.NewRegistry()
	mon := newMonitor(t, hubNC, reg)
	run(t, mon)
	paris, parisNC, link := startSite(t, "paris", hub)
	lyon, lyonNC, _ := startSite(t, "lyon", hub)
	beacons := map[string]*sites.Beacon{}
	for name, nc := range map[string]*nats.Conn{"paris": parisNC, "lyon": lyonNC} {
		b, err := sites.NewBeacon(sites.BeaconConfig{Conn: nc, Logger: bustest.Logger(t), Site: name, Interval: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		run(t, b)
		beacons[name] = b
	}
	linked := func(name string, want bool) {
		t.Helper()
		bustest.Eventually(t, 20*time.Second, name+" beacon linked", func() error {
			return bustest.Want(beacons[name].Linked() == want, fmt.Sprint(beacons[name].Linked()))
		})
	}
	waitLeaf(t, paris, true)
	waitLeaf(t, lyon, true)
	links := bustest.Subscribe(t, hubNC, sites.SubjectAllLinks)
	live := bustest.Subscribe(t, hubNC, "node.*.counter")
	waitSourced(t, mon, "paris", "lyon")

	const before, during, after = 20, 30, 20
	var sent atomic.Int64
	publish := func(nc *nats.Conn, id string, n int) {
		t.Helper()
		for range n {
			i := int(sent.Add(1))
			if err := nc.Publish(bus.NodeValue(id, "counter"), value(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	publish(parisNC, "paris-1", before)
	publish(lyonNC, "lyon-1", before)
	liveSeen := map[string]int{}
	t.Run("live values reach the hub once", func(t *testing.T) {
		for range 2 * before {
			m := next(t, live, 10*time.Second)
			liveSeen[m.Subject]++
		}
		want := map[string]int{"node.paris-1.counter": before, "node.lyon-1.counter": before}
		if fmt.Sprint(liveSeen) != fmt.Sprint(want) {
			t.Fatalf("live on the hub: %v, want %v", liveSeen, want)
		}
	})

	t.Run("a command from the hub reaches a site and its reply comes back", func(t *testing.T) {
		sub, err := parisNC.Subscribe(bus.GatewaySetAll("paris-1"), func(m *nats.Msg) { _ = m.Respond([]byte(`{"ok":true}`)) })
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		if err := parisNC.Flush(); err != nil {
			t.Fatal(err)
		}
		var reply *nats.Msg
		bustest.Eventually(t, 10*time.Second, "reply", func() error {
			reply, err = hubNC.Request(bus.GatewaySet("paris-1", "led"), []byte("1"), time.Second)
			return bustest.Want(err == nil, fmt.Sprint(err))
		})
		if string(reply.Data) != `{"ok":true}` {
			t.Fatalf("reply %s", reply.Data)
		}
	})

	link.Cut()
	waitLeaf(t, paris, false)
	expectLink(t, links, "paris", sites.LinkDown)
	linked("paris", false)              // the site knows too
	publish(parisNC, "paris-1", during) // the site goes on storing locally
	publish(lyonNC, "lyon-1", during)   // the other site is not affected
	time.Sleep(hold)                    // the outage lasts (not an assertion)
	link.Restore()
	waitLeaf(t, paris, true)
	expectLink(t, links, "paris", sites.LinkUp)
	linked("paris", true)
	publish(parisNC, "paris-1", after)

	hubJS := jsOf(t, hubNC)
	for _, tt := range []struct {
		name, subject string
		want          int
	}{
		{"site with an outage", "node.paris-1.counter", before + during + after},
		{"site without", "node.lyon-1.counter", before + during},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			bustest.Eventually(t, 60*time.Second, "hub history of "+tt.subject, func() error {
				got = storedValues(t, hubJS, tt.subject)
				return bustest.Want(len(got) >= tt.want, fmt.Sprintf("%d of %d values", len(got), tt.want))
			})
			assertOnce(t, got, tt.want)
		})
	}
	t.Run("live subscribers on the hub got every value once, the outage's too", func(t *testing.T) {
		want := map[string]int{"node.paris-1.counter": before + during + after, "node.lyon-1.counter": before + during}
		for liveSeen["node.paris-1.counter"]+liveSeen["node.lyon-1.counter"] < 2*before+2*during+after {
			m := next(t, live, 10*time.Second)
			liveSeen[m.Subject]++
		}
		if fmt.Sprint(liveSeen) != fmt.Sprint(want) || len(live) > 0 {
			t.Fatalf("live on the hub: %v (+%d more), want %v", liveSeen, len(live), want)
		}
	})
	t.Run("hub stream has no subjects of its own", func(t *testing.T) {
		st, err := hubJS.Stream(ctxT(t), bus.NodesStream)
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.CachedInfo().Config
		if len(cfg.Subjects) != 0 || !slices.Equal(sites.SourcedSites(cfg), []string{"lyon", "paris"}) {
			t.Fatalf("subjects %v, sources %v", cfg.Subjects, sites.SourcedSites(cfg))
		}
	})
	t.Run("metrics", func(t *testing.T) {
		if n := gauge(t, reg, "aiot_sites"); n != 2 {
			t.Errorf("aiot_sites = %v, want 2", n)
		}
	})
}

// assertOnce checks that values holds each distinct value exactly once and
// that there are want of them.
func assertOnce(t *testing.T, values []string, want int) {
	t.Helper()
	seen := map[string]int{}
	for _, v := range values {
		seen[v]++
	}
	var dups []string
	for v, n := range seen {
		if n > 1 {
			dups = append(dups, v+"×"+strconv.Itoa(n))
		}
	}
	if len(dups) > 0 || len(values) != want {
		t.Fatalf("%d values stored (%d distinct), want %d, each once; duplicated: %v", len(values), len(seen), want, dups)
	}
}

func newMonitor(t *testing.T, nc *nats.Conn, reg prometheus.Registerer) *sites.Monitor {
	t.Helper()
	m, err := sites.NewMonitor(sites.MonitorConfig{Conn: nc, Logger: bustest.Logger(t), Registerer: reg, Check: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func waitSourced(t *testing.T, mon *sites.Monitor, names ...string) {
	t.Helper()
	bustest.Eventually(t, 20*time.Second, "sites sourced", func() error {
		var got []string
		for _, s := range mon.Sites() {
			if s.Sourced {
				got = append(got, s.Site)
			}
		}
		slices.Sort(got)
		slices.Sort(names)
		return bustest.Want(slices.Equal(got, names), fmt.Sprint(got))
	})
}

func expectLink(t *testing.T, ch <-chan *nats.Msg, site, state string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		m := next(t, ch, time.Until(deadline))
		var l sites.Link
		if err := json.Unmarshal(m.Data, &l); err != nil {
			t.Fatalf("link %s: %v", m.Data, err)
		}
		if l.Type != "site" || m.Subject != sites.SubjectLink(l.Site) {
			t.Fatalf("link message %s on %s", m.Data, m.Subject)
		}
		if l.Site == site && l.Link == state {
			return
		}
	}
	t.Fatalf("no link %s for site %s", state, site)
}

// gauge is the sum of a metric's values in reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return sum
}
