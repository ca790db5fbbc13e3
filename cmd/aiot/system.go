package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/gateways/presence"
	"github.com/goaiot/goaiot/internal/readiness"
)

// options are the flags every command shares.
type options struct {
	data         string
	http         string
	natsListen   string
	mqttListen   string
	coapListen   string
	mqttsnListen string
	monitor      string
	natsURL      string
	site         string
	gateway      string
	logLevel     string
	logFormat    string
	nodeTimeout  time.Duration
	maxNodes     int
	stream       bus.StreamConfig
	demo         bool
	auth         string
	authDir      string
	insecureNATS bool
	nkey         string
	readyFile    string
	tls          tlsOptions // tls.go
	cluster      clusterOptions
}

func (o *options) register(fs *flag.FlagSet, embedded bool) {
	host, _ := os.Hostname()
	fs.StringVar(&o.data, "data", "aiot-data", "data directory (JetStream store)")
	fs.StringVar(&o.http, "http", ":8080", "HTTP listen address: dashboard, /ws, /node, /metrics")
	fs.StringVar(&o.natsListen, "nats-listen", "127.0.0.1:4222", "embedded NATS client listen address (empty: in-process only)")
	fs.StringVar(&o.mqttListen, "mqtt-listen", ":1883", "embedded NATS MQTT listener for MQTT nodes (empty: off)")
	fs.StringVar(&o.coapListen, "coap-listen", ":5683", "CoAP gateway UDP listen address")
	fs.StringVar(&o.mqttsnListen, "mqttsn-listen", ":1885", "MQTT-SN gateway UDP listen address")
	fs.StringVar(&o.monitor, "monitor-listen", "", "nats-server HTTP monitoring listen address (empty: off)")
	if embedded {
		fs.StringVar(&o.natsURL, "nats", "", "use this external NATS URL instead of the embedded server")
	} else {
		fs.StringVar(&o.natsURL, "nats", "nats://127.0.0.1:4222", "NATS URL to connect to")
	}
	fs.StringVar(&o.site, "site", "local", "site name carried in every $state")
	fs.StringVar(&o.gateway, "gateway-name", host, "this process's name in $state and `nats micro ls`")
	if embedded {
		fs.StringVar(&o.auth, "auth", "", "auth.json from 'aiot keys': NATS clients must sign in, each role with its permissions")
		fs.StringVar(&o.authDir, "auth-dir", "", "like --auth with DIR/auth.json, made with one key per role ('aiot keys --dir DIR') on first start")
		fs.BoolVar(&o.insecureNATS, "insecure-nats", false, "allow a --nats-listen reachable from other hosts without --auth: anyone there has every right")
	}
	fs.StringVar(&o.nkey, "nkey", "", "nkey seed file (from 'aiot keys') to sign in to --nats with")
	fs.StringVar(&o.readyFile, "ready-file", "", "once every part is bound and serving, write {\"ready\":true,\"pid\",\"took_ms\",\"addrs\":{…}} here, atomically (removed at start and exit)")
	o.tls.register(fs, embedded)
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json")
	fs.DurationVar(&o.nodeTimeout, "node-timeout", 120*time.Second, "a node silent for longer goes offline")
	fs.IntVar(&o.maxNodes, "max-nodes", 100_000, "nodes each gateway (each transport of the mqtt part) knows at most; a new id past it is refused and counted (Refused in nats micro stats)")
	o.stream = bus.DefaultStreamConfig()
	fs.Int64Var(&o.stream.History, "history", o.stream.History, "values kept per subject in the NODES stream")
	fs.DurationVar(&o.stream.MaxAge, "history-age", o.stream.MaxAge, "values older than this leave the NODES stream (0: never)")
	fs.IntVar(&o.stream.Replicas, "replicas", 1, "copies a NATS cluster keeps of the NODES stream and the key-value buckets (1 to 5; above 1 needs --cluster-listen or a clustered --nats)")
	if embedded {
		o.cluster.register(fs)
		fs.BoolVar(&o.demo, "demo", false, "also start simulated nodes of every protocol")
	}
}

