// Package shrink gives a map's memory back once most of its entries are
// gone. A Go map never shrinks: a map that once held a million node ids
// keeps the buckets for a million after every id is deleted. The maps keyed
// by ids a node or a browser chooses (trackers, node tables, claims,
// limiters, the dashboard's index) call Map from their periodic sweep, so
// that after id churn their memory returns to what their live entries need.
package shrink

// MinPeak is the smallest high-water mark worth a rebuild: below it the
// buckets left behind are a few kilobytes.
const MinPeak = 256

// Peak is a map's high-water mark since its last rebuild. The zero value is
// ready to use.
type Peak struct{ n int }

// Map returns m itself, or, when m holds less than a quarter of its peak
// (and the peak was at least MinPeak), a copy sized to its entries; p is
// updated either way. The caller replaces its map with the result, under
// the same lock that guards m. The copy costs one pass over the live
// entries, paid only after three quarters of them went away, so a sweep
// that calls Map every time stays linear overall.
func Map[M ~map[K]V, K comparable, V any](m M, p *Peak) M {
	n := len(m)
	p.n = max(p.n, n)
	if p.n < MinPeak || n >= p.n/4 {
		return m
	}
	c := make(M, n)
	for k, v := range m {
		c[k] = v
	}
	p.n = n
	return c
}

// Note records that m grew, for maps that grow between sweeps by more
// than the sweep sees (the peak is otherwise only sampled when Map runs).
func (p *Peak) Note(n int) { p.n = max(p.n, n) }

// Slice returns s itself, or, when s uses less than a quarter of its
// capacity (of at least MinPeak), a copy with just its elements.
func Slice[S ~[]E, E any](s S) S {
	if cap(s) < MinPeak || len(s) >= cap(s)/4 {
		return s
	}
	return append(make(S, 0, len(s)), s...)
}
