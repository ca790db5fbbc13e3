package dashboard

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/sites"
)

// siteMsg is a "site" or "collision" message as a browser gets it.
type siteMsg struct {
	Type  string   `json:"type"`
	Site  string   `json:"site"`
	Link  string   `json:"link"`
	UID   string   `json:"uid"`
	Sites []string `json:"sites"`
	TS    int64    `json:"ts"`
}

// nextSiteMsg skips messages until a "site" or "collision" one; with
// beforeSynced it fails on reaching "synced" first.
func (b *browser) nextSiteMsg(beforeSynced bool) (siteMsg, bool) {
	b.t.Helper()
	for {
		_ = b.conn.SetReadDeadline(time.Now().Add(wait))
		_, data, err := b.conn.ReadMessage()
		if err != nil {
			b.t.Fatalf("read: %v", err)
		}
		var m siteMsg
		if err := json.Unmarshal(data, &m); err != nil {
			b.t.Fatal(err)
		}
		switch m.Type {
		case "site", "collision":
			return m, true
		case typeSynced:
			if beforeSynced {
				return m, false
			}
		}
	}
}

func TestSiteLinksAndCollisionsReachBrowsers(t *testing.T) {
	srv := bustest.StartServer(t)
	td := startDashboard(t, srv)
	pub := publisher{t: t, nc: bustest.Connect(t, srv)}
	live := dial(t, td, nil)
	live.subscribe()

	pub.json(sites.SubjectLink("paris"), sites.Link{Type: "site", Site: "paris", Link: sites.LinkDown, Time: 1})
	pub.json(sites.SubjectCollision, sites.Collision{Type: "collision", UID: "kitchen", Sites: []string{"lyon", "paris"}, Time: 2})
	t.Run("live", func(t *testing.T) {
		got := map[string]siteMsg{}
		for range 2 { // two subscriptions: either may come first
			m, _ := live.nextSiteMsg(false)
			got[m.Type] = m
		}
		if m := got["site"]; m.Site != "paris" || m.Link != sites.LinkDown || m.TS != 1 {
			t.Fatalf("site message %+v", m)
		}
		if m := got["collision"]; m.UID != "kitchen" || len(m.Sites) != 2 || m.TS != 2 {
			t.Fatalf("collision message %+v", m)
		}
	})
	t.Run("in the snapshot of a browser that comes later", func(t *testing.T) {
		late := dial(t, td, nil)
		late.send(`{"type":"new","data":"client"}`)
		var got []string
		for {
			m, ok := late.nextSiteMsg(true)
			if !ok {
				break
			}
			got = append(got, m.Type+" "+m.Site+m.UID)
		}
		if len(got) != 2 || got[0] != "collision kitchen" || got[1] != "site paris" {
			t.Fatalf("snapshot site messages %q", got)
		}
	})
	t.Run("bad messages are dropped, the next good one passes", func(t *testing.T) {
		before := metric(t, td, "aiot_dashboard_events_invalid_total")
		pub.json(sites.SubjectLink("paris"), sites.Link{Site: "lyon", Link: sites.LinkUp})       // another site's subject
		pub.json(sites.SubjectLink("paris"), sites.Link{Site: "paris", Link: "sideways"})        // unknown state
		pub.json(sites.SubjectCollision, sites.Collision{UID: "a.b", Sites: []string{"x", "y"}}) // unsafe uid
		pub.json(sites.SubjectLink("paris"), sites.Link{Site: "paris", Link: sites.LinkUp, Time: 3})
		if m, _ := live.nextSiteMsg(false); m.Type != "site" || m.Link != sites.LinkUp || m.TS != 3 {
			t.Fatalf("got %+v after bad messages", m)
		}
		// The collision comes on a subscription of its own: it may be
		// counted a moment after the link message arrived.
		deadline := time.Now().Add(wait)
		for metric(t, td, "aiot_dashboard_events_invalid_total")-before < 3 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := metric(t, td, "aiot_dashboard_events_invalid_total") - before; n != 3 {
			t.Fatalf("%v invalid messages counted, want 3", n)
		}
	})
	t.Run("a collision that is over leaves the snapshot", func(t *testing.T) {
		pub.json(sites.SubjectCollision, sites.Collision{UID: "kitchen", Sites: []string{"paris"}, Time: 4})
		if m, _ := live.nextSiteMsg(false); m.Type != "collision" || len(m.Sites) != 1 {
			t.Fatalf("got %+v", m)
		}
		later := dial(t, td, nil)
		later.send(`{"type":"new","data":"client"}`)
		m, ok := later.nextSiteMsg(true)
		if !ok || m.Type != "site" || m.Link != sites.LinkUp {
			t.Fatalf("snapshot's first site message %+v", m)
		}
		if m, ok := later.nextSiteMsg(true); ok {
			t.Fatalf("snapshot still has %+v", m)
		}
	})
}

// A claim refused by a gateway reaches every browser once and is counted;
// it is not kept for later snapshots, and a bad one is dropped.
func TestRefusedClaimsReachBrowsers(t *testing.T) {
	srv := bustest.StartServer(t)
	td := startDashboard(t, srv)
	pub := publisher{t: t, nc: bustest.Connect(t, srv)}
	live := dial(t, td, nil)
	live.subscribe()
	pub.json(bus.SubjectClaimRefused, bus.ClaimRefused{UID: "a.b", Owner: "x", Claimant: "y"}) // unsafe uid: dropped
	pub.json(bus.SubjectClaimRefused, bus.ClaimRefused{UID: "uid1", Owner: "CoAP/coap@a", Claimant: "MQTT/mqtt@a", Time: time.UnixMilli(5)})
	var got refused
	for got.Type != "refused" {
		_ = live.conn.SetReadDeadline(time.Now().Add(wait))
		_, data, err := live.conn.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
	}
	if got.UID != "uid1" || got.Owner != "CoAP/coap@a" || got.Claimant != "MQTT/mqtt@a" || got.TS != 5 {
		t.Fatalf("refused message %+v", got)
	}
	if n := metric(t, td, "aiot_dashboard_claims_refused_total"); n != 1 {
		t.Fatalf("claims refused counted %v, want 1", n)
	}
	late := dial(t, td, nil)
	late.send(`{"type":"new","data":"client"}`)
	if m, ok := late.nextSiteMsg(true); ok {
		t.Fatalf("snapshot holds %+v", m)
	}
}
