// Package coapsim is a simulated RIOT CoAP node that behaves like Pyaiot's
// RIOT firmwares (node_leds, node_bmx280, node_imu) on the wire, for tests,
// `aiot sim` and `aiot run --demo`.
//
// Like RIOT, a node:
//   - serves CoAP on its own address (Config.Listen, RIOT uses port 5683):
//     GET /board /mcu /name /os /position and /.well-known/core, GET and
//     PUT /led ("0" or "1", anything else 4.00; PUT 1 answers 2.04 "led:1");
//   - at boot POSTs "reset:<uid>" then "alive:<uid>" to the gateway's
//     /alive, then "alive:<uid>" every BeaconInterval;
//   - with Sensors, POSTs "temperature:21.5°C", "pressure:1013.25hPa" and
//     "humidity:45.10%" (slowly varying curves) to /server every
//     SensorInterval; with IMU, "imu:[{"type":"acc",…},{"type":"gyro",…}]"
//     every IMUInterval (RIOT: 200 ms);
//   - sends these POSTs as NON requests, from an ephemeral source port, and
//     ignores the answers (the gateway's NON 2.04), also when they arrive
//     on its server socket (PostFromListener): a response is never
//     answered; a gateway gone for a while (ICMP port unreachable) loses
//     the POSTs meanwhile, and the node goes on sending, as RIOT does.
//
// With Observe the sensor and imu resources are listed with ;obs in
// /.well-known/core, answer GET and Observe (RFC 7641), and their values go
// to observers as NON notifications instead of POSTs to /server.
//
// Many nodes run on one host by giving each its own loopback address
// (127.0.0.2:5683, 127.0.0.3:5683, … all reach the host on Linux), or any
// port together with PostFromListener, for a gateway that reaches nodes at
// the source port of their /alive (aiot --coap-node-port 0).
package coapsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/net/monitor/inactivity"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
	udpServer "github.com/plgd-dev/go-coap/v3/udp/server"

	"github.com/goaiot/goaiot/internal/coapreply"
)

// Config describes one simulated node. UID, Listen and Gateway are
// required; every other field has a RIOT-like default.
type Config struct {
	// UID is the node id sent in its beacons ("AB582D8277D4D97" on RIOT:
	// 15 hex digits).
	UID string
	// Listen is the node's own CoAP server address, e.g. "127.0.0.5:5683".
	// Port 0 picks a free port (then use PostFromListener).
	Listen string
	// Gateway is the gateway's CoAP address, e.g. "127.0.0.1:5683".
	Gateway string
	// PostFromListener sends the POSTs from the Listen socket instead of an
	// ephemeral port, for gateways in source-port mode.
	PostFromListener bool

	// Name, Board, MCU and OS are the GET resources; defaults "Simulated
	// node", "native64", "native", "riot".
	Name, Board, MCU, OS string
	// Lat and Lng are served as /position {"lat":…,"lng":…}; default
	// 48.71, 2.20 (RIOT's default).
	Lat, Lng float64

	// Sensors adds temperature, pressure and humidity; IMU adds imu.
	Sensors, IMU bool
	// Observe makes sensor and imu resources observable (see package doc).
	Observe bool

	// BeaconInterval (default 30 s), SensorInterval (default 5 s) and
	// IMUInterval (default 200 ms) set the pace; tests make them short.
	BeaconInterval, SensorInterval, IMUInterval time.Duration
	// Seed varies the sensor curves between nodes; default derived from UID.
	Seed uint64
	// Logger receives the node's log lines; nil discards them.
	Logger *slog.Logger
}

