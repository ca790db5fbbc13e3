package ws

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/gateways/presence"
	"github.com/goaiot/goaiot/internal/wspark"
)

// writeWait bounds one write to a node.
const writeWait = 10 * time.Second

// session is one node's connection.
type session struct {
	g      *Gateway
	c      *websocket.Conn
	pc     *wspark.Conn // c's connection, for the reader's waits
	id     string
	addr   string
	limits *limits // made at the node's first frame: an idle node sends none

	// Frames to the node wait in queue (at most SendQueue); a writer
	// goroutine runs only while there is something to write, and pings
	// go out from pc's timer (wspark.Conn.Every, the one that also ends a
	// parked read at its deadline), so an idle node costs no goroutine
	// and one timer (see send and drain).
	wmu     sync.Mutex
	queue   [][]byte
	writing bool

	// heard gets a sign of life while answers probes (nil otherwise: an
	// idle node keeps no channel for it).
	heard   atomic.Pointer[chan struct{}]
	probeMu sync.Mutex // one answers probe at a time

	done       chan struct{}
	closeOnce  sync.Once
	resumeFunc func() // resume, made once for every park

	lastAlive time.Time // used by the reader only
	why       string    // why the connection ended; the reader's

	mu        sync.Mutex
	resources map[string]bool         // made on first use: an idle node has none
	rejected  map[string]bool         // made on first use
	confirms  *presence.Confirmations // commands waiting for an update; made by the first command
}

// limits are a node's rate limits.
type limits struct {
	frames *rate.Limiter
	values *rate.Limiter // nil: no limit
}

func newSession(g *Gateway, c *websocket.Conn, pc *wspark.Conn, id, addr string) *session {
	s := &session{
		g: g, c: c, pc: pc, id: id, addr: addr,
		done: make(chan struct{}),
	}
	s.resumeFunc = s.resume
	return s
}

// limit returns the node's rate limits, made on first use; the reader's.
func (s *session) limit() *limits {
	if s.limits == nil {
		s.limits = &limits{
			frames: rate.NewLimiter(rate.Limit(s.g.cfg.FrameRate), s.g.cfg.FrameBurst),
			values: newValueLimiter(s.g.cfg.ValueRate, s.g.cfg.ValueBurst),
		}
	}
	return s.limits
}

// register claims the node on the bus (online $state, commands served),
// announces it and asks for its resources; false if the node was refused,
// its socket then closed. It runs on the handshake's goroutine, which ends
// afterwards: the registration's deep calls (publishing, logging) do not
// grow the stack of the reader goroutine that each idle node keeps.
func (s *session) register() bool {
	if _, err := s.g.tracker.Seen(s.id, s.addr); err != nil {
		s.logger().Warn("node refused", "err", err)
		code := websocket.CloseInternalServerErr
		if errors.Is(err, presence.ErrTooManyNodes) {
			code = websocket.CloseTryAgainLater
		}
		s.closeWith(code, err.Error())
		return false
	}
	_ = s.g.tracker.PublishCheck(s.id)
	s.pc.Every(s.g.cfg.PingInterval, s.sendPing)
	s.discover()
	return true
}

// serve waits for the node's next frames, then handles them (resume). It
// runs on a fresh goroutine each time, which starts at the process's
// average stack, so whatever stack handling took is not kept. It waits
// DefaultLinger with the goroutine (a busy node never parks), then, on
// Linux over plain TCP, parks the connection in the gateway's poller: no
// goroutine waits for an idle node. Where it cannot park it waits with
// the goroutine, shallowly, with no read buffer (package wspark).
func (s *session) serve() {
	if !s.pc.Await(s.g.poller, s.resumeFunc) {
		s.resume()
	}
}

// resume handles the frames that came and waits again, until the socket
// closes; then it takes the node offline and ends the session (g.wg). It
// runs after startReading.
func (s *session) resume() {
	if s.readSome() {
		go s.serve()
		return
	}
	s.end()
}

// end takes the node offline once its connection ended.
func (s *session) end() {
	s.finish()
	s.logger().Debug("node connection ended", "why", s.why)
	s.g.wg.Done()
}

