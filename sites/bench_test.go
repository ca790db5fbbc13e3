package sites_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/sites"
)

// BenchmarkCatchUp measures how fast the hub (its stream and the sites
// Monitor) takes in what a site stored while its link was down: b.N values
// are published at the site while the link is cut; the time runs from the
// link being back until the hub's stream holds them all. One op is one
// value; the outage lasts as long as publishing and storing them.
func BenchmarkCatchUp(b *testing.B) {
	hub, hubNC := startHub(b)
	mon, err := sites.NewMonitor(sites.MonitorConfig{Conn: hubNC, Logger: bustest.Logger(b)})
	if err != nil {
		b.Fatal(err)
	}
	run(b, mon)
	site, siteNC, link := startSite(b, "paris", hub)
	beacon, err := sites.NewBeacon(sites.BeaconConfig{Conn: siteNC, Logger: bustest.Logger(b), Site: "paris", Interval: 500 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	run(b, beacon)
	waitLeaf(b, site, true)
	bustest.Eventually(b, 20*time.Second, "paris sourced", func() error {
		s := mon.Sites()
		return bustest.Want(len(s) == 1 && s[0].Sourced, fmt.Sprint(s))
	})
	link.Cut()
	waitLeaf(b, site, false)
	publishN(b, siteNC, b.N)
	waitStored(b, jsOf(b, siteNC), b.N) // the site holds them
	b.ResetTimer()
	link.Restore()
	began := time.Now()
	waitStored(b, jsOf(b, hubNC), 1)
	first := time.Since(began)
	waitStored(b, jsOf(b, hubNC), b.N)
	b.StopTimer()
	all := time.Since(began)
	b.ReportMetric(first.Seconds(), "s-to-first")
	b.ReportMetric(float64(b.N)/(all-first).Seconds(), "values/s-after-first")
}

// BenchmarkLiveStoreBaseline stores the same number of values in a stream
// that captures node.> from a client of its own server: one server's store
// rate, with no leaf connection and no sourcing in between.
func BenchmarkLiveStoreBaseline(b *testing.B) {
	srv := bustest.StartServer(b)
	nc := bustest.Connect(b, srv)
	b.ResetTimer()
	publishN(b, nc, b.N)
	waitStored(b, jsOf(b, nc), b.N)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "values/s")
}

// publishN publishes n values on 100 subjects (within the per-subject
// history) and flushes.
func publishN(b *testing.B, nc *nats.Conn, n int) {
	b.Helper()
	for i := range n {
		if err := nc.Publish(bus.NodeValue(fmt.Sprintf("n%d", i%100), "counter"), value(i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
}

// waitStored waits until the NODES stream has received n messages (its
// last sequence: older ones may have been discarded by the history limit).
func waitStored(b *testing.B, js jetstream.JetStream, n int) {
	b.Helper()
	bustest.Eventually(b, 5*time.Minute, "stored", func() error {
		st, err := js.Stream(ctxT(b), bus.NodesStream)
		if err != nil {
			return bustest.Want(false, err.Error())
		}
		last := st.CachedInfo().State.LastSeq
		return bustest.Want(last >= uint64(n), fmt.Sprintf("%d of %d", last, n))
	})
}
