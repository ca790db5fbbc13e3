package dashboard

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/goaiot/goaiot/internal/wspark"
)

// compressMin is the smallest message worth compressing when the browser
// negotiated permessage-deflate: smaller ones go out as they are.
const compressMin = 512

// writeBatch is how many queued messages the writer takes at a time; the
// rest stay queued where a slow browser's updates can still be coalesced.
// It is also the default SlowAfter: a browser is behind when more wait
// than one write takes.
const writeBatch = 256

// maxBatchBytes bounds the payload of a frame of several messages.
const maxBatchBytes = 64 << 10

// maxWriteBuf is the largest write buffer put back in the pool shared by
// the browsers' writers.
const maxWriteBuf = 256 << 10

// client is one browser on /ws. Its reader handles frames from the browser;
// its writer (drain) sends the outbox, and runs only while frames wait, so
// that an idle browser costs one goroutine, not two; pings go out from
// pc's timer (wspark.Conn.Every), the one that also ends a parked read at
// its deadline. The writer sends a batch of queued frames in one write on the
// connection; every other write (close, ping, pong) holds wmu so that it
// never lands inside a batch.
type client struct {
	d       *Dashboard
	conn    *websocket.Conn
	pc      *wspark.Conn // conn's connection, for the reader's waits
	id      identity
	log     *slog.Logger
	out     *outbox
	limiter *rate.Limiter
	slots   chan struct{} // one per running command or history request
	deflate bool          // the browser offered permessage-deflate
	// ext: the browser asked for goaiot's extensions (/ws?ext=1, goaiot's
	// page). Without it, it gets exactly Pyaiot's protocol (doc.go).
	ext bool
	// batch: the browser asked for several messages per frame
	// (/ws?ext=1&batch=1, goaiot's page), one JSON object a line.
	batch bool
	wmu   chan struct{} // the write lock (a channel, to wait with a timeout)
	// deadline is the connection's write deadline as the writer last set
	// it; zero after another write (control frames) set its own. wmu.
	deadline time.Time
	// noDeadline: the socket has no write deadline (the flusher cleared
	// it); false once any write that waits set one. wmu.
	noDeadline bool

	resumeFunc func()          // resume, made once for every park
	writers    sync.WaitGroup  // the writer and the close frame's sender
	last       time.Time       // the end of the last write; the writer's
	raw        syscall.RawConn // the socket, for the flusher's writes (writenow.go); nil: none
	rest       []byte          // what the flusher could not write; the writer writes it first
	nb         nonblock        // the flusher's write in progress (writenow.go)
	// answered holds a token while an answer to the browser's own request
	// (send, answer) is queued and the writer has not seen it: the writer then
	// writes without WriteDelay, or stops waiting (capacity 1).
	answered chan struct{}
	pause    *time.Timer // the writer's WriteDelay; made on its first wait

	closeOnce sync.Once
	closing   chan struct{} // closed when the connection is to end
	closeCode int           // the close frame to send; 0: none
	closeText string
	tasks     sync.WaitGroup
}

