package presence

import "time"

// deadlines files a tracker's entries by when they may time out, so that a
// sweep looks only at the entries whose time may have come instead of at
// every node: O(expiring) per sweep, not O(nodes).
//
// An entry is filed once, by the deadline it had then (its LastSeen plus
// the timeout), in the bucket of that instant (buckets are one sweep
// period wide). A sign of life does not refile it (a beacon costs nothing
// here): when its bucket comes due, an entry that was refreshed meanwhile
// is filed again by its new deadline, so a live node is looked at about
// once per timeout. An entry that left the tracker (forgotten, yielded,
// replaced) stays filed until its bucket comes due, and is then dropped.
type deadlines struct {
	width   int64              // of a bucket, in nanoseconds (≥ 1)
	buckets map[int64][]*entry // by slot (see slot)
	keys    []int64            // scratch for due
}

func newDeadlines(width time.Duration) *deadlines {
	return &deadlines{width: max(int64(width), 1), buckets: make(map[int64][]*entry)}
}

// slot is the bucket of instant at: floor(at / width), also before 1970.
func (d *deadlines) slot(at time.Time) int64 {
	ns := at.UnixNano()
	s := ns / d.width
	if ns%d.width < 0 {
		s--
	}
	return s
}

// file files e by its deadline.
func (d *deadlines) file(e *entry, deadline time.Time) {
	s := d.slot(deadline)
	d.buckets[s] = append(d.buckets[s], e)
}

// due takes out every entry filed in a bucket that began at or before now
// and calls keep on each; keep returns false for an entry that timed out
// or left, else its deadline, by which the entry is filed again.
func (d *deadlines) due(now time.Time, keep func(*entry) (time.Time, bool)) {
	last := d.slot(now)
	d.keys = d.keys[:0]
	for s := range d.buckets {
		if s <= last {
			d.keys = append(d.keys, s)
		}
	}
	for _, s := range d.keys {
		es := d.buckets[s]
		delete(d.buckets, s)
		for _, e := range es {
			if deadline, ok := keep(e); ok {
				d.file(e, deadline)
			}
		}
	}
}

// len is how many entries are filed (those that left included).
func (d *deadlines) len() int {
	n := 0
	for _, es := range d.buckets {
		n += len(es)
	}
	return n
}

// reset empties d.
func (d *deadlines) reset() { clear(d.buckets) }