// logger returns the gateway's logger with the node's id and address. It is
// made per use, not kept: a session logs rarely, and a kept one costs every
// idle node a copy of the handler's attributes.
func (s *session) logger() *slog.Logger {
	return s.g.log.With("node", s.id, "remote", s.addr)
}

func (s *session) finish() {
	s.closeWith(websocket.CloseNormalClosure, "")
	if s.g.detach(s) {
		s.g.tracker.Forget(s.id)
	}
}

// closeWith sends a close frame with code and reason (once) and closes the socket.
func (s *session) closeWith(code int, reason string) {
	s.closeOnce.Do(func() {
		if code != websocket.CloseNormalClosure && code != websocket.CloseGoingAway {
			s.logger().Info("closing node connection", "code", code, "reason", reason)
		}
		msg := websocket.FormatCloseMessage(code, truncate(reason, 123))
		_ = s.c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		close(s.done)
		_ = s.c.Close()
	})
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// alive records a sign of life, unless a newer connection took the node
// over. It runs on the read goroutine (frames, pings and pongs) and does the
// work at most every NodeTimeout/20, which keeps busy nodes cheap.
func (s *session) alive() {
	if heard := s.heard.Load(); heard != nil {
		select {
		case *heard <- struct{}{}:
		default:
		}
	}
	now := time.Now()
	if now.Sub(s.lastAlive) < s.g.cfg.NodeTimeout/20 {
		return
	}
	s.lastAlive = now
	_ = s.c.SetReadDeadline(now.Add(s.g.cfg.NodeTimeout))
	if s.g.session(s.id) == s {
		_, _ = s.g.tracker.Seen(s.id, s.addr)
	}
}

// answers pings the node and reports whether it shows a sign of life (a
// pong, a ping or a frame) within wait; false if its socket is closed.
func (s *session) answers(wait time.Duration) bool {
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	heard := make(chan struct{}, 1)
	s.heard.Store(&heard)
	defer s.heard.Store(nil)
	if err := s.c.WriteControl(websocket.PingMessage, []byte("id claimed"), time.Now().Add(wait)); err != nil {
		return false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-heard:
		return true
	case <-s.done:
	case <-t.C:
	}
	return false
}

// newValueLimiter allows perSecond values with bursts of burst; nil (no
// limit) when perSecond is negative.
func newValueLimiter(perSecond float64, burst int) *rate.Limiter {
	if perSecond < 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(perSecond), burst)
}

// startReading sets the read limit, the first read deadline and the ping
// and pong handlers; the reader renews the deadline (alive).
func (s *session) startReading() {
	s.c.SetReadLimit(s.g.cfg.MaxFrameBytes)
	_ = s.c.SetReadDeadline(time.Now().Add(s.g.cfg.NodeTimeout))
	s.c.SetPongHandler(func(string) error { s.alive(); return nil })
	s.c.SetPingHandler(func(data string) error {
		s.alive()
		err := s.c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeWait))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
}

// readSome handles the frames buffered after a wait (pings and pongs
// through wspark, the others through gorilla) until none is; false once
// the connection ended, s.why saying why.
func (s *session) readSome() bool {
	for {
		more, err := s.pc.Control(s.c)
		switch {
		case err != nil:
			s.why = s.readFailure(err)
			return false
		case !more:
			return true
		}
		if why, ok := s.readFrame(); !ok {
			s.why = why
			return false
		}
	}
}

// readFrame reads and handles one message; false, with the reason, if
// the connection failed or the frame closed it.
func (s *session) readFrame() (string, bool) {
	kind, data, err := s.c.ReadMessage()
	if err != nil {
		return s.readFailure(err), false
	}
	s.g.frames.Add(1)
	if !s.limit().frames.Allow() {
		s.closeWith(websocket.ClosePolicyViolation, fmt.Sprintf("more than %g frames/s", s.g.cfg.FrameRate))
		return "rate limit", false
	}
	s.alive()
	code, reason := websocket.CloseUnsupportedData, "binary frames are not accepted: send JSON text"
	if kind == websocket.TextMessage {
		code, reason = s.handle(data)
	}
	if code != 0 {
		s.g.bad.Add(1)
		s.closeWith(code, reason)
		return "bad frame: " + reason, false
	}
	return "", true
}