func (c *Config) validate() error {
	switch {
	case c.UID == "":
		return errors.New("coapsim: no uid")
	case strings.ContainsAny(c.UID, ":\x00"):
		return fmt.Errorf("coapsim: uid %q: no ':' allowed", c.UID)
	case c.BeaconInterval < 0 || c.SensorInterval < 0 || c.IMUInterval < 0:
		return errors.New("coapsim: negative interval")
	}
	if _, err := net.ResolveUDPAddr("udp", c.Listen); err != nil || c.Listen == "" {
		return fmt.Errorf("coapsim: listen %q: want host:port", c.Listen)
	}
	if _, err := net.ResolveUDPAddr("udp", c.Gateway); err != nil || c.Gateway == "" {
		return fmt.Errorf("coapsim: gateway %q: want host:port", c.Gateway)
	}
	return nil
}

func (c *Config) defaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Name, "Simulated node")
	def(&c.Board, "native64")
	def(&c.MCU, "native")
	def(&c.OS, "riot")
	if c.Lat == 0 && c.Lng == 0 {
		c.Lat, c.Lng = 48.71, 2.20
	}
	if c.BeaconInterval == 0 {
		c.BeaconInterval = 30 * time.Second
	}
	if c.SensorInterval == 0 {
		c.SensorInterval = 5 * time.Second
	}
	if c.IMUInterval == 0 {
		c.IMUInterval = 200 * time.Millisecond
	}
	if c.Seed == 0 {
		for _, b := range []byte(c.UID) {
			c.Seed = c.Seed*31 + uint64(b)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Node is one simulated node.
type Node struct {
	cfg   Config
	log   *slog.Logger
	led   atomic.Bool
	ready chan struct{}
	addr  net.Addr
	curve *curves

	mu        sync.Mutex
	observers map[string][]observer
	seq       uint32
}

type observer struct {
	cc    mux.Conn
	token message.Token
}

// New validates cfg; Run starts the node.
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	return &Node{
		cfg: cfg, log: cfg.Logger.With("sim", cfg.UID), ready: make(chan struct{}),
		curve: newCurves(cfg.Seed), observers: make(map[string][]observer),
	}, nil
}

// UID is the node's id.
func (n *Node) UID() string { return n.cfg.UID }

// LED reports whether the LED is on.
func (n *Node) LED() bool { return n.led.Load() }

// Ready is closed once the node's server is bound and its boot beacons sent.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Addr is the node's bound server address (nil before Ready).
func (n *Node) Addr() net.Addr {
	select {
	case <-n.ready:
		return n.addr
	default:
		return nil
	}
}

// noIdle keeps the node's per-peer state: its only peer is the gateway,
// and an observation must outlive a quiet minute (RIOT keeps it until RST).
type noIdle struct{}

func (noIdle) UDPServerApply(cfg *udpServer.Config) {
	cfg.CreateInactivityMonitor = func() udpClient.InactivityMonitor {
		return inactivity.NewNilMonitor[*udpClient.Conn]()
	}
}

// Run serves the node and sends its beacons and values until ctx ends.
func (n *Node) Run(ctx context.Context) error {
	l, err := coapNet.NewListenUDP("udp", n.cfg.Listen)
	if err != nil {
		return fmt.Errorf("coapsim %s: listen: %w", n.cfg.UID, err)
	}
	srv := udp.NewServer(options.WithMux(n.router()), options.WithContext(ctx), noIdle{},
		options.WithErrors(func(err error) { n.log.Debug("coap", "err", err) }))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	defer func() { srv.Stop(); <-served }()
	n.addr = l.LocalAddr()

	post, closePost, err := n.poster(ctx, srv)
	if err != nil {
		return err
	}
	defer closePost()
	post(ctx, "/alive", "reset:"+n.cfg.UID)
	post(ctx, "/alive", "alive:"+n.cfg.UID)
	close(n.ready)
	n.log.Info("simulated coap node up", "addr", n.addr, "gateway", n.cfg.Gateway)
	return n.loop(ctx, post)
}

type postFunc func(ctx context.Context, path, payload string)

func (n *Node) loop(ctx context.Context, post postFunc) error {
	beacon := time.NewTicker(n.cfg.BeaconInterval)
	defer beacon.Stop()
	sensors, imu := n.ticker(n.cfg.Sensors, n.cfg.SensorInterval), n.ticker(n.cfg.IMU, n.cfg.IMUInterval)
	defer sensors.Stop()
	defer imu.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-beacon.C:
			post(ctx, "/alive", "alive:"+n.cfg.UID)
		case <-sensors.C:
			for _, name := range sensorNames {
				n.emit(ctx, post, name)
			}
		case <-imu.C:
			n.emit(ctx, post, "imu")
		}
	}
}

