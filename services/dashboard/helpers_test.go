package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	dto "github.com/prometheus/client_model/go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

const wait = 10 * time.Second

// testDashboard is a running dashboard behind a real HTTP server.
type testDashboard struct {
	d    *Dashboard
	http *httptest.Server
	stop func()
}

// wsURL is the dashboard's /ws as a ws:// URL.
func (td *testDashboard) wsURL() string {
	return "ws" + strings.TrimPrefix(td.http.URL, "http") + "/ws?ext=1"
}

// startDashboard runs a dashboard on srv until the test ends (or stop).
func startDashboard(t testing.TB, srv *bus.Server, edit ...func(*Config)) *testDashboard {
	t.Helper()
	cfg := Config{Conn: bustest.Connect(t, srv), Logger: bustest.Logger(t), Version: "test"}
	for _, e := range edit {
		e(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatalf("new dashboard: %v", err)
	}
	hs := httptest.NewServer(d.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case <-d.ready:
	case err := <-done:
		t.Fatalf("dashboard stopped at start: %v", err)
	case <-time.After(wait):
		t.Fatal("dashboard not ready")
	}
	td := &testDashboard{d: d, http: hs}
	stopped := false
	td.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dashboard run: %v", err)
		}
		hs.Close()
	}
	t.Cleanup(td.stop)
	return td
}

// msg is any server message; fields absent from a type stay empty.
type msg struct {
	Type     string  `json:"type"`
	UID      string  `json:"uid"`
	Endpoint string  `json:"endpoint"`
	Data     string  `json:"data"`
	State    string  `json:"state"`
	Protocol string  `json:"protocol"`
	Gateway  string  `json:"gateway"`
	Site     string  `json:"site"`
	Address  string  `json:"address"`
	TS       int64   `json:"ts"`
	Nodes    int     `json:"nodes"`
	ID       string  `json:"id"`
	OK       bool    `json:"ok"`
	Error    string  `json:"error"`
	Role     string  `json:"role"`
	User     string  `json:"user"`
	Login    bool    `json:"login"`
	Points   []point `json:"points"`
	Code     string  `json:"code"`
	Command  string  `json:"command"`
	Until    int64   `json:"until"`
	Batch    bool    `json:"batch"`
}

// browser is a gorilla websocket client standing in for a browser.
type browser struct {
	t    testing.TB
	conn *websocket.Conn
	// batch: the browser asked for several messages per frame; it splits
	// frames into lines. Without it a frame of several messages fails to
	// decode.
	batch bool
	lines [][]byte // the messages left of the last frame
	// frames and largest: frames read, and the most messages one held.
	frames, largest int
}

func dial(t testing.TB, td *testDashboard, header http.Header) *browser {
	t.Helper()
	return dialURL(t, td.wsURL(), header)
}

// dialBatch connects as goaiot's page does since issue 17: several
// messages per frame.
func dialBatch(t testing.TB, td *testDashboard) *browser {
	t.Helper()
	return dialURL(t, td.wsURL()+"&batch=1", nil)
}

func dialURL(t testing.TB, url string, header http.Header) *browser {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(url, header)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { conn.Close() })
	b := &browser{t: t, conn: conn, batch: strings.Contains(url, "batch=1")}
	if m := b.next(); m.Type != typeHello {
		t.Fatalf("first message %+v, want hello", m)
	}
	return b
}

// subscribe sends "new" and returns the snapshot, up to "synced".
func (b *browser) subscribe() []msg {
	b.t.Helper()
	b.send(`{"type":"new","data":"client"}`)
	var snap []msg
	for {
		m := b.next()
		if m.Type == typeSynced {
			return snap
		}
		snap = append(snap, m)
	}
}

func (b *browser) send(frame string) {
	b.t.Helper()
	if err := b.conn.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		b.t.Fatalf("send: %v", err)
	}
}

// next reads one message, failing the test after wait.
func (b *browser) next() msg {
	b.t.Helper()
	m, err := b.read(wait)
	if err != nil {
		b.t.Fatalf("read: %v", err)
	}
	return m
}