func (s *session) readFailure(err error) string {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		s.logger().Info("node closed its connection", "code", ce.Code, "reason", ce.Text)
		return "closed by node"
	case errors.Is(err, websocket.ErrReadLimit):
		s.logger().Info("node sent a frame too large", "max_bytes", s.g.cfg.MaxFrameBytes)
		s.g.bad.Add(1)
		s.closeWith(websocket.CloseMessageTooBig, "frame too large")
		return "frame too large"
	case errors.As(err, &ne) && ne.Timeout():
		s.logger().Info("node silent, closing", "timeout", s.g.cfg.NodeTimeout)
		s.closeWith(websocket.CloseGoingAway, "node timeout")
		return "silent"
	}
	return err.Error()
}

// frame is a message from a node.
type frame struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// handle processes one text frame; a non-zero code closes the socket.
func (s *session) handle(data []byte) (int, string) {
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		return websocket.CloseUnsupportedData, "not a JSON object with a type: " + err.Error()
	}
	switch f.Type {
	case "update":
		return s.update(f.Data)
	case "new", "out":
		return 0, "" // Pyaiot's test client announces itself with new; nothing to do
	case "reset":
		s.reset()
		return 0, ""
	case "":
		return websocket.CloseUnsupportedData, "message without type"
	}
	return websocket.CloseUnsupportedData, fmt.Sprintf("unknown message type %q", truncate(f.Type, 40))
}

// update publishes each resource: value pair of an update. Values too
// large for the bus, on resources past MaxResources or with bad names, or
// past the node's value rate are skipped, counted and logged; the socket
// stays open.
func (s *session) update(raw json.RawMessage) (int, string) {
	var pairs map[string]json.RawMessage
	if err := json.Unmarshal(raw, &pairs); err != nil || pairs == nil {
		return websocket.CloseUnsupportedData, `update data must be an object {"resource":"value",…}`
	}
	texts := make(map[string]string, len(pairs))
	names := make([]string, 0, len(pairs))
	for name, v := range pairs {
		text := valueText(v)
		if !fitsOnBus(text, s.g.cfg.MaxValueBytes) {
			s.skip(refusedValueTooLarge, "value skipped", "resource", truncate(name, 40), "bytes", len(text), "max_bytes", s.g.cfg.MaxValueBytes)
			continue
		}
		texts[name] = text
		names = append(names, name)
	}
	slices.Sort(names)
	accepted, added := s.accept(names)
	if added {
		s.publishResources()
	}
	for _, name := range accepted {
		if v := s.limit().values; v != nil && !v.Allow() {
			s.skip(refusedValueRate, "value skipped", "resource", name, "max_rate", s.g.cfg.ValueRate)
			continue
		}
		v := texts[name]
		if err := s.g.tracker.PublishValue(s.id, name, v); err != nil {
			s.logger().Warn("publish value", "resource", name, "err", err)
			continue
		}
		s.g.values.Add(1)
		s.answered(name, v)
	}
	return 0, ""
}

// skip counts a value skipped for why and logs it, at a bounded rate.
func (s *session) skip(why reason, msg string, args ...any) {
	s.g.skipped.Add(1)
	s.g.refuse(why, msg, append(args, "node", s.id, "remote", s.addr)...)
}

// accept returns the names that are valid resources (recording new ones)
// and whether any was new.
func (s *session) accept(names []string) (ok []string, added bool) {
	ok = names[:0]
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range names {
		if s.resources[name] {
			ok = append(ok, name)
			continue
		}
		why, err := refusedBadResource, bus.ValidateResource(name)
		if err == nil && len(s.resources) >= s.g.cfg.MaxResources {
			why, err = refusedResources, fmt.Errorf("resource %q: more than %d resources", name, s.g.cfg.MaxResources)
		}
		if err != nil {
			s.g.skipped.Add(1)
			s.g.refused[why].Add(1)
			if !s.rejected[name] && len(s.rejected) < 64 {
				if s.rejected == nil {
					s.rejected = make(map[string]bool)
				}
				s.rejected[name] = true
				s.logger().Warn("value skipped", "err", err, "reason", reasonNames[why])
			}
			continue
		}
		if s.resources == nil {
			s.resources = make(map[string]bool)
		}
		s.resources[name] = true
		ok = append(ok, name)
		added = true
	}
	return ok, added
}

