package coap

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxLimitedSources bounds the per-source limiters kept, so that spoofed
// sources cannot grow memory.
const maxLimitedSources = 65536

// sourceLimiter caps the requests accepted from one source (an IPv4
// address, or an IPv6 /64: one host picks any address of its /64), any
// port, so that one flooding peer cannot crowd the bus or other nodes out.
// A RIOT node sends one value every few seconds; the default allows far more.
//
// At the cap, the limiters of idle sources (bucket full again) are dropped,
// then, if more than half the cap is still busy, random ones down to half.
// A flooding source is busy: it keeps its empty bucket unless it loses that
// draw, where Pyaiot-era code cleared every bucket at once.
type sourceLimiter struct {
	limit rate.Limit
	burst int
	max   int

	mu    sync.Mutex
	peers map[netip.Addr]*rate.Limiter
}

// newSourceLimiter allows perSecond requests per source with bursts of
// twice that; perSecond < 0 means no limit (nil limiter).
func newSourceLimiter(perSecond float64) *sourceLimiter {
	if perSecond < 0 {
		return nil
	}
	return &sourceLimiter{limit: rate.Limit(perSecond), burst: max(1, int(2*perSecond)), max: maxLimitedSources,
		peers: make(map[netip.Addr]*rate.Limiter)}
}

// sourceKey is the source a is counted as: IPv4 as is, IPv6 by its /64.
func sourceKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}

// allow reports whether one more request from a is within its rate.
func (l *sourceLimiter) allow(a netip.Addr) bool {
	if l == nil {
		return true
	}
	key := sourceKey(a)
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
func (l *sourceLimiter) evictLocked(now time.Time) {
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
