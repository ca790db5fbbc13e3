package mqtt

import (
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

// soakIDs is the number of distinct ids the churn soak sends: 2 000 by
// default, AIOT_SOAK=100000 for the long run.
func soakIDs(t *testing.T) int {
	t.Helper()
	v := os.Getenv("AIOT_SOAK")
	if v == "" {
		return 2_000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("AIOT_SOAK=%q: want a positive number of ids", v)
	}
	return n
}

// Id churn leaves nothing behind: distinct MQTT-SN ids come online and go
// offline, distinct listener claims are never proven, and afterwards the
// gateway's tables, its trackers and its NATS subscriptions are back to
// where they started.
func TestChurnLeavesNothing(t *testing.T) {
	n := soakIDs(t)
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	g := startGateway(t, srv, func(c *Config) {
		c.NodeTimeout, c.RediscoverInterval, c.MaxNodes = 300*time.Millisecond, 50*time.Millisecond, n
	})
	subs0 := g.cfg.Conn.NumSubscriptions()
	var mem0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&mem0)

	for i := range n {
		announceSN(t, nc, "sn"+itoa(i))
		if err := nc.Publish(bus.SubjectNodeCheck, []byte(`{"id":"claim`+itoa(i)+`"}`)); err != nil {
			t.Fatal(err)
		}
		if i%500 == 499 { // keep the claims within what the gateway holds at once
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	soakWait := time.Duration(max(n/100, 10)) * time.Second
	bustest.Eventually(t, soakWait, "every MQTT-SN id seen", func() error {
		added := g.Stats().MQTTSN.Added
		return bustest.Want(added == int64(n), added, "of", n)
	})
	bustest.Eventually(t, soakWait, "every id gone", func() error {
		s := g.Stats()
		return bustest.Want(s.Tracked == 0 && s.Claims == 0 && s.MQTTSN.Online == 0 && s.MQTT.Online == 0,
			"tracked", s.Tracked, "claims", s.Claims, "online", s.MQTTSN.Online+s.MQTT.Online)
	})
	st := g.Stats()
	tests := []struct {
		name      string
		got, want int64
	}{
		{"expired MQTT-SN nodes", st.MQTTSN.Expired, int64(n)},
		{"refused", st.MQTTSN.Refused + st.MQTT.Refused, 0},
		{"node subscriptions left", int64(g.cfg.Conn.NumSubscriptions() - subs0), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("%d, want %d", tt.got, tt.want)
			}
		})
	}
	var mem runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&mem)
	t.Logf("%d ids: live heap %d KB before, %d KB after; claims dropped %d", n, mem0.HeapAlloc>>10, mem.HeapAlloc>>10,
		st.Dropped["claim never proven"]+st.Dropped["claim pushed out by newer claims"])
}
