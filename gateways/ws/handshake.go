package ws

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/goaiot/goaiot/bus"
)

// errIDInUse refuses a connection claiming an id whose older connection
// still answers.
var errIDInUse = errors.New("id in use")

// errStopping refuses a connection while the gateway shuts down.
var errStopping = errors.New("gateway stopping")

// refusal is a handshake refused before the upgrade: an HTTP status, the
// reason's counter and the text sent back.
type refusal struct {
	status int
	why    reason
	err    error
}

// ServeHTTP admits a node's handshake, upgrades it, claims its id and
// serves it until it closes.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.stopped() {
		http.Error(w, errStopping.Error(), http.StatusServiceUnavailable)
		return
	}
	id, proven, ref := g.admit(r)
	if ref != nil {
		g.refuse(ref.why, "websocket node handshake refused", "err", ref.err, "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"))
		if ref.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="aiot-node"`)
		}
		http.Error(w, ref.err.Error(), ref.status)
		return
	}
	pw := g.bufs.Wrap(w)
	c, err := g.upgrader.Upgrade(pw, r, nil)
	if err != nil {
		g.log.Debug("websocket upgrade", "remote", r.RemoteAddr, "err", err) // Upgrade answered already
		return
	}
	if pw.Conn() == nil { // gorilla upgraded a connection wspark did not wrap
		g.log.Warn("websocket upgrade without wspark's connection", "remote", r.RemoteAddr)
		_ = c.Close()
		return
	}
	s := newSession(g, c, pw.Conn(), id, r.RemoteAddr)
	if err := g.claim(s, proven); err != nil {
		code := websocket.CloseGoingAway
		if errors.Is(err, errIDInUse) {
			code = websocket.ClosePolicyViolation
			g.refuse(refusedIDInUse, "websocket node refused", "node", id, "remote", r.RemoteAddr, "err", err)
		}
		s.closeWith(code, err.Error())
		return
	}
	if !s.register() {
		s.finish()
		g.wg.Done()
		return
	}
	// The session's reader parks, or runs on a goroutine of its own, and
	// ServeHTTP returns, so that net/http lets go of the connection's 4 KiB
	// read and write buffers (a hijacked connection keeps them for as long
	// as its handler runs); the reader ends with g.wg.Done.
	s.startReading()
	go s.serve()
}

// admit runs the checks made before the upgrade, in order: origin, id,
// token, new ids per source. It returns the node id and whether the node
// proved it with its token, or why the handshake is refused.
func (g *Gateway) admit(r *http.Request) (id string, proven bool, ref *refusal) {
	if !g.origins.Allow(r) {
		return "", false, &refusal{http.StatusForbidden, refusedOrigin,
			fmt.Errorf("origin %q may not open /node (not this host, not allowed)", r.Header.Get("Origin"))}
	}
	id = r.URL.Query().Get("id")
	if id == "" {
		id = uuid.NewString()
	} else if err := bus.ValidateNodeID(id); err != nil {
		return "", false, &refusal{http.StatusBadRequest, refusedBadID, fmt.Errorf("bad ?id=: %w", err)}
	}
	if g.cfg.Tokens.listed(id) {
		if !g.cfg.Tokens.check(id, presentedToken(r)) {
			return "", false, &refusal{http.StatusUnauthorized, refusedToken,
				fmt.Errorf("node %s connects only with its token (?token= or Authorization: Bearer)", id)}
		}
		return id, true, nil
	}
	if g.session(id) == nil && !g.newIDs.Allow(sourceAddr(r.RemoteAddr)) {
		return "", false, &refusal{http.StatusTooManyRequests, refusedNewIDRate,
			fmt.Errorf("more than %g new node ids/s from %s", g.cfg.NewIDsPerSource, sourceAddr(r.RemoteAddr))}
	}
	return id, false, nil
}

// refuse counts a refusal and logs it, at a bounded rate.
func (g *Gateway) refuse(why reason, msg string, args ...any) {
	g.refused[why].Add(1)
	g.lines.Warn(msg, append(args, "reason", reasonNames[why])...)
}

func (g *Gateway) stopped() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// claim registers s as its node's connection. A connection that proved its
// id with a token replaces an older one at once; otherwise the older one is
// pinged and kept if it answers within TakeoverWait (errIDInUse), replaced
// if not. The caller calls g.wg.Done when a claimed session ends.
func (g *Gateway) claim(s *session, proven bool) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return errStopping
	}
	old := g.sessions[s.id]
	if old == nil || proven {
		g.register(s)
		g.mu.Unlock()
		g.replaced(old, s, "replaced by a newer connection with the node's token")
		return nil
	}
	g.mu.Unlock()
	if old.answers(g.cfg.TakeoverWait) {
		return errIDInUse
	}
	if err := g.registerAfter(s, old); err != nil {
		return err
	}
	g.replaced(old, s, "replaced: this connection did not answer a ping")
	return nil
}

// registerAfter registers s unless the gateway stopped or a connection
// other than old holds the id now.
func (g *Gateway) registerAfter(s, old *session) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch cur := g.sessions[s.id]; {
	case g.closed:
		return errStopping
	case cur != nil && cur != old:
		return errIDInUse // another connection took the id meanwhile
	}
	g.register(s)
	return nil
}

// register makes s its node's connection; g.mu is held.
func (g *Gateway) register(s *session) {
	g.sessions[s.id] = s
	g.wg.Add(1)
	g.conns.Add(1)
}

// replaced closes old, if any, after s took its node over.
func (g *Gateway) replaced(old, s *session, reason string) {
	if old == nil {
		return
	}
	g.takeovers.Add(1)
	g.log.Info("node reconnected, closing its older connection", "node", s.id, "old", old.addr, "new", s.addr, "why", reason)
	old.closeWith(websocket.ClosePolicyViolation, reason)
}