// serveWS upgrades a request to a websocket and serves the browser until it
// leaves or is cut off.
func (d *Dashboard) serveWS(w http.ResponseWriter, r *http.Request) {
	if d.ctx.Err() != nil {
		http.Error(w, "dashboard stopping", http.StatusServiceUnavailable)
		return
	}
	if d.browsers.Load() >= int64(d.cfg.MaxBrowsers) {
		http.Error(w, "too many browsers", http.StatusServiceUnavailable)
		return
	}
	id, ok := d.identify(r)
	if !ok {
		d.m.unauth.Inc()
		d.log.Info("websocket refused: not logged in", "remote", r.RemoteAddr)
		http.Error(w, "log in first (POST /login)", http.StatusUnauthorized)
		return
	}
	pw := d.rbufs.Wrap(w)
	conn, err := d.upgrader.Upgrade(pw, r, nil)
	if err != nil {
		return // the upgrader answered the request
	}
	if pw.Conn() == nil { // gorilla upgraded a connection wspark did not wrap
		d.log.Warn("websocket upgrade without wspark's connection", "remote", r.RemoteAddr)
		_ = conn.Close()
		return
	}
	c := &client{
		d: d, conn: conn, pc: pw.Conn(), id: id,
		log:      d.log.With("browser", r.RemoteAddr, "user", id.user, "role", id.role),
		limiter:  rate.NewLimiter(rate.Limit(d.cfg.MessageRate), d.cfg.MessageBurst),
		slots:    make(chan struct{}, d.cfg.MaxInFlight),
		closing:  make(chan struct{}),
		wmu:      make(chan struct{}, 1),
		answered: make(chan struct{}, 1),
		deflate:  strings.Contains(strings.ToLower(strings.Join(r.Header.Values("Sec-WebSocket-Extensions"), ",")), "permessage-deflate"),
	}
	c.out = newOutbox(d.cfg.QueueLimit, d.cfg.SlowAfter, c.startWriter)
	if c.raw = rawConn(c.pc.Conn); c.raw != nil {
		c.out.claimNow = c.claimNow
		c.nb.write = c.nb.writeTo
	}
	c.resumeFunc = c.resume
	q := r.URL.Query()
	c.ext = q.Get("ext") == "1"
	c.batch = c.ext && q.Get("batch") == "1"

	conn.SetPingHandler(func(data string) error {
		c.control(websocket.PongMessage, []byte(data))
		return nil
	})
	conn.SetCloseHandler(func(code int, _ string) error {
		if code == websocket.CloseNoStatusReceived {
			code = websocket.CloseNormalClosure
		}
		c.control(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""))
		return nil
	})
	if !d.track(c) {
		_ = conn.Close()
		return
	}
	// Served parked, or on a goroutine of its own: the HTTP server's
	// goroutine ends, and with it the handshake's buffers and its deep
	// stack.
	c.start()
	go c.serve()
}

// track registers c unless the dashboard is stopping.
func (d *Dashboard) track(c *client) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx.Err() != nil {
		return false
	}
	d.conns[c] = struct{}{}
	d.clients.Add(1)
	d.m.browsers.Set(float64(d.browsers.Add(1)))
	return true
}

func (d *Dashboard) untrack(c *client) {
	d.mu.Lock()
	delete(d.conns, c)
	d.mu.Unlock()
	d.m.browsers.Set(float64(d.browsers.Add(-1)))
	d.clients.Done()
}

// start says hello, starts the pings and sets the reader's deadline and
// pong handler; serve reads.
func (c *client) start() {
	c.log.Debug("browser connected")
	c.pc.Every(c.d.cfg.PingInterval, c.sendPing)
	c.send(mustFrame(helloMsg{Type: typeHello, Server: "goaiot", Version: c.d.cfg.Version,
		Role: c.id.role, User: c.id.user, Login: c.d.cfg.Users != nil, Batch: c.batch}, "", false))
	pongWait := c.d.cfg.PingInterval * 5 / 2
	_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error {
		select {
		case <-c.closing:
			return nil
		default:
			return c.conn.SetReadDeadline(time.Now().Add(pongWait))
		}
	})
}

// serve waits for the browser's next frames, then handles them
// (resume). It runs on a fresh goroutine each time, which starts at the
// process's average stack, so whatever stack handling took is not kept.
// It waits DefaultLinger with the goroutine (a busy browser never parks),
// then, on Linux over plain TCP, parks the connection in the dashboard's
// poller: no goroutine waits for an idle browser. Where it cannot park it
// waits with the goroutine, shallowly, with no read buffer (package
// wspark).
func (c *client) serve() {
	if !c.pc.Await(c.d.poller, c.resumeFunc) {
		c.resume()
	}
}

// resume handles the frames that came and waits again, until the
// connection ends; then it ends the browser (end).
func (c *client) resume() {
	if c.readSome() {
		go c.serve()
		return
	}
	c.end()
}

// end lets the browser go once its connection ended.
func (c *client) end() {
	c.d.hub.unsubscribe(c)
	n, later := c.out.close() // no writer starts after this
	if n > 0 {
		c.d.m.dropped.Add(float64(n))
	}
	if later { // the flusher's claim ended here: its count too
		c.writers.Done()
	}
	c.closeWith(0, "")
	_ = c.conn.Close()
	c.writers.Wait()
	c.tasks.Wait()
	c.log.Debug("browser gone")
	c.d.untrack(c)
}