// ticker ticks every d if on, never otherwise.
func (n *Node) ticker(on bool, d time.Duration) *time.Ticker {
	t := time.NewTicker(d)
	if !on {
		t.Stop()
	}
	return t
}

// emit sends one value: to observers with Observe, else POSTed to /server.
func (n *Node) emit(ctx context.Context, post postFunc, name string) {
	v := n.curve.value(name, time.Now())
	if n.cfg.Observe {
		n.notify(name, v)
		return
	}
	post(ctx, "/server", name+":"+v)
}

// poster returns how the node POSTs to the gateway: NON requests from an
// ephemeral port (RIOT), or from the server socket with PostFromListener.
func (n *Node) poster(ctx context.Context, srv *udpServer.Server) (postFunc, func(), error) {
	gw, err := net.ResolveUDPAddr("udp", n.cfg.Gateway)
	if err != nil {
		return nil, nil, fmt.Errorf("coapsim %s: gateway: %w", n.cfg.UID, err)
	}
	conn := func() (*udpClient.Conn, error) { return srv.NewConn(gw) }
	closeFn := func() {}
	if !n.cfg.PostFromListener {
		c := &clientConn{dial: func() (*udpClient.Conn, error) {
			// Bind the ephemeral socket to the node's own address, as a
			// RIOT node has only that one: the gateway sees its POSTs come
			// from it.
			local := &net.UDPAddr{IP: n.addr.(*net.UDPAddr).IP}
			return udp.Dial(n.cfg.Gateway, options.WithContext(ctx), options.WithDialer(&net.Dialer{LocalAddr: local}),
				options.WithErrors(func(err error) { n.log.Debug("coap client", "err", err) }))
		}}
		if _, err := c.get(); err != nil {
			return nil, nil, fmt.Errorf("coapsim %s: dial gateway: %w", n.cfg.UID, err)
		}
		conn, closeFn = c.get, c.close
	}
	post := func(ctx context.Context, path, payload string) {
		if err := postNON(ctx, conn, path, payload); err != nil && ctx.Err() == nil {
			n.log.Warn("post", "path", path, "err", err)
		}
	}
	return post, closeFn, nil
}

// clientConn is the node's connected client socket to its gateway,
// dialled again once it has ended: go-coap ends a connected client when a
// datagram brings back ICMP port unreachable (the gateway restarting),
// where a RIOT node just goes on sending.
type clientConn struct {
	dial func() (*udpClient.Conn, error)
	mu   sync.Mutex
	cc   *udpClient.Conn
}

// get returns the live connection, dialling a new one if it ended.
func (c *clientConn) get() (*udpClient.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cc != nil {
		select {
		case <-c.cc.Done():
		default:
			return c.cc, nil
		}
	}
	cc, err := c.dial()
	if err != nil {
		return nil, err
	}
	c.cc = cc
	return cc, nil
}

func (c *clientConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cc != nil {
		_ = c.cc.Close()
	}
}

