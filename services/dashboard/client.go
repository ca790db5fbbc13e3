package dashboard

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// compressMin is the smallest message worth compressing when the browser
// negotiated permessage-deflate: smaller ones go out as they are.
const compressMin = 512

// writeBatch is how many queued messages the writer takes at a time; the
// rest stay queued where a slow browser's updates can still be coalesced.
const writeBatch = 64

// client is one browser on /ws. Its reader handles frames from the browser;
// its writer sends the outbox, pings, and nothing else writes data frames.
type client struct {
	d       *Dashboard
	conn    *websocket.Conn
	log     *slog.Logger
	out     *outbox
	limiter *rate.Limiter
	slots   chan struct{} // one per running command or history request

	closeOnce sync.Once
	closing   chan struct{} // closed when the server decided to close
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
	conn, err := d.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered the request
	}
	c := &client{
		d: d, conn: conn, out: newOutbox(d.cfg.QueueLimit, d.cfg.SlowAfter),
		log:     d.log.With("browser", r.RemoteAddr),
		limiter: rate.NewLimiter(rate.Limit(d.cfg.MessageRate), d.cfg.MessageBurst),
		slots:   make(chan struct{}, d.cfg.MaxInFlight),
		closing: make(chan struct{}),
	}
	if !d.track(c) {
		_ = conn.Close()
		return
	}
	defer d.untrack(c)
	c.serve()
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

func (c *client) serve() {
	c.log.Debug("browser connected")
	c.out.push(c.d.hello)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.write()
	}()
	c.read()
	c.d.hub.unsubscribe(c)
	if n := c.out.close(); n > 0 {
		c.d.m.dropped.Add(float64(n))
	}
	c.closeOnce.Do(func() { close(c.closing) })
	_ = c.conn.Close()
	<-writerDone
	c.tasks.Wait()
	c.log.Debug("browser gone")
}

// cut closes the browser from the server side: a close frame with the
// reason, then the connection once the browser answered (or after a second).
// It never blocks.
func (c *client) cut(reason string) {
	c.closeOnce.Do(func() {
		close(c.closing)
		code, text := websocket.CloseTryAgainLater, "too slow: messages piled up"
		switch reason {
		case cutStopping:
			code, text = websocket.CloseGoingAway, "dashboard stopping"
		case cutStuck:
			code, text = websocket.CloseTryAgainLater, "too slow: write timed out"
		}
		c.d.m.cut.WithLabelValues(reason).Inc()
		c.log.Info("browser cut off", "reason", reason)
		go c.sendClose(code, text)
	})
}

// sendClose writes a close frame and gives the browser a second to answer.
func (c *client) sendClose(code int, text string) {
	deadline := time.Now().Add(time.Second)
	_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), deadline)
	_ = c.conn.SetReadDeadline(deadline)
}

// refuse closes the connection because of what the browser sent.
func (c *client) refuse(code int, reason, metric string) {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.d.m.cut.WithLabelValues(metric).Inc()
		c.log.Info("browser refused", "code", code, "reason", reason)
		c.sendClose(code, reason)
	})
}

// read handles frames from the browser until the connection ends.
func (c *client) read() {
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
	for {
		typ, r, err := c.conn.NextReader()
		if err != nil {
			return // closed, timed out, or the browser's close answered ours
		}
		select {
		case <-c.closing:
			continue // drain until the browser answers our close
		default:
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
		if typ != websocket.TextMessage {
			c.refuse(websocket.CloseUnsupportedData, "binary frames are not supported", cutBadFrame)
			continue
		}
		b, err := io.ReadAll(io.LimitReader(r, int64(c.d.cfg.MaxMessageBytes)+1))
		if err != nil {
			return
		}
		if len(b) > c.d.cfg.MaxMessageBytes {
			c.refuse(websocket.CloseUnsupportedData, "message too big", cutBadFrame)
			continue
		}
		if !c.limiter.Allow() {
			c.refuse(websocket.ClosePolicyViolation, "too many messages", cutRate)
			continue
		}
		req, err := decodeRequest(b, c.d.cfg.MaxHistory)
		if err != nil {
			c.refuse(websocket.CloseUnsupportedData, err.Error(), cutBadFrame)
			continue
		}
		c.handle(req)
	}
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
		defer func() { <-c.slots }()
		c.send(answer(c, req))
	}()
}

// send queues a message for this browser only.
func (c *client) send(f *frame) {
	if c.out.push(f) == overflow {
		c.cut(cutSlow)
	}
}

// write sends queued messages and pings until the connection ends.
func (c *client) write() {
	ping := time.NewTicker(c.d.cfg.PingInterval)
	defer ping.Stop()
	batch := make([]*frame, 0, writeBatch)
	for {
		select {
		case <-c.closing:
			return
		case <-ping.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.d.cfg.WriteTimeout)); err != nil {
				c.writeFailed(err)
				return
			}
		case <-c.out.ready:
			for batch = c.out.take(batch[:0], writeBatch); len(batch) > 0; batch = c.out.take(batch[:0], writeBatch) {
				if err := c.writeFrames(batch); err != nil {
					c.writeFailed(err)
					return
				}
			}
		}
	}
}

// errClosing stops the writer once the server decided to close.
var errClosing = errors.New("closing")

func (c *client) writeFrames(batch []*frame) error {
	for _, f := range batch {
		select {
		case <-c.closing:
			return errClosing
		default:
		}
		if err := c.conn.SetWriteDeadline(time.Now().Add(c.d.cfg.WriteTimeout)); err != nil {
			return err
		}
		c.conn.EnableWriteCompression(f.size >= compressMin)
		if err := c.conn.WritePreparedMessage(f.pm); err != nil {
			return err
		}
	}
	c.d.m.framesOut.Add(float64(len(batch)))
	clear(batch)
	return nil
}

func (c *client) writeFailed(err error) {
	if errors.Is(err, errClosing) || errors.Is(err, websocket.ErrCloseSent) || errors.Is(err, net.ErrClosed) {
		return
	}
	c.cut(cutStuck)
	_ = c.conn.Close() // the browser takes no data: do not wait for its close
}