// cut closes the browser from the server side. It never blocks: the writer
// sends the close frame after the write in progress, then the connection
// ends once the browser answered, or a second later.
func (c *client) cut(reason string) {
	code, text := websocket.CloseTryAgainLater, "too slow: messages piled up"
	switch reason {
	case cutStopping:
		code, text = websocket.CloseGoingAway, "dashboard stopping"
	case cutStuck:
		code, text = websocket.CloseTryAgainLater, "too slow: write timed out"
	}
	if c.closeWith(code, text) {
		c.d.m.cut.WithLabelValues(reason).Inc()
		c.log.Info("browser cut off", "reason", reason)
	}
}

// refuse closes the connection because of what the browser sent.
func (c *client) refuse(code int, text, reason string) {
	if c.closeWith(code, text) {
		c.d.m.cut.WithLabelValues(reason).Inc()
		c.log.Info("browser refused", "code", code, "reason", text)
	}
}

// closeWith stops the writer and sends a close frame with code and text
// after the write in progress (code 0: the connection is gone, send
// nothing). Only the first call counts.
func (c *client) closeWith(code int, text string) bool {
	first := false
	c.closeOnce.Do(func() {
		c.closeCode, c.closeText, first = code, text, true
		close(c.closing)
		if code != 0 {
			c.writers.Add(1)
			go func() {
				defer c.writers.Done()
				c.writeClose()
			}()
		}
	})
	return first
}

// writeClose sends the close frame chosen by closeWith and gives the
// browser a second to answer it.
func (c *client) writeClose() {
	if c.closeCode == 0 {
		return
	}
	c.wmu <- struct{}{}
	err := c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.closeCode, c.closeText),
		time.Now().Add(c.d.cfg.WriteTimeout))
	c.otherDeadline()
	<-c.wmu
	if err != nil {
		_ = c.conn.Close()
		return
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(time.Second))
}

// control writes a control frame (pong, the answer to the browser's close)
// unless the writer holds the connection for more than a second.
func (c *client) control(typ int, data []byte) {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case c.wmu <- struct{}{}:
	case <-t.C:
		return
	}
	defer func() { <-c.wmu }()
	_ = c.conn.WriteControl(typ, data, time.Now().Add(time.Second))
	c.otherDeadline()
}

// readSome handles the frames buffered after a wait (pings and pongs
// through wspark, the others through gorilla) until none is; false once
// the connection ended. Once the server closes, the reader stays in
// gorilla until the browser answers, or a second passes: wspark reads
// only at message boundaries, which a refused message may not reach.
func (c *client) readSome() bool {
	for {
		select {
		case <-c.closing:
			for c.readMessage() {
			}
			return false
		default:
		}
		more, err := c.pc.Control(c.conn)
		switch {
		case err != nil:
			return false
		case !more:
			return true
		}
		if !c.readMessage() {
			return false
		}
	}
}

// readMessage reads and handles one message from the browser; false if
// the connection ended (closed, timed out, or the browser's close
// answered ours).
func (c *client) readMessage() bool {
	typ, r, err := c.conn.NextReader()
	if err != nil {
		return false
	}
	select {
	case <-c.closing:
		return true // drain until the browser answers our close
	default:
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(c.d.cfg.PingInterval * 5 / 2))
	if typ != websocket.TextMessage {
		c.refuse(websocket.CloseUnsupportedData, "binary frames are not supported", cutBadFrame)
		return true
	}
	b, err := io.ReadAll(io.LimitReader(r, int64(c.d.cfg.MaxMessageBytes)+1))
	if err != nil {
		return false
	}
	if len(b) > c.d.cfg.MaxMessageBytes {
		c.refuse(websocket.CloseUnsupportedData, "message too big", cutBadFrame)
		return true
	}
	if !c.limiter.Allow() {
		c.refuse(websocket.ClosePolicyViolation, "too many messages", cutRate)
		return true
	}
	req, err := decodeRequest(b, c.d.cfg.MaxHistory)
	if err != nil {
		c.refuse(websocket.CloseUnsupportedData, err.Error(), cutBadFrame)
		return true
	}
	c.handle(req)
	return true
}

func (c *client) handle(req request) {
	switch req.kind {
	case typeNew:
		select {
		case <-c.d.ready:
		case <-c.closing:
			return
		}
		c.d.hub.subscribe(c)
	case typeUpdate:
		c.run(req, c.d.command)
	case typeHistory:
		c.run(req, c.d.history)
	}
}