func postNON(ctx context.Context, conn func() (*udpClient.Conn, error), path, payload string) error {
	var cc *udpClient.Conn
	var err error
	for range 50 { // the server socket may still be starting
		if cc, err = conn(); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err != nil {
		return err
	}
	req, err := cc.NewPostRequest(ctx, path, message.TextPlain, bytes.NewReader([]byte(payload)))
	if err != nil {
		return err
	}
	defer cc.ReleaseMessage(req)
	req.SetType(message.NonConfirmable)
	return cc.WriteMessage(req)
}

var sensorNames = []string{"temperature", "pressure", "humidity"}

func (n *Node) router() *mux.Router {
	r := mux.NewRouter()
	static := map[string]func() string{
		"/board": func() string { return n.cfg.Board },
		"/mcu":   func() string { return n.cfg.MCU },
		"/name":  func() string { return n.cfg.Name },
		"/os":    func() string { return n.cfg.OS },
		"/position": func() string {
			b, _ := json.Marshal(map[string]float64{"lat": n.cfg.Lat, "lng": n.cfg.Lng}) // floats always marshal
			return string(b)
		},
		"/.well-known/core": n.core,
	}
	for path, get := range static {
		_ = r.Handle(path, mux.HandlerFunc(func(w mux.ResponseWriter, m *mux.Message) {
			if m.Code() != codes.GET {
				reply(w, codes.MethodNotAllowed, "")
				return
			}
			cf := message.TextPlain
			if path == "/.well-known/core" {
				cf = message.AppLinkFormat
			}
			_ = w.SetResponse(codes.Content, cf, strings.NewReader(get()))
		}))
	}
	_ = r.Handle("/led", mux.HandlerFunc(n.handleLED))
	r.DefaultHandle(mux.HandlerFunc(func(w mux.ResponseWriter, m *mux.Message) {
		// The gateway's answers to POSTs sent from this socket land here:
		// ignored, as RIOT does; only requests get 4.04.
		if coapreply.IsRequest(m.Code()) {
			reply(w, codes.NotFound, "")
		}
	}))
	if n.cfg.Observe {
		for _, name := range n.observable() {
			_ = r.Handle("/"+name, mux.HandlerFunc(func(w mux.ResponseWriter, m *mux.Message) { n.handleObservable(w, m, name) }))
		}
	}
	return r
}

func (n *Node) observable() []string {
	var names []string
	if n.cfg.Sensors {
		names = append(names, sensorNames...)
	}
	if n.cfg.IMU {
		names = append(names, "imu")
	}
	return names
}

// core is /.well-known/core, as RIOT's gcoap lists its resources.
func (n *Node) core() string {
	links := []string{"</board>", "</led>", "</mcu>", "</name>", "</os>", "</position>"}
	if n.cfg.Observe {
		for _, name := range n.observable() {
			links = append(links, "</"+name+">;obs")
		}
	}
	return strings.Join(links, ",")
}

func (n *Node) handleLED(w mux.ResponseWriter, m *mux.Message) {
	switch m.Code() {
	case codes.GET:
		reply(w, codes.Content, ledText(n.led.Load()))
	case codes.PUT:
		var body []byte
		if m.Body() != nil {
			body, _ = io.ReadAll(io.LimitReader(m.Body(), 16))
		}
		switch string(body) {
		case "0", "1":
			n.led.Store(string(body) == "1")
			n.log.Info("led", "on", n.led.Load())
			reply(w, codes.Changed, "led:"+string(body))
		default:
			reply(w, codes.BadRequest, "")
		}
	default:
		reply(w, codes.MethodNotAllowed, "")
	}
}

func ledText(on bool) string {
	if on {
		return "1"
	}
	return "0"
}

func reply(w mux.ResponseWriter, code codes.Code, text string) {
	var body io.ReadSeeker
	if text != "" {
		body = strings.NewReader(text)
	}
	_ = w.SetResponse(code, message.TextPlain, body)
}

// handleObservable serves GET, and Observe registration (0) and
// deregistration (1), of a sensor.
func (n *Node) handleObservable(w mux.ResponseWriter, m *mux.Message, name string) {
	if m.Code() != codes.GET {
		reply(w, codes.MethodNotAllowed, "")
		return
	}
	v := n.curve.value(name, time.Now())
	obs, err := m.Options().Observe()
	switch {
	case err == nil && obs == 0:
		n.mu.Lock()
		n.observers[name] = append(n.observers[name], observer{cc: w.Conn(), token: append(message.Token(nil), m.Token()...)})
		n.seq++
		seq := n.seq
		n.mu.Unlock()
		reply(w, codes.Content, v)
		w.Message().SetObserve(seq)
	case err == nil && obs == 1:
		n.forget(name, m.Token())
		reply(w, codes.Content, v)
	default:
		reply(w, codes.Content, v)
	}
}

func (n *Node) forget(name string, token message.Token) {
	n.mu.Lock()
	defer n.mu.Unlock()
	obs := n.observers[name]
	for i, o := range obs {
		if bytes.Equal(o.token, token) {
			n.observers[name] = append(obs[:i:i], obs[i+1:]...)
			return
		}
	}
}

// Observers counts the registered observers of resource name.
func (n *Node) Observers(name string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.observers[name])
}

