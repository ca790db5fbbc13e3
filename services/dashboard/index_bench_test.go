package dashboard

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus"
)

// benchNodes is how many nodes the index benchmarks hold.
const benchNodes = 100_000

// benchIndex returns an index of benchNodes online CoAP nodes with values
// values each.
func benchIndex(values int) *index {
	x := newIndex()
	ts := time.UnixMilli(1_700_000_000_000)
	for i := range benchNodes {
		uid := fmt.Sprintf("node-%06d", i)
		x.apply(event{kind: bus.KindNodeState, uid: uid, ts: ts, state: bus.State{
			State: bus.StateOnline, Protocol: bus.ProtocolCoAP, Gateway: "gw-1", Site: "site-a",
			Address: fmt.Sprintf("[fd00::%x]:5683", i), Time: ts}})
		for v := range values {
			x.apply(event{kind: bus.KindNodeValue, uid: uid, endpoint: fmt.Sprintf("sensor-%d", v), value: "21.5", ts: ts})
		}
	}
	return x
}

// BenchmarkIndexMemory reports the live heap the dashboard's index keeps
// per node ("B/node"), for nodes without values (an idle websocket node)
// and with two values.
func BenchmarkIndexMemory(b *testing.B) {
	for _, values := range []int{0, 2} {
		b.Run(fmt.Sprintf("values=%d", values), func(b *testing.B) {
			var perNode float64
			for b.Loop() {
				before := liveHeap()
				x := benchIndex(values)
				perNode = float64(liveHeap()-before) / benchNodes
				runtime.KeepAlive(x)
			}
			b.ReportMetric(perNode, "B/node")
		})
	}
}

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkSnapshot measures what a browser's snapshot costs at benchNodes
// nodes with two values each, for goaiot's page (ext) and Pyaiot's: under
// the hub's lock (take), then in the browser's writer, which expands and
// encodes it (encode).
func BenchmarkSnapshot(b *testing.B) {
	x := benchIndex(2)
	for _, ext := range []bool{true, false} {
		b.Run(fmt.Sprintf("ext=%v/take", ext), func(b *testing.B) {
			for b.Loop() {
				_ = x.snapshot(ext)
			}
		})
		b.Run(fmt.Sprintf("ext=%v/encode", ext), func(b *testing.B) {
			batch := make([]*frame, 0, writeBatch+8)
			for b.Loop() {
				b.StopTimer()
				snap := x.snapshot(ext)
				b.StartTimer()
				for _, f := range snap {
					if f.snap == nil {
						continue
					}
					for !f.snap.done() {
						batch = f.snap.expand(batch[:0], writeBatch)
						for _, g := range batch {
							_ = g.bytes()
						}
					}
				}
			}
		})
	}
}
