package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsMessage is one server → browser message, the fields bench looks at.
type wsMessage struct {
	Type     string `json:"type"`
	UID      string `json:"uid"`
	Endpoint string `json:"endpoint"`
	Data     any    `json:"data"`
	ID       string `json:"id"`
	OK       bool   `json:"ok"`
	Error    string `json:"error"`
	State    string `json:"state"`
	Nodes    int    `json:"nodes"`
}

// dataString is Data when it is a string.
func (m *wsMessage) dataString() string {
	s, _ := m.Data.(string)
	return s
}

// browser is one simulated dashboard page on /ws. Values of the run go to
// rcv on the hot path (no full JSON decoding); every other wsMessage goes to
// on, called from the read goroutine.
type browser struct {
	conn *websocket.Conn
	// batch: the page asked for several messages per frame (batch=1), one
	// a line.
	batch bool
	rcv   *receiver
	on    func(m *wsMessage)
	wmu   sync.Mutex
	done  chan struct{}
	err   error
}

// dialBrowser opens /ws, subscribes with {"type":"new","data":"client"} and
// waits for the end of the snapshot ("synced"; a Pyaiot broker sends none,
// so after settle without a wsMessage the snapshot is taken as done).
// on may be nil.
func dialBrowser(ctx context.Context, url string, rcv *receiver, on func(*wsMessage), settle time.Duration) (*browser, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 64 << 10, WriteBufferSize: 4 << 10}
	conn, resp, err := d.DialContext(ctx, url, http.Header{})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("browser %s: %w (HTTP %s)", url, err, resp.Status)
		}
		return nil, fmt.Errorf("browser %s: %w", url, err)
	}
	b := &browser{conn: conn, batch: strings.Contains(url, "batch=1"), rcv: rcv, on: on, done: make(chan struct{})}
	synced := make(chan struct{})
	var once sync.Once
	b.on = func(m *wsMessage) {
		if m.Type == "synced" {
			once.Do(func() { close(synced) })
		}
		if on != nil {
			on(m)
		}
	}
	go b.read(func() { once.Do(func() { close(synced) }) }, settle)
	if err := b.send(map[string]string{"type": "new", "data": "client"}); err != nil {
		b.close()
		return nil, err
	}
	select {
	case <-synced:
		return b, nil
	case <-b.done:
		return nil, fmt.Errorf("browser %s: closed during the snapshot: %w", url, b.err)
	case <-ctx.Done():
		b.close()
		return nil, ctx.Err()
	case <-time.After(60 * time.Second):
		b.close()
		return nil, fmt.Errorf("browser %s: no end of snapshot within 60 s", url)
	}
}

var dataKey = []byte(`"data":"`)

// read runs until the socket closes. quiet is called once when no wsMessage
// came for settle (the end of a Pyaiot snapshot).
func (b *browser) read(quiet func(), settle time.Duration) {
	defer close(b.done)
	timer := time.AfterFunc(settle, quiet)
	defer timer.Stop()
	var buf bytes.Buffer
	for {
		_, r, err := b.conn.NextReader()
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			b.err = err
			return
		}
		timer.Reset(settle)
		frame := buf.Bytes()
		if !b.batch {
			b.message(frame)
			continue
		}
		for len(frame) > 0 {
			line, rest, _ := bytes.Cut(frame, newline)
			b.message(line)
			frame = rest
		}
	}
}

var newline = []byte{'\n'}

// message handles one message.
func (b *browser) message(data []byte) {
	if b.rcv != nil && b.hot(data) {
		return
	}
	var m wsMessage
	if json.Unmarshal(data, &m) != nil {
		return
	}
	if m.Type == "update" && b.rcv != nil && b.rcv.got(m.dataString()) {
		return
	}
	b.on(&m)
}

// hot takes a value of the run without decoding the whole frame.
func (b *browser) hot(frame []byte) bool {
	i := bytes.Index(frame, dataKey)
	if i < 0 {
		return false
	}
	v := frame[i+len(dataKey):]
	j := bytes.IndexByte(v, '"')
	if j < 0 || !bytes.HasPrefix(v, []byte(b.rcv.t.run)) {
		return false
	}
	return b.rcv.gotBytes(v[:j])
}

func (b *browser) send(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b.wmu.Lock()
	defer b.wmu.Unlock()
	_ = b.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := b.conn.WriteMessage(websocket.TextMessage, data); err != nil {
		return fmt.Errorf("browser send: %w", err)
	}
	return nil
}

// command sends a Pyaiot command frame; id is goaiot's extension.
func (b *browser) command(uid, endpoint, payload string, id int) error {
	return b.send(map[string]any{"type": "update", "id": strconv.Itoa(id),
		"data": map[string]string{"uid": uid, "endpoint": endpoint, "payload": payload}})
}

func (b *browser) close() {
	b.wmu.Lock()
	_ = b.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	b.wmu.Unlock()
	_ = b.conn.Close()
	<-b.done
}

// dialBrowsers opens n browsers, a few at a time.
func dialBrowsers(ctx context.Context, url string, n int, rcv func(i int) *receiver, on func(*wsMessage), settle time.Duration) ([]*browser, error) {
	return dialBrowsersAt(ctx, []string{url}, n, rcv, on, settle)
}

// dialBrowsersAt is dialBrowsers with browser i on urls[i%len(urls)].
func dialBrowsersAt(ctx context.Context, urls []string, n int, rcv func(i int) *receiver, on func(*wsMessage), settle time.Duration) ([]*browser, error) {
	bs := make([]*browser, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var r *receiver
			if rcv != nil {
				r = rcv(i)
			}
			bs[i], errs[i] = dialBrowser(ctx, urls[i%len(urls)], r, on, settle)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeBrowsers(bs)
		return nil, err
	}
	return bs, nil
}

func closeBrowsers(bs []*browser) {
	for _, b := range bs {
		if b != nil {
			b.close()
		}
	}
}
