package coap

import (
	"net/netip"
	"sync"

	"golang.org/x/time/rate"
)

// maxLimitedSources bounds the per-source limiters kept; past it they are
// all dropped and start afresh, so spoofed sources cannot grow memory.
const maxLimitedSources = 65536

// sourceLimiter caps the requests accepted from one source IP address (any
// port), so that one flooding peer cannot crowd the bus or other nodes out.
// A RIOT node sends one value every few seconds; the default allows far more.
type sourceLimiter struct {
	limit rate.Limit
	burst int

	mu    sync.Mutex
	peers map[netip.Addr]*rate.Limiter
}

// newSourceLimiter allows perSecond requests per source address with bursts
// of twice that; perSecond < 0 means no limit (nil limiter).
func newSourceLimiter(perSecond float64) *sourceLimiter {
	if perSecond < 0 {
		return nil
	}
	return &sourceLimiter{limit: rate.Limit(perSecond), burst: max(1, int(2*perSecond)),
		peers: make(map[netip.Addr]*rate.Limiter)}
}

// allow reports whether one more request from a is within its rate.
func (l *sourceLimiter) allow(a netip.Addr) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	lim := l.peers[a]
	if lim == nil {
		if len(l.peers) >= maxLimitedSources {
			clear(l.peers)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.peers[a] = lim
	}
	l.mu.Unlock()
	return lim.Allow()
}
