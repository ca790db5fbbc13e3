package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsIngest measures websocket node values (Pyaiot's /node protocol).
func (r *runner) wsIngest(ctx context.Context, p params) ([]Result, error) {
	if r.target.NodeURL == "" {
		return nil, fmt.Errorf("no websocket node endpoint: give --http or --node-url")
	}
	prefix := r.idPrefix() + "-ws-"
	src := &wsNodes{url: r.target.NodeURL, prefix: prefix, named: r.target.Kind == KindGoaiot}
	if !src.named {
		prefix = "" // Pyaiot names websocket nodes itself
	}
	return r.ingest(ctx, p, "ws", prefix, src)
}

// wsNodes are websocket nodes: {"type":"update","data":{res:value}}.
type wsNodes struct {
	url    string
	prefix string
	named  bool // ask for the id with ?id= (goaiot)
	conns  []*wsNode
}

type wsNode struct {
	mu   sync.Mutex
	conn *websocket.Conn
}

func (s *wsNodes) connect(ctx context.Context, n int) error {
	s.conns = make([]*wsNode, n)
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	for i := range n {
		u := s.url
		if s.named {
			u += "?id=" + url.QueryEscape(s.prefix+itoa(i))
		}
		conn, _, err := d.DialContext(ctx, u, nil)
		if err != nil {
			s.close()
			return fmt.Errorf("websocket node %d: %w", i, err)
		}
		s.conns[i] = &wsNode{conn: conn}
		go func() { // read (and drop) discover requests and commands; answers pings
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					return
				}
			}
		}()
	}
	return nil
}

func (s *wsNodes) send(i int, res, value string) error {
	b, err := json.Marshal(map[string]any{"type": "update", "data": map[string]string{res: value}})
	if err != nil {
		return err
	}
	c := s.conns[i]
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.conn.WriteMessage(websocket.TextMessage, b)
}

func (s *wsNodes) close() {
	for _, c := range s.conns {
		if c != nil {
			c.mu.Lock()
			_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			_ = c.conn.Close()
			c.mu.Unlock()
		}
	}
}
