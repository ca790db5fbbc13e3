package bench

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// scaleWS is scale with idle websocket nodes: each dials /node?id=<id>
// once (its registration) and then only answers the gateway's pings, as a
// Pyaiot websocket node between two values; its "beacons" are no-ops.
// Pyaiot's gateway ignores the id and names each node with a random uid:
// there each node sends its id as its "name" resource once connected, and
// counts as registered when a browser sees that update.
func (r *runner) scaleWS(ctx context.Context, p params) ([]Result, error) {
	if r.target.NodeURL == "" {
		return nil, fmt.Errorf("scale-ws needs a websocket node endpoint: give --http or --node-url")
	}
	prefix := "bench-sws-"
	pyaiot := r.target.Kind == KindPyaiot
	f := &wsFleet{url: r.target.NodeURL, prefix: prefix, conns: make([]*websocket.Conn, p.nodes), announce: pyaiot}
	defer f.close()
	return r.registerAndHold(ctx, p, scaleNodes{kind: "websocket", first: "/node dial", prefix: prefix,
		beacon: func(i int, _ int64) { f.dial(ctx, i) }, rejected: f.errs.Load, byName: pyaiot})
}

// wsFleet holds one websocket connection per node, each read by its own
// goroutine (which answers the gateway's pings).
type wsFleet struct {
	url, prefix string
	announce    bool         // each node sends its id as its "name" resource once connected
	errs        atomic.Int64 // dials refused or failed

	mu    sync.Mutex
	conns []*websocket.Conn
}

// dial connects node i unless it is connected; a node whose connection
// ended is dialled again at its next beacon.
func (f *wsFleet) dial(ctx context.Context, i int) {
	f.mu.Lock()
	c := f.conns[i]
	f.mu.Unlock()
	if c != nil {
		return
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 256, WriteBufferSize: 256}
	c, _, err := d.DialContext(ctx, f.url+"?id="+url.QueryEscape(f.prefix+itoa(i)), nil)
	if err != nil {
		f.errs.Add(1)
		return
	}
	if f.announce {
		name := `{"type":"update","data":{"name":"` + f.prefix + itoa(i) + `"}}`
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := c.WriteMessage(websocket.TextMessage, []byte(name)); err != nil {
			f.errs.Add(1)
			_ = c.Close()
			return
		}
	}
	f.mu.Lock()
	f.conns[i] = c
	f.mu.Unlock()
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				f.mu.Lock()
				if f.conns[i] == c {
					f.conns[i] = nil
				}
				f.mu.Unlock()
				return
			}
		}
	}()
}

func (f *wsFleet) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range f.conns {
		if c != nil {
			_ = c.Close()
			f.conns[i] = nil
		}
	}
}
