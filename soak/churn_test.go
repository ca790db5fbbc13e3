package soak

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/coap/coapsim"
	"github.com/goaiot/goaiot/gateways/mqtt/mqttsim"
	"github.com/goaiot/goaiot/gateways/mqttsn/snsim"
	"github.com/goaiot/goaiot/gateways/ws/wssim"
)

// idsPerProtocol is how many distinct ids churn through each edge: 200 by
// default, AIOT_SOAK=N for a long run.
func idsPerProtocol(t *testing.T) int {
	t.Helper()
	return envCount(t, "AIOT_SOAK", 200, "ids per protocol")
}

// batchSize is how many simulated nodes run at once: 50, or AIOT_SOAK_BATCH
// for a long run. The warm-up runs twice as many, so that the runtime's
// high-water mark of goroutines (Go keeps the descriptor of every goroutine
// it ever ran at once, about 400 B each) is set before the heap's start is
// read, not by the churn.
func batchSize(t *testing.T) int {
	t.Helper()
	return envCount(t, "AIOT_SOAK_BATCH", 50, "nodes at once")
}

// envCount is the positive number in environment variable name, or def
// when it is not set.
func envCount(t *testing.T, name string, def int, what string) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number of %s", name, v, what)
	}
	return n
}

// mqttBatch caps the MQTT nodes run at once: nats-server's MQTT listener
// looks each CONNECT's session up through the JetStream API, and a few
// hundred at once on a loaded 2-core machine take longer than the soak's
// one-second node timeout, so their claims lapse before they are proven.
const mqttBatch = 50

// beacon is the simulated nodes' beacon period while they run: a node
// whose first announcement was lost on a loaded machine comes online at its
// next beacon, as a real one would.
const beacon = 2 * time.Second

// node makes the simulated node of one protocol for id.
type node func(s *system, id string) (func(context.Context) error, error)

// protocols are the four edges, each with its simulated node.
var protocols = []struct {
	name string
	node node
}{
	{"coap", func(s *system, id string) (func(context.Context) error, error) {
		n, err := coapsim.New(coapsim.Config{UID: id, Listen: "127.0.0.1:0", Gateway: s.coap.Addr().String(),
			PostFromListener: true, BeaconInterval: beacon, SensorInterval: time.Hour, Logger: bustest.Quiet()})
		if err != nil {
			return nil, err
		}
		return n.Run, nil
	}},
	{"mqtt", func(s *system, id string) (func(context.Context) error, error) {
		n, err := mqttsim.New(mqttsim.Config{Broker: "tcp://" + s.srv.MQTTAddr(), ID: id, CheckInterval: beacon,
			SensorInterval: time.Hour, Logger: bustest.Quiet()})
		if err != nil {
			return nil, err
		}
		return n.Run, nil
	}},
	{"mqtt-sn", func(s *system, id string) (func(context.Context) error, error) {
		n, err := snsim.New(snsim.Config{Gateway: s.sn.Addr().String(), NodeID: id, Local: "127.0.0.1:0",
			CheckInterval: beacon, SensorInterval: time.Hour, Logger: bustest.Quiet()})
		if err != nil {
			return nil, err
		}
		return n.Run, nil
	}},
	{"websocket", func(s *system, id string) (func(context.Context) error, error) {
		n, err := wssim.New(wssim.Config{URL: s.wsURL, ID: id, SensorInterval: time.Hour, Logger: bustest.Quiet()})
		if err != nil {
			return nil, err
		}
		return n.Run, nil
	}},
}

// churn brings n distinct ids of every protocol online, size at a time,
// and stops each batch's nodes once all of them were seen online.
func (s *system) churn(t *testing.T, prefix string, n, size int) {
	t.Helper()
	only := os.Getenv("AIOT_SOAK_PROTOCOLS") // e.g. "coap,mqtt": only those
	for _, p := range protocols {
		if only != "" && !slices.Contains(strings.Split(only, ","), p.name) {
			continue
		}
		size := size
		if p.name == "mqtt" {
			size = min(size, mqttBatch)
		}
		for from := 0; from < n; from += size {
			ids := make([]string, 0, size)
			for i := from; i < min(from+size, n); i++ {
				ids = append(ids, fmt.Sprintf("%s-%s-%d", prefix, p.name, i))
			}
			s.runBatch(t, p.node, ids)
		}
	}
}

// runBatch runs one simulated node per id until every id was seen online.
func (s *system) runBatch(t *testing.T, mk node, ids []string) {
	t.Helper()
	before := runtime.NumGoroutine()
	defer drained(t, before)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, id := range ids {
		run, err := mk(s, id)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = run(ctx) })
	}
	bustest.Eventually(t, 3*time.Minute, "the batch online", func() error {
		if err := s.states.seenOnline(ids); err != nil {
			return fmt.Errorf("%w (mqtt node logic: %+v)", err, s.mqtt.Stats())
		}
		return nil
	})
}

