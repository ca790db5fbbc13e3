// Package wssim is a simulated websocket node that behaves like Pyaiot's
// Python test node, for demos, tests and load: it connects to a gateway's
// /node, sends its name, os and board, pushes temperature, pressure and
// humidity on realistic daily-looking curves every SensorInterval, answers
// {"request":"discover"} with all its values, and obeys led commands
// ({"endpoint":"led","payload":"0"|"1"}) by answering with an update of led.
// It reconnects, with backoff, until its context ends.
//
// With a Kind, the node is instead one of the nodes Pyaiot's page has a
// widget for, with no sensors and no LED:
//
//	robot   robot = the last move; takes "u", "l", "r", "s"
//	ribot   ribot = the last joystick frame; takes "dx:dy:dx+dy\n" (|dx|, |dy| ≤ 255)
//	js      js = the last script it ran; takes any script up to MaxScriptBytes as JSON
//	camera  webcam = the URL of its image (CameraURL); takes no command
//
// A command it takes is answered with an update of the resource equal to
// the payload (the gateway's "ok"); one it refuses is answered with the
// resource's current value (the gateway's "refused") and a log line.
package wssim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Config configures a simulated node.
type Config struct {
	// URL of the gateway's node endpoint, e.g. ws://127.0.0.1:8080/node.
	URL string
	// ID is asked for with ?id=, so the node keeps it across reconnects;
	// empty lets the gateway assign one per connection.
	ID string
	// Name, OS and Board are the node's static values. Defaults
	// "WebSocket Node", "linux", "linux-sim".
	Name, OS, Board string
	Logger          *slog.Logger
	// SensorInterval between sensor pushes (the first one comes right after
	// connecting). Default 5 s.
	SensorInterval time.Duration
	// CurvePeriod is the period of the sensor curves (a compressed day).
	// Default 10 min.
	CurvePeriod time.Duration
	// Redial is the first wait before reconnecting; it doubles up to 30 s.
	// Default 1 s.
	Redial time.Duration
	// Seed makes the curves' phase and noise reproducible. 0: derived from ID.
	Seed uint64
	// Kind is what the node is; KindSensor (empty) by default. Name, OS
	// and Board default after it.
	Kind Kind
	// CameraURL is the webcam value of a KindCamera node; default
	// DefaultCameraURL.
	CameraURL string
}

// Node is one simulated websocket node.
type Node struct {
	cfg       Config
	url       string
	log       *slog.Logger
	led       atomic.Bool
	connected atomic.Bool
	sent      atomic.Int64
	curves    []curve
	began     time.Time

	mu    sync.Mutex
	rnd   *rand.Rand
	value string // the kind's resource (not a sensor node's)
}

// New validates cfg.
func New(cfg Config) (*Node, error) {
	u, err := url.Parse(cfg.URL)
	switch {
	case cfg.URL == "":
		return nil, errors.New("wssim: no gateway URL")
	case err != nil:
		return nil, fmt.Errorf("wssim: url: %w", err)
	case u.Scheme != "ws" && u.Scheme != "wss":
		return nil, fmt.Errorf("wssim: url %q: want ws:// or wss://", cfg.URL)
	case cfg.Logger == nil:
		return nil, errors.New("wssim: no logger")
	case cfg.SensorInterval < 0 || cfg.CurvePeriod < 0 || cfg.Redial < 0:
		return nil, errors.New("wssim: negative duration")
	}
	if err := validKind(cfg.Kind); err != nil {
		return nil, err
	}
	if cfg.ID != "" {
		q := u.Query()
		q.Set("id", cfg.ID)
		u.RawQuery = q.Encode()
	}
	name, os, board := kindDefaults(cfg.Kind)
	cfg.Name = or(cfg.Name, name)
	cfg.OS = or(cfg.OS, os)
	cfg.Board = or(cfg.Board, board)
	cfg.CameraURL = or(cfg.CameraURL, DefaultCameraURL)
	cfg.SensorInterval = or(cfg.SensorInterval, 5*time.Second)
	cfg.CurvePeriod = or(cfg.CurvePeriod, 10*time.Minute)
	cfg.Redial = or(cfg.Redial, time.Second)
	if cfg.Seed == 0 {
		h := fnv.New64a()
		_, _ = h.Write([]byte(cfg.ID + cfg.Name))
		cfg.Seed = h.Sum64()
	}
	rnd := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed>>1|1))
	return &Node{
		cfg: cfg, url: u.String(), log: cfg.Logger.With("sim", "ws", "id", cfg.ID),
		curves: sensorCurves(rnd, cfg.CurvePeriod), rnd: rnd, began: time.Now(),
		value: cfg.Kind.initial(cfg.CameraURL),
	}, nil
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// LED reports whether the node's LED is on.
func (n *Node) LED() bool { return n.led.Load() }

