package coap

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	dtlsServer "github.com/plgd-dev/go-coap/v3/dtls/server"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/mux"
	"github.com/plgd-dev/go-coap/v3/options/config"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
	udpServer "github.com/plgd-dev/go-coap/v3/udp/server"
)

// What a held CoAP peer costs (see doc.go, "Memory per peer"): go-coap
// (v3.8) keeps a connection per remote address, with one goroutine that
// runs the handler of every message from that peer. This file keeps both
// small: the handlers run on a few long-lived goroutines (handlers), and
// a peer that only sent NON requests is forgotten sooner (peerIdle).

// handlers runs go-coap's processing of received messages on a bounded set
// of goroutines. go-coap's goroutine per peer only hands a message over and
// waits for it to be done, so its stack stays at the minimum instead of
// growing to the handler's depth (NATS publish, JSON, slog); Go starts new
// goroutines with the average stack size it last measured, so deep peer
// goroutines made every new one big too. A busy peer (its second message
// and later while go-coap keeps it) is handled on its own goroutine: a
// hand-over per message would halve a fast sender's rate, and busy peers
// are few.
type handlers struct {
	jobs    chan *handlerJob
	done    <-chan struct{} // closed when the workers stop: process runs inline
	free    sync.Pool       // of *handlerJob
	workers int             // 0: go-coap's own processing, on the peer's goroutine
}

type handlerJob struct {
	req  *pool.Message
	cc   *udpClient.Conn
	h    config.HandlerFunc[*udpClient.Conn]
	over chan struct{}
}

func newHandlers() *handlers {
	h := &handlers{jobs: make(chan *handlerJob)}
	h.free.New = func() any { return &handlerJob{over: make(chan struct{}, 1)} }
	return h
}

// run serves jobs on n goroutines until ctx ends (none: the servers keep
// go-coap's processing). It must be called once, before the servers start.
func (h *handlers) run(ctx context.Context, n int) *sync.WaitGroup {
	h.done, h.workers = ctx.Done(), n
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				select {
				case j := <-h.jobs:
					j.cc.ProcessReceivedMessageWithHandler(j.req, j.h)
					j.over <- struct{}{}
				case <-ctx.Done():
					return
				}
			}
		})
	}
	return &wg
}

// process is go-coap's ProcessReceivedMessage: it returns once the message
// is handled, as go-coap's in-flight deduplication expects.
func (h *handlers) process(req *pool.Message, cc *udpClient.Conn, handler config.HandlerFunc[*udpClient.Conn]) {
	if p := holdOf(cc); p != nil && p.busy.Swap(true) {
		cc.ProcessReceivedMessageWithHandler(req, handler) // a busy peer
		return
	}
	j := h.free.Get().(*handlerJob)
	j.req, j.cc, j.h = req, cc, handler
	select {
	case h.jobs <- j:
		<-j.over
	case <-h.done:
		cc.ProcessReceivedMessageWithHandler(req, handler)
	}
	j.req, j.cc, j.h = nil, nil, nil
	h.free.Put(j)
}

func (h *handlers) UDPServerApply(cfg *udpServer.Config) {
	if h.workers > 0 {
		cfg.ProcessReceivedMessage = h.process
	}
}

func (h *handlers) DTLSServerApply(cfg *dtlsServer.Config) {
	if h.workers > 0 {
		cfg.ProcessReceivedMessage = h.process
	}
}

// holdKey keys a peer connection's *peerHold in its context (set when
// go-coap makes the connection, see peerOpened).
type holdKey struct{}

// peerHold says whether a peer's state is worth keeping for
// Config.PeerIdle rather than Config.QuietPeerIdle.
type peerHold struct {
	// confirmable: the peer sent a confirmable request, whose
	// retransmissions go-coap answers from this state's cache.
	confirmable atomic.Bool
	// node is the node the gateway last talked to through this peer: held
	// while the gateway has requests in flight to it or observes it.
	node atomic.Pointer[node]
	// busy is set by the peer's first message (see handlers).
	busy atomic.Bool
}

func (h *peerHold) held() bool {
	if h.confirmable.Load() {
		return true
	}
	n := h.node.Load()
	return n != nil && !n.gone.Load() && (n.inflight.Load() > 0 || n.watched.Load())
}

// holdOf is cc's peerHold, nil for a conn go-coap made before peerOpened
// could mark it (then its peer is never held).
func holdOf(cc mux.Conn) *peerHold {
	h, _ := cc.Context().Value(holdKey{}).(*peerHold)
	return h
}

// peerIdle evicts go-coap's per-peer state after a silence (spoofed
// sources cannot grow memory without bound), but not while a confirmable
// is in flight: held peers after idle, the others (only NON requests seen,
// nothing go-coap keeps for them once answered) after quiet.
type peerIdle struct{ idle, quiet time.Duration }

func (p peerIdle) monitor() udpClient.InactivityMonitor {
	m := &peerMonitor{idle: p.idle, quiet: p.quiet}
	m.Notify()
	return udpClient.DeferInactivityWhileConfirmableMessagesPending(m)
}

func (p peerIdle) UDPServerApply(cfg *udpServer.Config) { cfg.CreateInactivityMonitor = p.monitor }

// DTLS sessions are always held: a handshake per beacon would cost more
// than the session.
func (p peerIdle) DTLSServerApply(cfg *dtlsServer.Config) {
	cfg.CreateInactivityMonitor = peerIdle{idle: p.idle, quiet: p.idle}.monitor
}

// peerMonitor is one peer's inactivity monitor (go-coap's keeps a
// time.Time in an atomic.Value: an allocation per datagram).
type peerMonitor struct {
	last        atomic.Int64 // UnixNano of the last activity
	idle, quiet time.Duration
}

// Notify records activity.
func (m *peerMonitor) Notify() { m.last.Store(time.Now().UnixNano()) }

// CheckInactivity closes cc after its silence limit.
func (m *peerMonitor) CheckInactivity(now time.Time, cc *udpClient.Conn) {
	limit := m.quiet
	if h := holdOf(cc); h != nil && h.held() {
		limit = m.idle
	}
	if now.UnixNano()-m.last.Load() > int64(limit) {
		_ = cc.Close()
	}
}

// peerCheck is how often go-coap looks for idle peers (its default is 4 s;
// each look walks every peer): the shortest idle time, between 100 ms and
// 4 s, so a quiet peer goes between one and two quiet times after its last
// datagram.
func peerCheck(quiet time.Duration) time.Duration {
	return min(max(quiet, 100*time.Millisecond), 4*time.Second)
}

// peerOpened counts the peers go-coap holds state for (Stats.Peers) and
// gives each its peerHold.
func (g *Gateway) peerOpened(cc *udpClient.Conn) {
	cc.SetContextValue(holdKey{}, new(peerHold))
	g.peers.Add(1)
	cc.AddOnClose(func() { g.peers.Add(-1) })
}