func (o *options) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", o.logLevel)
	}
	ho := &slog.HandlerOptions{Level: level}
	switch o.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", o.logFormat)
}

// runner is a built component.
type runner interface {
	Run(ctx context.Context) error
}

// part is one component aiot can run: a gateway or a service. register adds
// the part's own flags and returns its builder, called once flags are parsed.
type part struct {
	name     string
	summary  string
	register func(fs *flag.FlagSet) func(sys *system) (runner, error)
}

// system is what parts are built from.
type system struct {
	opts   *options
	log    *slog.Logger
	server *bus.Server // nil against an external NATS
	mux    *http.ServeMux

	identities map[bus.Role]*bus.Identity // in-process sign-in, with --auth
	topo       topology                   // aiot hub / aiot site; nil otherwise
	// claims is the gateways' shared table of who owns which node: one
	// claim per node in this process, not one per gateway.
	claims *presence.Claims

	mu     sync.Mutex
	conns  []*nats.Conn
	served bool // a part registered an HTTP handler

	// For the demo (part_sim.go): all is true under `aiot run`; built holds
	// the parts built so far by name (to find their bound listeners);
	// httpBound is closed once the HTTP listener is bound at httpAddr (nil
	// when no part serves HTTP).
	all       bool
	built     map[string]runner
	httpBound chan struct{}
	httpAddr  net.Addr
	httpURL   string

	ready atomic.Pointer[readiness.Report] // set once every part is ready (ready.go)
}

// connect opens a bus connection named after the part; edits adjust its
// configuration.
func (s *system) connect(name string, edits ...func(*bus.ConnectConfig)) (*nats.Conn, error) {
	id, err := s.identity(name)
	if err != nil {
		return nil, err
	}
	cfg := bus.ConnectConfig{Name: "aiot-" + name, Server: s.server, URL: s.opts.natsURL, Logger: s.log, Identity: id}
	for _, edit := range edits {
		edit(&cfg)
	}
	if s.server != nil {
		cfg.URL = ""
	} else if cfg.TLS, err = s.opts.tls.natsClientTLS(); err != nil {
		return nil, err
	}
	nc, err := bus.Connect(cfg)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.conns = append(s.conns, nc)
	s.mu.Unlock()
	return nc, nil
}

// handle registers an HTTP handler on the shared listener.
func (s *system) handle(pattern string, h http.Handler) {
	s.mu.Lock()
	s.served = true
	s.mu.Unlock()
	s.mux.Handle(pattern, h)
}

// gatewayName is the name of one part in this process, e.g. "coap@host".
func (s *system) gatewayName(part string) string { return part + "@" + s.opts.gateway }

func runAll(ctx context.Context, args []string, _, stderr io.Writer) error {
	return start(ctx, args, stderr, "aiot run [flags]", parts(), true)
}

func roleCommand(name string) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, _, stderr io.Writer) error {
		for _, p := range parts() {
			if p.name == name {
				return start(ctx, args, stderr, "aiot "+name+" [flags]", []part{p}, false)
			}
		}
		return fmt.Errorf("no part %q", name)
	}
}

// topology turns the embedded server and the NODES stream into a hub's or a
// site's (hub.go, site.go): its own flags, then server settings and the
// stream once flags are parsed.
type topology interface {
	register(fs *flag.FlagSet)
	configure(sys *system, cfg *bus.ServerConfig) error
	ensureStream(ctx context.Context, js jetstream.JetStream, c bus.StreamConfig) error
}

// start parses flags, brings up the bus (embedded or external), builds the
// parts and runs them until ctx ends or one fails.
func start(ctx context.Context, args []string, stderr io.Writer, line string, ps []part, embedded bool) error {
	return startTopology(ctx, args, stderr, line, ps, embedded, nil)
}

