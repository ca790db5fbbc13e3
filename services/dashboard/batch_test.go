package dashboard

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/goaiot/goaiot/bus/bustest"
)

// Several messages per frame only for a goaiot page that asked for it
// (ext=1&batch=1); goaiot's older page (ext=1) and Pyaiot's page (even one
// that says batch=1) keep one message per frame. The snapshot, queued at
// once, shows it: a batched browser gets it in few frames, the others in
// one frame per message (the helpers' read fails on a frame of several).
func TestBatchFramingNegotiated(t *testing.T) {
	const nodes, resources = 3, 30
	srv := bustest.StartServer(t)
	pub := publisher{t, bustest.Connect(t, srv)}
	td := startDashboard(t, srv)
	for n := range nodes {
		for r := range resources {
			pub.value(fmt.Sprintf("n%d", n), fmt.Sprintf("r%d", r), fmt.Sprintf("%d.%d", n, r))
		}
	}
	bustest.Eventually(t, wait, "the index", func() error {
		td.d.hub.mu.Lock()
		n := len(expanded(td.d.hub.idx.snapshot(true)))
		td.d.hub.mu.Unlock()
		return bustest.Want(n >= nodes*(resources+1), n, " messages in the snapshot")
	})
	base := strings.TrimSuffix(td.wsURL(), "?ext=1")
	for _, tc := range []struct {
		name   string
		url    string
		hello  bool // the page gets hello (goaiot's extensions)
		packed bool // several messages per frame
	}{
		{name: "goaiot page asking for batches", url: base + "?ext=1&batch=1", hello: true, packed: true},
		{name: "goaiot page of before", url: base + "?ext=1", hello: true},
		{name: "Pyaiot page", url: base},
		{name: "Pyaiot page saying batch=1", url: base + "?batch=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, _, err := websocket.DefaultDialer.Dial(tc.url, nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			t.Cleanup(func() { conn.Close() })
			b := &browser{t: t, conn: conn, batch: tc.packed}
			if tc.hello {
				if m := b.next(); m.Type != typeHello || m.Batch != tc.packed {
					t.Fatalf("first message %+v, want hello with batch %v", m, tc.packed)
				}
			}
			b.send(`{"type":"new","data":"client"}`)
			values := 0
			for values < nodes*resources {
				if m := b.next(); m.Type == typeUpdate && strings.HasPrefix(m.Endpoint, "r") {
					if want := strings.TrimPrefix(m.UID, "n") + "." + strings.TrimPrefix(m.Endpoint, "r"); m.Data != want {
						t.Fatalf("%s/%s = %q, want %q", m.UID, m.Endpoint, m.Data, want)
					}
					values++
				}
			}
			if tc.packed && b.largest < 2 {
				t.Errorf("%d frames for %d values: none held several messages", b.frames, values)
			}
			if !tc.packed && b.largest != 1 {
				t.Errorf("a frame held %d messages", b.largest)
			}
			t.Logf("%d values in %d frames, at most %d messages in one", values, b.frames, b.largest)
		})
	}
}

// A batched page that stops reading is cut off like any other, and live
// values reach a batched page that reads, in order.
func TestBatchedBrowserStuckCutOff(t *testing.T) {
	srv := bustest.StartServer(t)
	pub := publisher{t, bustest.Connect(t, srv)}
	td := startDashboard(t, srv, func(c *Config) { c.QueueLimit, c.SlowAfter = 64, 8 })
	fast := dialBatch(t, td)
	fast.subscribe()
	stuck := dialSlowURL(t, td.wsURL()+"&batch=1")
	stuck.subscribe()
	fastR := readAll(fast)
	nodes := 0
	for metric(t, td, "aiot_dashboard_disconnects_total", "reason", cutSlow) == 0 {
		if nodes > 100_000 {
			t.Fatalf("stuck browser not cut off after %d nodes", nodes)
		}
		for range 20 {
			pub.value(fmt.Sprintf("n%d", nodes), "text", fmt.Sprintf("%d:%s", nodes, padding))
			nodes++
		}
		bustest.Eventually(t, wait, "the fast browser", func() error { return bustest.Want(fastR.count() == nodes) })
	}
	if ce := stuck.closed(); ce.Code != websocket.CloseTryAgainLater {
		t.Errorf("stuck browser closed with %d %q", ce.Code, ce.Text)
	}
	fastR.mu.Lock()
	defer fastR.mu.Unlock()
	for i, m := range fastR.updates {
		if want := fmt.Sprintf("n%d", i); m.UID != want || !strings.HasPrefix(m.Data, fmt.Sprint(i)+":") {
			t.Fatalf("update %d: %s %.10s, want %s", i, m.UID, m.Data, want)
		}
	}
}

// FuzzBatchFrame: any messages packed into one frame come back, each a
// line, from a valid websocket text frame whose header gives its length.
func FuzzBatchFrame(f *testing.F) {
	f.Add("21.5", "a\nb", 3)
	f.Add(strings.Repeat("x", 200), "", 1)
	f.Add("\u2028\x00\"", strings.Repeat("y", 70000), 2)
	f.Fuzz(func(t *testing.T, a, b string, n int) {
		n = 2 + min(max(n, 0), 8)
		var frames []*frame
		var want [][]byte
		for i := range n {
			v := a
			if i%2 == 1 {
				v = b
			}
			fr := mustFrame(updateMsg{Type: typeUpdate, UID: "n", Endpoint: "r", Data: v}, "n\x00r", false)
			frames = append(frames, fr)
			want = append(want, fr.data())
		}
		wire := appendBatch([]byte("before"), frames)
		if !bytes.HasPrefix(wire, []byte("before")) {
			t.Fatal("appendBatch overwrote what was in the buffer")
		}
		wire = wire[len("before"):]
		if wire[0] != 0x81 {
			t.Fatalf("first byte %#x, want FIN + text", wire[0])
		}
		var size, hdr int
		switch l := wire[1]; {
		case l < 126:
			size, hdr = int(l), 2
		case l == 126:
			size, hdr = int(binary.BigEndian.Uint16(wire[2:])), 4
		default:
			size, hdr = int(binary.BigEndian.Uint64(wire[2:])), 10
		}
		if hdr+size != len(wire) || hdr != headerLen(size) {
			t.Fatalf("header says %d bytes (header %d), frame has %d", size, hdr, len(wire))
		}
		lines := bytes.Split(wire[hdr:], []byte("\n"))
		if len(lines) != n {
			t.Fatalf("%d lines, want %d", len(lines), n)
		}
		for i, l := range lines {
			if !bytes.Equal(l, want[i]) {
				t.Fatalf("line %d: %q, want %q", i, l, want[i])
			}
			var m updateMsg
			if err := json.Unmarshal(l, &m); err != nil {
				t.Fatalf("line %d: %v", i, err)
			}
		}
	})
}