// run answers req in the background, within the browser's in-flight limit;
// the answer is queued for this browser only.
func (c *client) run(req request, answer func(*client, request) *frame) {
	select {
	case c.slots <- struct{}{}:
	default:
		c.send(c.d.busy(req))
		return
	}
	c.tasks.Add(1)
	go func() {
		defer c.tasks.Done()
		f := answer(c, req)
		<-c.slots
		c.answer(f)
	}()
}

// answer queues f, the answer to one of the browser's requests, from the
// goroutine that made it, and writes it from there too when no writer
// runs: the browser waits for it, and starting a writer goroutine is one
// hand-over more.
func (c *client) answer(f *frame) {
	if f.ext && !c.ext {
		return
	}
	r, write := c.out.pushClaim(f, func() { c.writers.Add(1) })
	c.hurry()
	if r == overflow {
		c.cut(cutSlow)
	}
	if write {
		defer c.writers.Done()
		c.drain()
	}
}

// send queues a message for this browser only (an extension message only
// if it asked for them), an answer of sorts (hello, busy): it is written
// without WriteDelay.
func (c *client) send(f *frame) {
	if f.ext && !c.ext {
		return
	}
	r := c.out.push(f)
	c.hurry()
	if r == overflow {
		c.cut(cutSlow)
	}
}

// hurry tells the writer that an answer is queued: it writes without
// WriteDelay. Called after the push, so that the writer that takes the
// token finds the answer queued.
func (c *client) hurry() {
	select {
	case c.answered <- struct{}{}:
	default:
	}
}

// startWriter starts the writer; the outbox calls it when frames come and
// none runs.
func (c *client) startWriter() {
	c.writers.Add(1)
	go func() {
		defer c.writers.Done()
		c.drain()
	}()
}

// drain sends queued messages until none is left, or the connection
// ends. A browser that gets values often gets a new writer each time;
// goroutines are cheap to start, and an idle browser keeps none.
func (c *client) drain() {
	for {
		if wait := writeWait(c.d.cfg.WriteDelay, time.Since(c.last), c.tookAnswer()); wait > 0 {
			c.delay(wait) // under load: what comes meanwhile joins this write
		}
		if err := c.writeQueued(); err != nil {
			c.writeFailed(err)
			return // still counted as writing: no other writer starts
		}
		if c.out.idle() {
			return
		}
		select {
		case <-c.closing:
			return
		default:
		}
	}
}

// tookAnswer takes the answered token, if any.
func (c *client) tookAnswer() bool {
	select {
	case <-c.answered:
		return true
	default:
		return false
	}
}

// delay waits for d, or until an answer is queued or the connection is to
// end. The writer's.
func (c *client) delay(d time.Duration) {
	if c.pause == nil {
		c.pause = time.NewTimer(d)
	} else {
		c.pause.Reset(d)
	}
	select {
	case <-c.pause.C:
		return
	case <-c.answered:
	case <-c.closing:
	}
	c.pause.Stop()
}

// writeWait is how long the writer waits before writing, the last write
// having ended since ago: the rest of delay, so that what comes meanwhile
// joins the write; nothing when the browser was quiet for delay, or when
// an answer to its own request (a command's result, a history) waits: the
// browser waits for it.
func writeWait(delay, since time.Duration, answer bool) time.Duration {
	if answer || delay <= 0 || since >= delay {
		return 0
	}
	return delay - since
}

// writeQueued writes what is queued, a batch at a time.
func (c *client) writeQueued() error {
	if err := c.writeRest(); err != nil {
		return err
	}
	bp := c.d.batches.Get().(*[]*frame)
	defer c.d.batches.Put(bp)
	for batch := c.out.take((*bp)[:0], writeBatch); len(batch) > 0; batch = c.out.take(batch[:0], writeBatch) {
		if err := c.writeFrames(batch); err != nil {
			c.d.m.dropped.Add(float64(len(batch))) // taken, not (all) written
			clear(batch)
			return err
		}
		c.last = time.Now()
	}
	return nil
}

// sendPing pings the browser; pc's timer runs it every PingInterval until
// the connection closes.
func (c *client) sendPing() {
	select {
	case <-c.closing:
		return
	default:
	}
	c.wmu <- struct{}{}
	err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.d.cfg.WriteTimeout))
	c.otherDeadline()
	<-c.wmu
	if err != nil {
		c.writeFailed(err)
	}
}

// errClosing stops the writer once the server decided to close.
var errClosing = errors.New("closing")