// drained waits until the goroutines of a batch, the simulated nodes' and
// the system's for them (connections closing, peers timing out), have
// ended, so that batches do not pile up: until there are no more than
// before the batch, or their number has stopped falling for a second (the
// first node of a protocol starts goroutines that stay, such as
// nats-server's MQTT session manager). Go keeps a descriptor for every
// goroutine it ever ran at once (about 0.5 KB each, never freed): the
// churn must not run more at once than the warm-up did, or that
// high-water mark, not anything the ids left, is what the heap shows.
func drained(t *testing.T, before int) {
	t.Helper()
	last, since := runtime.NumGoroutine(), time.Now()
	bustest.Eventually(t, time.Minute, "the batch's goroutines ended", func() error {
		n := runtime.NumGoroutine()
		if n < last {
			last, since = n, time.Now()
		}
		return bustest.Want(n <= before || time.Since(since) > time.Second, n, " goroutines, ", before, " before the batch")
	})
}

// settled waits until every node is offline and forgotten everywhere.
func (s *system) settled(t *testing.T, within time.Duration) {
	t.Helper()
	bustest.Eventually(t, within, "every node offline", func() error {
		n, some := s.states.stillOnline()
		return bustest.Want(n == 0, n, "still online, such as", some)
	})
	s.states.forgetIDs()
	bustest.Eventually(t, within, "every node forgotten", func() error {
		for part, n := range s.nodesHeld(t) {
			if n != 0 {
				return fmt.Errorf("%s holds %d nodes; a browser's snapshot begins %.600s", part, n, s.snapshotMessages(t))
			}
		}
		return nil
	})
}

// writeHeapProfile writes the heap profile to AIOT_SOAK_PROFILES/<name>.heap.pprof
// when that variable names a directory: what the churn left behind is the
// difference (go tool pprof -diff_base start.heap.pprof end.heap.pprof).
func writeHeapProfile(t *testing.T, name string) {
	t.Helper()
	dir := os.Getenv("AIOT_SOAK_PROFILES")
	if dir == "" {
		return
	}
	f, err := os.Create(filepath.Join(dir, name+".heap.pprof"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
}

// caches is how long the soak waits before it reads the heap: the
// stream's age limit drops the values, and nats-server lets go of its
// file store's block caches (10 s after their last use; 1 MiB each, more
// than the soak's 10 % of a small heap).
var caches = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("AIOT_SOAK_WAIT")); err == nil {
		return d
	}
	return streamAge + 11*time.Second
}()

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Ids that come and go leave nothing behind: after every node of every
// protocol has gone offline and the retention has passed, no part holds a
// node, a new browser's snapshot is as small as at the start, and the live
// heap is back within 10 % of where it started.
func TestChurnReturnsToStart(t *testing.T) {
	n := idsPerProtocol(t)
	if os.Getenv("AIOT_SOAK_PROFILES") != "" {
		runtime.MemProfileRate = 4096 // a sample every 4 KiB: close enough for a difference, still fast
	}
	batch := batchSize(t)
	warm := 2 * batch
	s := startSystem(t, 4*n+warm)
	within := time.Duration(max(n/50, 30)) * time.Second

	// Warm up: one batch through each protocol, so that pools, buffers and
	// goroutine stacks that stay by design are in the baseline.
	s.churn(t, "warm", warm, warm)
	s.settled(t, within)
	time.Sleep(caches) // the stream drops the warm-up's values by its age limit, nats-server its caches
	heap0 := liveHeap()
	writeHeapProfile(t, "start")
	msgs0, bytes0 := s.snapshot(t)

	s.churn(t, "churn", n, batch)
	online := s.states.seen()
	s.settled(t, within)
	time.Sleep(caches)
	heap := liveHeap()
	writeHeapProfile(t, "end")
	msgs, bytes := s.snapshot(t)

	t.Logf("%d ids per protocol (%d in all came online): live heap %d KB at start, %d KB after; snapshot %d messages, %d bytes at start, %d and %d after",
		n, online, heap0>>10, heap>>10, msgs0, bytes0, msgs, bytes)
	if want := 4 * (n + warm); online != want && os.Getenv("AIOT_SOAK_PROTOCOLS") == "" {
		t.Errorf("%d distinct ids came online, want %d", online, want)
	}
	t.Run("snapshot back to its start", func(t *testing.T) {
		if msgs != msgs0 || bytes != bytes0 {
			t.Fatalf("snapshot %d messages, %d bytes; at start %d and %d", msgs, bytes, msgs0, bytes0)
		}
	})
	t.Run("live heap within 10 % of its start", func(t *testing.T) {
		if float64(heap) > 1.10*float64(heap0) {
			t.Fatalf("live heap %d KB, at start %d KB (+%.1f %%)", heap>>10, heap0>>10, 100*(float64(heap)/float64(heap0)-1))
		}
	})
}
