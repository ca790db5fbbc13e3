package sites_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/sites"
)

func heartbeat(t *testing.T, nc *nats.Conn, site string, nodes ...string) {
	t.Helper()
	data, err := json.Marshal(sites.Heartbeat{Site: site, Time: time.Now().UnixMilli(), Interval: 100, Nodes: nodes})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish(sites.SubjectHeartbeat(site), data); err != nil {
		t.Fatal(err)
	}
}

func state(t *testing.T, nc *nats.Conn, id, site, st string) {
	t.Helper()
	data, err := json.Marshal(bus.State{State: st, Protocol: "coap", Gateway: "coap@" + site, Site: site})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish(bus.NodeState(id), data); err != nil {
		t.Fatal(err)
	}
}

func nextCollision(t *testing.T, ch <-chan *nats.Msg) sites.Collision {
	t.Helper()
	m := next(t, ch, 10*time.Second)
	var c sites.Collision
	if err := json.Unmarshal(m.Data, &c); err != nil || c.Type != "collision" {
		t.Fatalf("collision message %s: %v", m.Data, err)
	}
	return c
}

// TestCollisionsReportedNotMerged: a node id online at two sites is
// reported (message, metric, list) as soon as the second site announces it,
// and reported over when one of them loses it.
func TestCollisionsReportedNotMerged(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	reg := prometheus.NewRegistry()
	mon, err := sites.NewMonitor(sites.MonitorConfig{Conn: nc, Logger: bustest.Logger(t), Registerer: reg, NoSources: true, Check: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	run(t, mon)
	coll := bustest.Subscribe(t, nc, sites.SubjectCollision)
	links := bustest.Subscribe(t, nc, sites.SubjectAllLinks)
	waitMonitor(t, nc)

	heartbeat(t, nc, "paris", "dup", "p1")
	heartbeat(t, nc, "lyon", "l1")
	expectLink(t, links, "paris", sites.LinkUp)
	expectLink(t, links, "lyon", sites.LinkUp)
	steps := []struct {
		name  string
		do    func()
		sites []string
	}{
		{"second site announces the id", func() { state(t, nc, "dup", "lyon", bus.StateOnline) }, []string{"lyon", "paris"}},
		{"third site too", func() { heartbeat(t, nc, "nice", "dup") }, []string{"lyon", "nice", "paris"}},
		{"one goes offline", func() { state(t, nc, "dup", "nice", bus.StateOffline) }, []string{"lyon", "paris"}},
		{"heartbeat without it ends it", func() { heartbeat(t, nc, "lyon", "l1") }, []string{"paris"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.do()
			c := nextCollision(t, coll)
			if c.UID != "dup" || !slices.Equal(c.Sites, st.sites) {
				t.Fatalf("collision %+v, want dup at %v", c, st.sites)
			}
			want := 0.0
			if len(st.sites) > 1 {
				want = 1
			}
			if g := gauge(t, reg, "aiot_site_id_collisions"); g != want {
				t.Fatalf("aiot_site_id_collisions = %v, want %v", g, want)
			}
			if _, ok := mon.Collisions()["dup"]; ok != (want == 1) {
				t.Fatalf("Collisions() = %v", mon.Collisions())
			}
		})
	}
	t.Run("a $state naming an unknown site makes no site", func(t *testing.T) {
		state(t, nc, "g1", "ghost", bus.StateOnline)
		state(t, nc, "l1", "paris", bus.StateOnline) // same subscription, after it
		if c := nextCollision(t, coll); c.UID != "l1" {
			t.Fatalf("collision %+v, want l1", c)
		}
		for _, s := range mon.Sites() {
			if s.Site == "ghost" {
				t.Fatal("a site was made by a $state")
			}
		}
		state(t, nc, "l1", "paris", bus.StateOffline)
		if c := nextCollision(t, coll); c.UID != "l1" || len(c.Sites) != 1 {
			t.Fatalf("collision %+v, want l1 over", c)
		}
	})
	t.Run("an id at one site only is no collision", func(t *testing.T) {
		if len(coll) != 0 || gauge(t, reg, "aiot_site_id_collisions_total") != 4 {
			t.Fatalf("%d more collision messages, %v found", len(coll), gauge(t, reg, "aiot_site_id_collisions_total"))
		}
	})
	t.Run("down after missed heartbeats, listed by aiot.sites", func(t *testing.T) {
		expectLink(t, links, "nice", sites.LinkDown)
		m, err := nc.Request(sites.SubjectList, nil, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var list struct {
			Sites []sites.SiteInfo `json:"sites"`
		}
		if err := json.Unmarshal(m.Data, &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Sites) != 3 || list.Sites[1].Site != "nice" || list.Sites[1].Link != sites.LinkDown {
			t.Fatalf("aiot.sites: %s", m.Data)
		}
	})
}

// waitMonitor waits until the monitor answers, so that its subscriptions
// exist.
func waitMonitor(t *testing.T, nc *nats.Conn) {
	t.Helper()
	bustest.Eventually(t, 10*time.Second, "monitor answers", func() error {
		_, err := nc.Request(sites.SubjectList, nil, 200*time.Millisecond)
		return bustest.Want(err == nil, "no answer")
	})
}

func TestBadHeartbeatsIgnored(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	reg := prometheus.NewRegistry()
	mon, err := sites.NewMonitor(sites.MonitorConfig{Conn: nc, Logger: bustest.Logger(t), Registerer: reg, NoSources: true})
	if err != nil {
		t.Fatal(err)
	}
	run(t, mon)
	waitMonitor(t, nc)
	bad := []struct {
		name, subject, payload string
	}{
		{"not json", "aiot.site.paris.heartbeat", "{"},
		{"another site's subject", "aiot.site.lyon.heartbeat", `{"site":"paris","ts":1,"interval_ms":100}`},
		{"no interval", "aiot.site.paris.heartbeat", `{"site":"paris","ts":1}`},
		{"hub's name", "aiot.site.hub.heartbeat", `{"site":"hub","ts":1,"interval_ms":100}`},
	}
	for _, b := range bad {
		if err := nc.Publish(b.subject, []byte(b.payload)); err != nil {
			t.Fatal(err)
		}
	}
	bustest.Eventually(t, 10*time.Second, "bad heartbeats counted", func() error {
		n := gauge(t, reg, "aiot_site_bad_heartbeats_total")
		return bustest.Want(n == float64(len(bad)), itoa(int(n)))
	})
	if s := mon.Sites(); len(s) != 0 {
		t.Fatalf("sites from bad heartbeats: %+v", s)
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"paris", true}, {"site-2_b", true}, {"", false}, {"a.b", false}, {"a b", false},
		{"*", false}, {"hub", false}, {"épinal", false}, {string(make([]byte, 65)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := sites.ValidateName(tt.name); (err == nil) != tt.ok {
				t.Fatalf("ValidateName(%q) = %v", tt.name, err)
			}
		})
	}
}

func TestAddSourceRefusesAStreamThatCapturesNodes(t *testing.T) {
	srv := bustest.StartServer(t) // an `aiot run` NODES stream: captures node.>
	js := jsOf(t, bustest.Connect(t, srv))
	if _, err := sites.AddSource(ctxT(t), js, "paris"); err == nil {
		t.Fatal("a site was sourced into a stream that also captures node.>: every value would be stored twice")
	}
	t.Run("EnsureHubStream turns it into a hub stream, keeping its sources", func(t *testing.T) {
		if _, err := sites.EnsureHubStream(ctxT(t), js, bus.DefaultStreamConfig(), "paris"); err != nil {
			t.Fatal(err)
		}
		if added, err := sites.AddSource(ctxT(t), js, "lyon"); err != nil || !added {
			t.Fatalf("add lyon: %v, %v", added, err)
		}
		if added, err := sites.AddSource(ctxT(t), js, "lyon"); err != nil || added {
			t.Fatalf("add lyon again: %v, %v", added, err)
		}
		st, err := sites.EnsureHubStream(ctxT(t), js, bus.DefaultStreamConfig())
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.CachedInfo().Config
		if got := sites.SourcedSites(cfg); !slices.Equal(got, []string{"lyon", "paris"}) || len(cfg.Subjects) != 0 || cfg.RePublish == nil {
			t.Fatalf("sources %v, subjects %v, republish %+v", got, cfg.Subjects, cfg.RePublish)
		}
	})
}

// TestRestartSourceResumesWhereItStopped: removing a site's source and
// adding it back neither skips nor repeats a value.
func TestRestartSourceResumesWhereItStopped(t *testing.T) {
	hub, hubNC := startHub(t)
	site, siteNC, _ := startSite(t, "paris", hub)
	waitLeaf(t, site, true)
	js := jsOf(t, hubNC)
	if _, err := sites.AddSource(ctxT(t), js, "paris"); err != nil {
		t.Fatal(err)
	}
	publishRange := func(from, to int) {
		t.Helper()
		for i := from; i <= to; i++ {
			if err := siteNC.Publish(bus.NodeValue("p1", "counter"), value(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := siteNC.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	waitHub := func(n int) []string {
		t.Helper()
		var got []string
		bustest.Eventually(t, 30*time.Second, "hub history", func() error {
			got = storedValues(t, js, "node.p1.counter")
			return bustest.Want(len(got) >= n, itoa(len(got)))
		})
		return got
	}
	publishRange(1, 30)
	waitHub(30)
	for range 2 {
		if err := sites.RestartSource(ctxT(t), js, "paris"); err != nil {
			t.Fatal(err)
		}
	}
	publishRange(31, 60)
	got := waitHub(60)
	assertOnce(t, got, 60)
	if err := sites.RestartSource(ctxT(t), js, "lyon"); err == nil {
		t.Fatal("restarted a source the stream does not have")
	}
}

// TestTwoSitesWithOneName: two processes heartbeating as the same site are
// reported (metric), once.
func TestTwoSitesWithOneName(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	reg := prometheus.NewRegistry()
	mon, err := sites.NewMonitor(sites.MonitorConfig{Conn: nc, Logger: bustest.Logger(t), Registerer: reg, NoSources: true})
	if err != nil {
		t.Fatal(err)
	}
	run(t, mon)
	waitMonitor(t, nc)
	beat := func(instance string) {
		t.Helper()
		data, _ := json.Marshal(sites.Heartbeat{Site: "paris", Time: time.Now().UnixMilli(), Interval: 60_000, Instance: instance})
		if _, err := nc.Request(sites.SubjectHeartbeat("paris"), data, 5*time.Second); err != nil {
			t.Fatal(err) // answered: the monitor took it
		}
	}
	beat("a")
	beat("a")
	if n := gauge(t, reg, "aiot_site_duplicate_names_total"); n != 0 {
		t.Fatalf("one process reported as two: %v", n)
	}
	beat("b")
	beat("a")
	beat("b")
	if n := gauge(t, reg, "aiot_site_duplicate_names_total"); n != 1 {
		t.Fatalf("aiot_site_duplicate_names_total = %v, want 1", n)
	}
}