// startTopology is start with the multi-site topology topo (nil: none).
func startTopology(ctx context.Context, args []string, stderr io.Writer, line string, ps []part, embedded bool, topo topology) error {
	fs := flag.NewFlagSet(line, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = usage(fs, line)
	var opts options
	opts.register(fs, embedded)
	if topo != nil {
		topo.register(fs)
	}
	builders := make([]func(*system) (runner, error), len(ps))
	for i, p := range ps {
		builders[i] = p.register(fs)
	}
	if r, ok := topo.(refusedFlagsOf); ok {
		if err := refuseFlags(args, fs, r.refusedParts()); err != nil {
			return err
		}
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := opts.logger(stderr)
	if err != nil {
		return err
	}
	if opts.maxNodes < 1 {
		return fmt.Errorf("--max-nodes %d: want at least 1", opts.maxNodes)
	}
	sys := &system{opts: &opts, log: log, mux: http.NewServeMux(), topo: topo, claims: presence.NewClaims(),
		all: embedded, built: make(map[string]runner), httpBound: make(chan struct{})}
	if opts.readyFile != "" {
		// A file left by an earlier run must not pass for this one's.
		if err := readiness.Remove(opts.readyFile); err != nil {
			return err
		}
		defer func() { _ = readiness.Remove(opts.readyFile) }()
	}
	began := time.Now()
	if err := sys.startBus(ctx, embedded); err != nil {
		return err
	}
	defer sys.stopBus()
	runners := make([]runner, 0, len(ps))
	for i, b := range builders {
		r, err := b(sys)
		if err != nil {
			return fmt.Errorf("%s: %w", ps[i].name, err)
		}
		runners = append(runners, r)
		sys.built[ps[i].name] = r
	}
	return sys.run(ctx, runners, began)
}

// startBus starts the embedded server (or checks the external URL) and makes
// sure the NODES stream exists.
func (s *system) startBus(ctx context.Context, embedded bool) error {
	if embedded && s.opts.natsURL == "" {
		if err := s.opts.checkNATSListen(); err != nil {
			return err
		}
		auth, err := s.loadAuth()
		if err != nil {
			return err
		}
		natsTLS, err := s.opts.tls.natsServerTLS()
		if err != nil {
			return err
		}
		cfg := bus.ServerConfig{
			TLS:           natsTLS,
			Auth:          auth,
			Name:          "aiot-" + s.opts.site,
			DataDir:       s.opts.data,
			Listen:        s.opts.natsListen,
			MQTTListen:    s.opts.mqttListen,
			MonitorListen: s.opts.monitor,
			Logger:        s.log.With("component", "nats-server"),
		}
		if s.topo != nil {
			if err := s.topo.configure(s, &cfg); err != nil {
				return err
			}
		}
		if err := s.opts.cluster.apply(&cfg, s.opts.gateway); err != nil {
			return err
		}
		if err := bus.CheckReplicas(s.opts.stream.Replicas, cfg.Cluster != nil); err != nil {
			return fmt.Errorf("--replicas: %w", err)
		}
		srv, err := bus.NewServer(cfg)
		if err != nil {
			return err
		}
		if err := srv.Start(); err != nil {
			return err
		}
		s.server = srv
		s.logListeners()
		if err := srv.WaitJetStream(ctx); err != nil {
			return err
		}
	} else if err := bus.CheckURL(s.opts.natsURL); err != nil {
		return fmt.Errorf("--nats: %w", err)
	} else if err := bus.CheckReplicas(s.opts.stream.Replicas, true); err != nil {
		return fmt.Errorf("--replicas: %w", err)
	}
	nc, err := s.connect("core")
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if !s.clustered() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return s.ensureStorage(sctx, js)
	}
	return bus.RetryJetStream(ctx, time.Minute, func(ctx context.Context) error { return s.ensureStorage(ctx, js) })
}

// ensureStorage makes the NODES stream (the hub's or a site's with a
// topology) and, on a cluster member that runs gateways, NODE_TABLES with
// --replicas copies, before the gateways of several members race to make
// it. Against an external NATS the first gateway makes NODE_TABLES (one
// copy; `nats kv add NODE_TABLES --replicas 3` first for more): other roles
// may not.
func (s *system) ensureStorage(ctx context.Context, js jetstream.JetStream) error {
	var err error
	switch {
	case s.topo != nil:
		err = s.topo.ensureStream(ctx, js, s.opts.stream)
	case s.server == nil: // an external NATS: its stream as it is (a hub's sources its sites)
		_, err = bus.UseNodesStream(ctx, js, s.opts.stream)
	default:
		_, err = bus.EnsureNodesStream(ctx, js, s.opts.stream)
	}
	if err != nil {
		return err
	}
	if _, hub := s.topo.(*hubTopology); s.server != nil && s.server.Clustered() && !hub {
		return bus.EnsureNodeTablesReplicas(ctx, js, s.opts.stream.Replicas)
	}
	return nil
}

// clustered tells whether the bus is (or may be) a NATS cluster: an
// embedded member, or more than one replica asked of an external NATS.
func (s *system) clustered() bool {
	return s.opts.stream.Replicas > 1 || (s.server != nil && s.server.Clustered())
}

func (s *system) logListeners() {
	if u := s.server.ClientURL(); u != "" {
		s.log.Info("listening", "what", "nats", "url", u)
	}
	if a := s.server.MQTTAddr(); a != "" {
		s.log.Info("listening", "what", "mqtt", "addr", a)
	}
	if a := s.server.ClusterAddr(); a != "" {
		s.log.Info("listening", "what", "nats-cluster", "addr", a, "server", s.server.NATS().Name())
	}
	if a := s.server.LeafAddr(); a != "" {
		s.log.Info("listening", "what", "leafnodes", "addr", a)
	}
	if a := s.server.MonitorAddr(); a != "" {
		s.log.Info("listening", "what", "nats-monitor", "url", "http://"+a)
	}
}

// run serves HTTP if a part asked for it, and runs the parts until ctx ends
// or one fails; then it gives them a few seconds to stop.
func (s *system) run(ctx context.Context, runners []runner, began time.Time) error {
	g, gctx := errgroup.WithContext(ctx)
	if s.served {
		httpTLS, err := s.opts.tls.httpTLS(s.opts.data, s.log)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", s.opts.http)
		if err != nil {
			return fmt.Errorf("--http: %w", err)
		}
		scheme := "http://"
		if httpTLS != nil {
			ln, scheme = tls.NewListener(ln, httpTLS), "https://"
		}
		s.httpAddr, s.httpURL = ln.Addr(), scheme+ln.Addr().String()
		s.log.Info("listening", "what", "http", "url", s.httpURL)
		hs := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
		g.Go(func() error { return serveHTTP(gctx, hs, ln) })
	}
	close(s.httpBound)
	for _, r := range runners {
		g.Go(func() error { return r.Run(gctx) })
	}
	g.Go(func() error { return s.awaitReady(gctx, runners, began) })
	g.Go(func() error { <-gctx.Done(); return nil }) // run until stopped, even with no parts
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err := <-done:
		return err
	case <-gctx.Done():
	}
	s.log.Info("stopping")
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		return errors.New("parts did not stop within 5 s")
	}
}

func serveHTTP(ctx context.Context, hs *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	return nil
}

// stopBus flushes and closes every connection, then stops the embedded
// server.
func (s *system) stopBus() {
	s.mu.Lock()
	conns := s.conns
	s.mu.Unlock()
	for _, nc := range conns {
		_ = nc.FlushTimeout(time.Second)
		nc.Close()
	}
	if s.server != nil {
		s.server.Shutdown()
	}
	s.log.Info("stopped")
}