// Connected reports whether the node is connected to the gateway now.
func (n *Node) Connected() bool { return n.connected.Load() }

// Value is the current value of the node's kind resource (robot, ribot,
// js or webcam); "" for a sensor node.
func (n *Node) Value() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.value
}

// Sent counts the values the node has sent.
func (n *Node) Sent() int64 { return n.sent.Load() }

// Run connects and serves the gateway, reconnecting after failures, until
// ctx ends.
func (n *Node) Run(ctx context.Context) error {
	wait := n.cfg.Redial
	for {
		began := time.Now()
		err := n.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(began) > 30*time.Second {
			wait = n.cfg.Redial
		}
		n.log.Debug("ws sim disconnected, redialling", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// session serves one connection until it fails or ctx ends.
func (n *Node) session(ctx context.Context) error {
	c, _, err := websocket.DefaultDialer.DialContext(ctx, n.url, nil)
	if err != nil {
		return fmt.Errorf("dial %s: %w", n.url, err)
	}
	defer c.Close()
	n.connected.Store(true)
	defer n.connected.Store(false)
	in := make(chan []byte)
	errc := make(chan error, 1)
	go func() {
		for {
			_, b, err := c.ReadMessage() // also answers the gateway's pings
			if err != nil {
				errc <- err
				return
			}
			select {
			case in <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := n.write(c, map[string]any{"type": "new", "data": "node"}); err != nil {
		return err
	}
	if err := n.sendAll(c); err != nil {
		return err
	}
	tick := time.NewTicker(n.cfg.SensorInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "node stopping")
			_ = c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			return nil
		case err := <-errc:
			return err
		case <-tick.C:
			if n.cfg.Kind == KindSensor {
				err = n.update(c, n.sensors())
			}
		case b := <-in:
			err = n.handle(c, b)
		}
		if err != nil {
			return err
		}
	}
}

// request is what the gateway sends: a discover request or a command.
type request struct {
	Request  string `json:"request"`
	Endpoint string `json:"endpoint"`
	Payload  string `json:"payload"`
}

func (n *Node) handle(c *websocket.Conn, b []byte) error {
	var r request
	if err := json.Unmarshal(b, &r); err != nil {
		n.log.Warn("ws sim: bad frame from gateway", "err", err)
		return nil
	}
	switch {
	case r.Request == "discover":
		return n.sendAll(c)
	case n.cfg.Kind != KindSensor && r.Endpoint == n.cfg.Kind.resource():
		return n.update(c, map[string]string{r.Endpoint: n.apply(r.Payload)})
	case n.cfg.Kind == KindSensor && r.Endpoint == "led":
		switch r.Payload {
		case "0", "1":
			n.led.Store(r.Payload == "1")
		default:
			n.log.Info("ws sim: led command refused", "payload", r.Payload)
		}
		return n.update(c, map[string]string{"led": n.ledValue()})
	}
	n.log.Debug("ws sim: ignored", "frame", string(b))
	return nil
}

func (n *Node) ledValue() string {
	if n.LED() {
		return "1"
	}
	return "0"
}

// apply runs a command on the kind's resource and returns its value
// after: the payload when taken, the value it had when refused.
func (n *Node) apply(payload string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.cfg.Kind.accept(payload); err != nil {
		n.log.Info("ws sim: command refused", "resource", n.cfg.Kind.resource(), "err", err)
		return n.value
	}
	n.value = payload
	return payload
}

// sendAll sends the static values and the LED and sensors, or the kind's
// resource.
func (n *Node) sendAll(c *websocket.Conn) error {
	v := map[string]string{}
	if n.cfg.Kind == KindSensor {
		v = n.sensors()
		v["led"] = n.ledValue()
	} else {
		v[n.cfg.Kind.resource()] = n.Value()
	}
	v["name"], v["os"], v["board"] = n.cfg.Name, n.cfg.OS, n.cfg.Board
	return n.update(c, v)
}

func (n *Node) update(c *websocket.Conn, data map[string]string) error {
	if err := n.write(c, map[string]any{"type": "update", "data": data}); err != nil {
		return err
	}
	n.sent.Add(int64(len(data)))
	return nil
}

func (n *Node) write(c *websocket.Conn, v any) error {
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.WriteJSON(v); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// sensors reads the sensor curves now, formatted as RIOT's firmware does.
func (n *Node) sensors() map[string]string {
	t := time.Since(n.began)
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]string, len(n.curves))
	for _, c := range n.curves {
		out[c.name] = fmt.Sprintf(c.format, c.at(t, n.rnd))
	}
	return out
}