// valueText is a value as published: a JSON string as the string, anything
// else as its compact JSON text.
func valueText(raw json.RawMessage) string {
	if len(raw) > 0 && raw[0] == '"' {
		var str string
		if json.Unmarshal(raw, &str) == nil {
			return str
		}
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

func (s *session) publishResources() {
	s.mu.Lock()
	names := make([]string, 0, len(s.resources))
	for n := range s.resources {
		names = append(names, n)
	}
	s.mu.Unlock()
	slices.Sort(names)
	if err := s.g.tracker.PublishResources(s.id, names); err != nil {
		s.logger().Warn("publish resources", "err", err)
	}
}

func (s *session) reset() {
	s.mu.Lock()
	clear(s.resources)
	s.mu.Unlock()
	s.g.tracker.Reset(s.id)
	s.discover()
}

// discover asks the node for all its values.
func (s *session) discover() {
	if !s.send(discoverFrame) {
		s.logger().Debug("discover request dropped: send queue full")
	}
}

// send queues a frame to the node without blocking; false if the queue
// is full or the socket closed.
func (s *session) send(b []byte) bool {
	select {
	case <-s.done:
		return false
	default:
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if len(s.queue) >= s.g.cfg.SendQueue {
		return false
	}
	s.queue = append(s.queue, b)
	if !s.writing {
		s.writing = true
		go s.drain()
	}
	return true
}

// drain writes the queued frames in order, then ends.
func (s *session) drain() {
	for {
		s.wmu.Lock()
		if len(s.queue) == 0 {
			s.queue, s.writing = nil, false // an idle node keeps no buffer
			s.wmu.Unlock()
			return
		}
		b := s.queue[0]
		s.queue[0], s.queue = nil, s.queue[1:]
		s.wmu.Unlock()
		_ = s.c.SetWriteDeadline(time.Now().Add(writeWait))
		if err := s.c.WriteMessage(websocket.TextMessage, b); err != nil {
			s.writeFailed(err)
			s.wmu.Lock()
			s.queue, s.writing = nil, false
			s.wmu.Unlock()
			return
		}
	}
}

// sendPing pings the node (gorilla allows a control frame beside another
// writer); pc's timer runs it every PingInterval until the socket closes.
func (s *session) sendPing() {
	select {
	case <-s.done:
		return
	default:
	}
	if err := s.c.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
		s.writeFailed(err)
	}
}

// writeFailed closes the socket: the read loop ends and takes the node
// offline.
func (s *session) writeFailed(err error) {
	s.logger().Debug("write to node", "err", err)
	_ = s.c.Close()
}

// errDisconnected ends the commands of a node whose socket closed.
var errDisconnected = errors.New("node disconnected")

// command sends a command and waits for the node's update of res, by the
// rule of package presence: an update carrying payload is the node's yes,
// another value not followed by payload within presence.DefaultConfirmGrace
// its no.
func (s *session) command(ctx context.Context, res, payload string) error {
	w := s.confirmations().Expect(s.id, res, []byte(payload))
	defer w.Done()
	b, err := json.Marshal(commandFrame{Endpoint: res, Payload: payload})
	if err != nil {
		return fmt.Errorf("command: %w", err)
	}
	if !s.send(b) {
		return errors.New("node send queue full or closed")
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-s.done:
			cancel(errDisconnected)
		case <-ctx.Done():
		}
	}()
	return w.Wait(ctx)
}

// answered hands value to the commands waiting for an update of res.
func (s *session) answered(res, value string) {
	s.mu.Lock()
	c := s.confirms
	s.mu.Unlock()
	if c != nil {
		c.Report(s.id, res, value)
	}
}

// confirmations returns the node's commands waiting for an update, made
// by the first command.
func (s *session) confirmations() *presence.Confirmations {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.confirms == nil {
		s.confirms = presence.NewConfirmations(0)
	}
	return s.confirms
}