// lockWrite takes the write lock (wmu) and sets the write deadline, unless
// the server decided to close; the caller gives wmu back.
func (c *client) lockWrite() (time.Time, error) {
	select {
	case <-c.closing:
		return time.Time{}, errClosing
	default:
	}
	c.wmu <- struct{}{}
	deadline, err := c.writeDeadline()
	if err != nil {
		<-c.wmu
		return time.Time{}, err
	}
	return deadline, nil
}

func (c *client) writeFrames(batch []*frame) error {
	deadline, err := c.lockWrite()
	if err != nil {
		return err
	}
	defer func() { <-c.wmu }()
	bp := c.d.wbufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxWriteBuf {
			c.d.wbufs.Put(bp)
		}
	}()
	buf := (*bp)[:0]
	run := 0 // the start of the frames not yet in buf
	for i, f := range batch {
		if !c.deflate || f.size() < compressMin {
			continue
		}
		if err := c.flush(c.appendFrames(buf, batch[run:i])); err != nil {
			return err
		}
		buf = buf[:0]
		if err := c.writeCompressed(f, deadline); err != nil {
			return err
		}
		run = i + 1
	}
	buf = c.appendFrames(buf, batch[run:])
	*bp = buf
	if err := c.flush(buf); err != nil {
		return err
	}
	c.d.m.framesOut.Add(float64(len(batch)))
	clear(batch)
	return nil
}

// appendFrames appends frames to buf as this browser takes them: one
// websocket frame each, or, for a browser that asked for batches, frames
// of several messages, a line each, of at most maxBatchBytes (a larger
// message goes alone).
func (c *client) appendFrames(buf []byte, frames []*frame) []byte {
	if !c.batch {
		for _, f := range frames {
			buf = append(buf, f.bytes()...)
		}
		return buf
	}
	for len(frames) > 0 {
		n, size := 1, frames[0].size()
		for n < len(frames) && size+1+frames[n].size() <= maxBatchBytes {
			size += 1 + frames[n].size()
			n++
		}
		if n == 1 {
			buf = append(buf, frames[0].bytes()...)
		} else {
			buf = appendBatch(buf, frames[:n])
		}
		frames = frames[n:]
	}
	return buf
}

// otherDeadline notes that a write other than the writer's (a control
// frame) set the socket's write deadline, or that it is unknown. wmu.
func (c *client) otherDeadline() { c.deadline, c.noDeadline = time.Time{}, false }

// clearDeadline removes the write deadline a write that waits left on the
// socket, for the flusher's non-blocking writes: a deadline that passed
// would fail them, though they never wait. wmu.
func (c *client) clearDeadline() error {
	if c.noDeadline {
		return nil
	}
	if err := c.conn.NetConn().SetWriteDeadline(time.Time{}); err != nil {
		return err
	}
	c.deadline, c.noDeadline = time.Time{}, true
	return nil
}

// writeDeadline returns the connection's write deadline, set again only
// when less than WriteTimeout is left (to now plus 1.5 WriteTimeout): a
// browser that accepts no data is cut off after WriteTimeout to 1.5
// WriteTimeout, and the writer spares a deadline update per write. wmu.
func (c *client) writeDeadline() (time.Time, error) {
	now := time.Now()
	if c.deadline.Sub(now) >= c.d.cfg.WriteTimeout {
		return c.deadline, nil
	}
	c.deadline, c.noDeadline = now.Add(c.d.cfg.WriteTimeout*3/2), false
	if err := c.conn.NetConn().SetWriteDeadline(c.deadline); err != nil {
		c.otherDeadline()
		return time.Time{}, err
	}
	return c.deadline, nil
}

// flush writes complete frames straight to the connection, whose write
// deadline is set.
func (c *client) flush(buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	_, err := c.conn.NetConn().Write(buf)
	return err
}

// writeCompressed sends f through gorilla, compressed once for all browsers.
func (c *client) writeCompressed(f *frame, deadline time.Time) error {
	pm, err := f.prepared()
	if err != nil {
		return err
	}
	if err := c.conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	return c.conn.WritePreparedMessage(pm)
}

func (c *client) writeFailed(err error) {
	if errors.Is(err, errClosing) || errors.Is(err, websocket.ErrCloseSent) || errors.Is(err, net.ErrClosed) {
		return
	}
	c.cut(cutStuck)
	_ = c.conn.Close() // the browser takes no data: do not wait for its close
}
