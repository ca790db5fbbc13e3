// Package sourcelimit caps the events accepted per network source (an IPv4
// address, or an IPv6 /64: one host picks any address of its /64), any
// port, with bounded memory: the CoAP gateway's POSTs, the websocket node
// gateway's new node ids.
package sourcelimit

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// MaxSources bounds the per-source limiters kept, so that spoofed sources
// cannot grow memory.
const MaxSources = 65536

// Limiter caps the events accepted from one source, so that one flooding
// peer cannot crowd the others out. A nil Limiter allows everything.
//
// At the cap, the limiters of idle sources (bucket full again) are dropped,
// then, if more than half the cap is still busy, random ones down to half.
// A flooding source is busy: it keeps its empty bucket unless it loses that
// draw, where Pyaiot-era code cleared every bucket at once.
type Limiter struct {
	limit rate.Limit
	burst int
	max   int

	mu    sync.Mutex
	peers map[netip.Addr]*rate.Limiter
}

// New allows perSecond events per source with bursts of burst (at least
// 1); perSecond < 0 means no limit (a nil Limiter).
func New(perSecond float64, burst int) *Limiter {
	if perSecond < 0 {
		return nil
	}
	return &Limiter{limit: rate.Limit(perSecond), burst: max(1, burst), max: MaxSources,
		peers: make(map[netip.Addr]*rate.Limiter)}
}

// Key is the source a is counted as: IPv4 as is, IPv6 by its /64.
func Key(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}

// Allow reports whether one more event from a is within its rate.
func (l *Limiter) Allow(a netip.Addr) bool {
	if l == nil {
		return true
	}
	key := Key(a)
	l.mu.Lock()
	lim := l.peers[key]
	if lim == nil {
		if len(l.peers) >= l.max {
			l.evictLocked(time.Now())
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.peers[key] = lim
	}
	l.mu.Unlock()
	return lim.Allow()
}

// evictLocked makes room: idle sources first, then random busy ones.
func (l *Limiter) evictLocked(now time.Time) {
	for k, lim := range l.peers {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.peers, k)
		}
	}
	drop := len(l.peers) - l.max/2
	for k := range l.peers { // map order is random
		if drop <= 0 {
			break
		}
		delete(l.peers, k)
		drop--
	}
}