// notify sends v to every observer of name as a NON notification.
func (n *Node) notify(name, v string) {
	n.mu.Lock()
	n.seq++
	seq := n.seq
	obs := append([]observer(nil), n.observers[name]...)
	n.mu.Unlock()
	for _, o := range obs {
		if o.cc.Context().Err() != nil {
			n.forget(name, o.token)
			continue
		}
		m := o.cc.AcquireMessage(o.cc.Context())
		m.SetCode(codes.Content)
		m.SetToken(o.token)
		m.SetType(message.NonConfirmable)
		m.SetObserve(seq)
		m.SetContentFormat(message.TextPlain)
		m.SetBody(strings.NewReader(v))
		if err := o.cc.WriteMessage(m); err != nil {
			n.log.Debug("notify", "resource", name, "err", err)
		}
		o.cc.ReleaseMessage(m)
	}
}

// curves makes slowly varying, realistic sensor values.
type curves struct {
	mu    sync.Mutex
	rng   *rand.Rand
	phase float64
	drift map[string]float64
	start time.Time
}

func newCurves(seed uint64) *curves {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return &curves{rng: rng, phase: rng.Float64() * 2 * math.Pi, drift: map[string]float64{}, start: time.Now()}
}

// wave is a sine of period p seconds at time t, shifted by the node's phase.
func (c *curves) wave(t, p float64) float64 { return math.Sin(2*math.Pi*t/p + c.phase) }

// walk adds a bounded random walk of step s to name's drift.
func (c *curves) walk(name string, s, bound float64) float64 {
	d := c.drift[name] + (c.rng.Float64()*2-1)*s
	d = max(-bound, min(bound, d))
	c.drift[name] = d
	return d
}

func (c *curves) value(name string, now time.Time) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := now.Sub(c.start).Seconds()
	switch name {
	case "temperature":
		return fmt.Sprintf("%.1f°C", 21.5+2*c.wave(t, 600)+c.walk(name, 0.05, 0.5))
	case "pressure":
		return fmt.Sprintf("%.2fhPa", 1013.25+3*c.wave(t, 1800)+c.walk(name, 0.05, 1))
	case "humidity":
		return fmt.Sprintf("%.2f%%", 45.10+5*c.wave(t, 900)+c.walk(name, 0.1, 2))
	case "imu":
		return c.imu(t)
	}
	return ""
}

type imuSample struct {
	Type   string     `json:"type"`
	Values [3]float64 `json:"values"`
}

func (c *curves) imu(t float64) string {
	r := func(v float64) float64 { return math.Round(v*1000) / 1000 }
	acc := [3]float64{r(0.1 * c.wave(t, 7)), r(0.1 * c.wave(t, 11)), r(9.81 + 0.05*c.wave(t, 5))}
	gyro := [3]float64{r(20 * c.wave(t, 4)), r(15 * c.wave(t, 6)), r(10 * c.wave(t, 9))}
	b, _ := json.Marshal([]imuSample{{"acc", acc}, {"gyro", gyro}}) // plain structs always marshal
	return string(b)
}