func (b *browser) read(timeout time.Duration) (msg, error) {
	if len(b.lines) == 0 {
		_ = b.conn.SetReadDeadline(time.Now().Add(timeout))
		typ, data, err := b.conn.ReadMessage()
		if err != nil {
			return msg{}, err
		}
		if typ != websocket.TextMessage {
			return msg{}, errors.New("binary frame")
		}
		b.lines = [][]byte{data}
		if b.batch {
			b.lines = bytes.Split(data, []byte("\n"))
		}
		b.frames++
		b.largest = max(b.largest, len(b.lines))
	}
	line := b.lines[0]
	b.lines = b.lines[1:]
	var m msg
	if err := json.Unmarshal(line, &m); err != nil {
		return msg{}, fmt.Errorf("%w: %.200q", err, line)
	}
	return m, nil
}

// nextOf skips messages until one of type typ.
func (b *browser) nextOf(typ string) msg {
	b.t.Helper()
	for {
		if m := b.next(); m.Type == typ {
			return m
		}
	}
}

// closed reads until the server closes and returns its close frame.
func (b *browser) closed() *websocket.CloseError {
	b.t.Helper()
	for {
		_, err := b.read(wait)
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce
		}
		b.t.Fatalf("connection ended without a close frame: %v", err)
		return nil
	}
}

// publisher publishes node messages the way a gateway does.
type publisher struct {
	t  testing.TB
	nc *nats.Conn
}

func (p publisher) state(uid, state string) {
	p.t.Helper()
	p.json(bus.NodeState(uid), bus.State{State: state, Protocol: bus.ProtocolCoAP, Gateway: "coap@test",
		Site: "lab", Address: "[fd00::1]:5683", Time: time.Now().UTC()})
}

func (p publisher) value(uid, res, v string) {
	p.t.Helper()
	p.json(bus.NodeValue(uid, res), bus.StringValue(v, time.Now().UTC()))
}

func (p publisher) json(subject string, v any) {
	p.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.nc.Publish(subject, b); err != nil {
		p.t.Fatalf("publish %s: %v", subject, err)
	}
}

// stored waits until the NODES stream holds n messages in total.
func (p publisher) stored(n uint64) {
	p.t.Helper()
	if err := p.nc.Flush(); err != nil {
		p.t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		m, err := p.nc.Request("$JS.API.STREAM.INFO."+bus.NodesStream, nil, time.Second)
		if err == nil {
			var info struct {
				State struct {
					Msgs uint64 `json:"messages"`
				} `json:"state"`
			}
			if json.Unmarshal(m.Data, &info) == nil && info.State.Msgs >= n {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.t.Fatalf("stream never held %d messages", n)
}

// summary is a snapshot or message list in a comparable form.
func summary(ms []msg) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		s := m.Type + " " + m.UID
		switch m.Type {
		case typeNew:
			s += " " + m.State
		case typeUpdate:
			s += " " + m.Endpoint + "=" + m.Data
		}
		out = append(out, s)
	}
	return out
}

// metric reads a counter or gauge from the dashboard's registry; label is
// an optional name and value the series must carry.
func metric(t testing.TB, td *testDashboard, name string, label ...string) float64 {
	t.Helper()
	families, err := td.d.m.reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(label) == 2 && !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
				return l.GetName() == label[0] && l.GetValue() == label[1]
			}) {
				continue
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s %v", name, label)
	return 0
}

// jsonUnmarshal decodes a frame's message.
func jsonUnmarshal(f *frame, v any) error { return json.Unmarshal(f.data(), v) }

// expanded returns frames with each snapshot placeholder replaced by its
// nodes' frames (which it takes from the placeholder).
func expanded(frames []*frame) []*frame {
	var out []*frame
	for _, f := range frames {
		if f.snap == nil {
			out = append(out, f)
			continue
		}
		out = f.snap.expand(out, math.MaxInt)
	}
	return out
}
