package dashboard

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

func TestWriteWait(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name   string
		delay  time.Duration
		since  time.Duration
		answer bool
		want   time.Duration
	}{
		{"busy browser waits for the rest of the delay", ms, ms / 4, false, 3 * ms / 4},
		{"quiet browser is written to at once", ms, 2 * ms, false, 0},
		{"exactly the delay since the last write", ms, ms, false, 0},
		{"an answer never waits", ms, ms / 4, true, 0},
		{"no delay", 0, 0, false, 0},
		{"negative delay is none", -ms, 0, false, 0},
		{"never written to", ms, time.Duration(1<<63 - 1), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := writeWait(tt.delay, tt.since, tt.answer); got != tt.want {
				t.Errorf("writeWait(%s, %s, %v) = %s, want %s", tt.delay, tt.since, tt.answer, got, tt.want)
			}
		})
	}
}

// TestAnswersNotDelayed: with a write delay of an hour, a browser's answers
// still come at once, whether its writer is idle (the hello was just
// written) or waiting for the delay with a snapshot queued (which then
// comes with the answer). Before, both waited for the delay.
func TestAnswersNotDelayed(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	sub, err := nc.Subscribe(bus.GatewaySetAll("n1"), func(m *nats.Msg) { _ = m.Respond([]byte(`{"ok":true}`)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	p := publisher{t, nc}
	p.state("n1", bus.StateOnline)
	p.stored(1)
	td := startDashboard(t, srv, func(c *Config) { c.WriteDelay = time.Hour })
	const command = `{"type":"update","data":{"uid":"n1","endpoint":"led","payload":"1"},"id":"c1"}`
	tests := []struct {
		name  string
		first string // sent before the command; "" none
		want  []string
	}{
		{"writer idle", "", []string{typeResult}},
		{"writer waiting with a snapshot queued", `{"type":"new","data":"client"}`,
			[]string{typeNew, typeSynced, typeResult}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := dial(t, td, nil) // the hello was written: the delay runs
			if tt.first != "" {
				b.send(tt.first)
			}
			b.send(command)
			var got []string
			for len(got) < len(tt.want) {
				m := b.next()
				if m.Type == typeUpdate {
					continue // n1's seed values (a Pyaiot page's), if any
				}
				got = append(got, m.Type)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	// The flusher holds a value for the delay's end (claimLater): the
	// answer takes the writing over and brings the value with it; the
	// browser then leaves while the flusher's timer still runs.
	t.Run("flusher waiting with a value queued", func(t *testing.T) {
		b := dial(t, td, nil)
		b.send(`{"type":"new","data":"client"}`)
		b.send(strings.Replace(command, "c1", "c0", 1)) // its answer brings the snapshot
		for m := b.next(); m.Type != typeResult; m = b.next() {
		}
		p.value("n1", "led", "on") // written to 0 s ago: the flusher claims it for in an hour
		h := td.d.hub
		bustest.Eventually(t, wait, "the value queued, for the flusher in an hour", func() error {
			h.flushMu.Lock()
			defer h.flushMu.Unlock()
			return bustest.Want(len(h.due) == 1)
		})
		b.send(command)
		var got []string
		for len(got) < 2 {
			m := b.next()
			if m.Type == typeUpdate && m.Endpoint != "led" {
				continue
			}
			got = append(got, m.Type+" "+m.Data)
		}
		if want := []string{typeUpdate + " on", typeResult + " "}; !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}
