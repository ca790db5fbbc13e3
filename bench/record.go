package bench

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// tally is the sending side of one measurement: the run id, the clock, and
// how many values each node has sent.
type tally struct {
	run       string
	epoch     time.Time
	resources int
	sent      []atomic.Int64
}

func newTally(nodes, resources int) *tally {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return &tally{run: hex.EncodeToString(b[:]), epoch: time.Now(), resources: max(resources, 1),
		sent: make([]atomic.Int64, nodes)}
}

// now is the time since the epoch, in nanoseconds (monotonic).
func (t *tally) now() int64 { return int64(time.Since(t.epoch)) }

// next reserves node i's next sequence number and returns its resource name
// and value, stamped now.
func (t *tally) next(i int) (res, value string) {
	seq := t.sent[i].Add(1) - 1
	return t.resource(seq), t.value(i, seq)
}

func (t *tally) resource(seq int64) string {
	return "b" + strconv.FormatInt(seq%int64(t.resources), 10)
}

func (t *tally) value(i int, seq int64) string {
	b := make([]byte, 0, 48)
	b = append(b, t.run...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, t.now(), 10)
	return string(b)
}

// total is the number of values sent by every node.
func (t *tally) total() int64 {
	var n int64
	for i := range t.sent {
		n += t.sent[i].Load()
	}
	return n
}

// parseValue splits "<run>/<node>/<seq>/<ns>"; ok is false for anything
// else (a value of another run, or not ours).
func parseValue(run, v string) (node int, seq, ns int64, ok bool) {
	return parseValueBytes(run, []byte(v))
}

// parseValueBytes is parseValue without allocating.
func parseValueBytes(run string, v []byte) (node int, seq, ns int64, ok bool) {
	if len(v) <= len(run) || string(v[:len(run)]) != run || v[len(run)] != '/' {
		return 0, 0, 0, false
	}
	v = v[len(run)+1:]
	var f [3]int64
	for k := range f {
		n, i := int64(0), 0
		for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
			if n > (1<<62)/10 {
				return 0, 0, 0, false
			}
			n = n*10 + int64(v[i]-'0')
		}
		if i == 0 || (k < 2 && (i == len(v) || v[i] != '/')) || (k == 2 && i != len(v)) {
			return 0, 0, 0, false
		}
		f[k] = n
		v = v[min(i+1, len(v)):]
	}
	return int(f[0]), f[1], f[2], true
}

// receiver is one place values arrive (a browser, a bus subscriber). It is
// written by one goroutine; count and last may be read by any.
type receiver struct {
	t     *tally
	mu    sync.Mutex
	seen  [][]uint64 // per node, bitmap of sequence numbers
	dups  int64
	bad   int64 // values of this run that name no node we have
	hist  *hdrhistogram.Histogram
	count atomic.Int64 // unique values received
	last  atomic.Int64 // tally time of the last one
}

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, 60_000_000, 3) // µs, 1 µs to 60 s
}

func newReceiver(t *tally) *receiver {
	return &receiver{t: t, seen: make([][]uint64, len(t.sent)), hist: newHistogram()}
}

// got records value v received now; it reports whether v was one of ours.
func (r *receiver) got(v string) bool { return r.gotBytes([]byte(v)) }

// gotBytes is got without a string.
func (r *receiver) gotBytes(v []byte) bool {
	now := r.t.now()
	node, seq, ns, ok := parseValueBytes(r.t.run, v)
	if !ok {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if node >= len(r.seen) {
		r.bad++
		return true
	}
	w := int(seq / 64)
	if w >= len(r.seen[node]) {
		r.seen[node] = append(r.seen[node], make([]uint64, w+1-len(r.seen[node])+16)...)
	}
	bit := uint64(1) << (seq % 64)
	if r.seen[node][w]&bit != 0 {
		r.dups++
		return true
	}
	r.seen[node][w] |= bit
	_ = r.hist.RecordValue(max((now-ns)/1000, 1))
	r.count.Add(1)
	r.last.Store(now)
	return true
}

// has reports whether the receiver got node's value seq.
func (r *receiver) has(node int, seq int64) bool {
	w := int(seq / 64)
	return w < len(r.seen[node]) && r.seen[node][w]&(1<<(seq%64)) != 0
}

// delivery is what a set of receivers got of what was sent.
type delivery struct {
	Expected   int64 // values sent × receivers
	Delivered  int64 // unique values received
	Superseded int64 // not received, but a later value of the same resource was
	Lost       int64 // not received, and nothing later of its resource either
	Duplicates int64
	Latency    *hdrhistogram.Histogram
}

// account compares what every receiver got with what was sent.
func account(t *tally, rs []*receiver) delivery {
	d := delivery{Latency: newHistogram()}
	res := int64(t.resources)
	for _, r := range rs {
		r.mu.Lock()
		d.Latency.Merge(r.hist)
		d.Duplicates += r.dups
		for node := range t.sent {
			sent := t.sent[node].Load()
			d.Expected += sent
			latest := make([]int64, res) // per resource: highest seq received, -1 none
			for k := range latest {
				latest[k] = -1
			}
			for s := int64(0); s < sent; s++ {
				if r.has(node, s) {
					d.Delivered++
					latest[s%res] = s
				}
			}
			for s := int64(0); s < sent; s++ {
				if r.has(node, s) {
					continue
				}
				if latest[s%res] > s {
					d.Superseded++
				} else {
					d.Lost++
				}
			}
		}
		r.mu.Unlock()
	}
	return d
}

// received sums the unique values of rs.
func received(rs []*receiver) int64 {
	var n int64
	for _, r := range rs {
		n += r.count.Load()
	}
	return n
}
