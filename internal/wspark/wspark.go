package wspark

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// DefaultLinger is how long a reader may wait with its goroutine (Linger)
// before it parks: longer than the gaps of a connection that sends a few
// frames a second, which then never parks, short beside the seconds
// between an idle connection's pings.
const DefaultLinger = 250 * time.Millisecond

// Buffers lends read buffers to the connections that are reading. Its
// zero value is not usable: make one with NewBuffers.
type Buffers struct {
	size int
	pool sync.Pool // of *bufio.Reader
}

// NewBuffers returns a pool of read buffers of size bytes, at least 512:
// gorilla reads through a hijacked reader only if it is larger than 256
// bytes, and Control peeks at whole control frames (up to 131 bytes).
func NewBuffers(size int) *Buffers {
	size = max(size, 512)
	b := &Buffers{size: size}
	b.pool.New = func() any { return bufio.NewReaderSize(nil, size) }
	return b
}

// ResponseWriter is an http.ResponseWriter whose Hijack returns a *Conn.
type ResponseWriter struct {
	http.ResponseWriter
	bufs *Buffers
	conn *Conn
}

// Wrap returns w with a Hijack that makes a *Conn.
func (b *Buffers) Wrap(w http.ResponseWriter) *ResponseWriter {
	return &ResponseWriter{ResponseWriter: w, bufs: b}
}

// Unwrap returns the wrapped ResponseWriter (for http.ResponseController).
func (w *ResponseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack takes the connection over from the HTTP server, as
// http.Hijacker, and returns it as a *Conn with a reader from the pool. A
// connection with bytes already buffered (a client that did not wait for
// the handshake's answer) is returned as it is: gorilla refuses it.
func (w *ResponseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijack: %w", err)
	}
	if brw.Reader.Buffered() > 0 {
		return nc, brw, nil
	}
	c := &Conn{Conn: nc, bufs: w.bufs, br: new(bufio.Reader)}
	c.lend()
	w.conn = c
	return c, bufio.NewReadWriter(c.br, brw.Writer), nil
}

// Conn returns the connection Hijack made; nil if it made none.
func (w *ResponseWriter) Conn() *Conn { return w.conn }

// Conn is a hijacked connection read through a reader whose buffer is
// lent while the connection is read. Wait and Control are for the reading
// goroutine only; the other methods are net.Conn's.
type Conn struct {
	net.Conn
	bufs    *Buffers
	br      *bufio.Reader // the reader gorilla reads through
	lent    *bufio.Reader // the pooled reader whose buffer br uses; nil while waiting
	err     error         // the first read error, returned by every later Read
	stash   [1]byte       // the byte Wait read
	stashed bool
	park    park // the registration in a Poller (park_linux.go)
}

// Read reads the byte Wait read first, then the connection. After an
// error, it returns that error.
func (c *Conn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.stashed && len(p) > 0 {
		p[0], c.stashed = c.stash[0], false
		return 1, nil
	}
	n, err := c.Conn.Read(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

// lend gives br the buffer of a pooled reader.
func (c *Conn) lend() {
	c.lent = c.bufs.pool.Get().(*bufio.Reader)
	c.lent.Reset(c)
	*c.br = *c.lent
}

// release gives br's buffer back to the pool; nothing may be buffered.
func (c *Conn) release() {
	*c.br = bufio.Reader{}
	c.bufs.pool.Put(c.lent)
	c.lent = nil
}

// Wait blocks until the connection has a byte to read or failed (the
// error is left for gorilla's next read). While it blocks, the connection
// holds no read buffer. Call it at a message boundary.
func (c *Conn) Wait() {
	if c.br.Buffered() > 0 || c.stashed || c.err != nil {
		return
	}
	c.release()
	defer c.lend()
	c.readStash()
}

// Await waits for the connection's next bytes at a message boundary:
// Linger with DefaultLinger, then Park in p, else Wait. True: it parked,
// and resume runs on a new goroutine once bytes come; false: bytes (or an
// error) are here, the caller handles them.
func (c *Conn) Await(p *Poller, resume func()) bool {
	if c.Linger(p, DefaultLinger) {
		return false
	}
	if c.Park(p, resume) {
		return true
	}
	c.Wait()
	return false
}

// readStash blocks reading one byte into the stash, keeping an error for
// gorilla's next read. No buffer is lent.
func (c *Conn) readStash() {
	n, err := c.Conn.Read(c.stash[:])
	c.stashed = n > 0
	if err != nil {
		c.err = err
	}
}

// The control frames that Control answers: final, no extension bits.
const (
	finPing = 0x80 | websocket.PingMessage
	finPong = 0x80 | websocket.PongMessage
)

// maxControl is the largest payload of a control frame.
const maxControl = 125

// Control answers the ping and pong frames at the head of the buffer, as
// gorilla would, with ws's ping and pong handlers, and reports whether
// gorilla has something to read next: a frame, or the read error. False:
// nothing is buffered. A handler's error is returned, as gorilla's
// NextReader would. Call it at a message boundary only (after a message
// was read to its end): elsewhere the buffer starts inside a frame.
func (c *Conn) Control(ws *websocket.Conn) (bool, error) {
	for {
		if c.br.Buffered() == 0 && !c.stashed {
			return c.err != nil, nil
		}
		op, payload, ok := c.peekControl()
		if !ok {
			return true, nil
		}
		handle := ws.PongHandler()
		if op == finPing {
			handle = ws.PingHandler()
		}
		if err := handle(payload); err != nil {
			return false, err
		}
	}
}

// peekControl consumes a ping or pong frame from a client (masked, at
// most 125 bytes) at the head of the buffer and returns its opcode and
// unmasked payload; false, consuming nothing, if the head is anything
// else, incomplete because the connection failed, or invalid (gorilla
// reads and refuses it).
func (c *Conn) peekControl() (byte, string, bool) {
	h, err := c.br.Peek(2)
	if err != nil || (h[0] != finPing && h[0] != finPong) || h[1]&0x80 == 0 || int(h[1]&0x7f) > maxControl {
		return 0, "", false
	}
	op, n := h[0], int(h[1]&0x7f)
	f, err := c.br.Peek(6 + n)
	if err != nil {
		return 0, "", false
	}
	var p [maxControl]byte
	for i := range n {
		p[i] = f[6+i] ^ f[2+i%4]
	}
	payload := string(p[:n])
	_, _ = c.br.Discard(6 + n)
	return op, payload, true
}
