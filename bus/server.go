package bus

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ServerConfig configures the embedded nats-server. Listen addresses are
// host:port; a port of 0 picks a free one; an empty address disables that
// listener.
type ServerConfig struct {
	// Name is the server's name, unique among a hub and its sites.
	Name string
	// DataDir holds JetStream's files. Required.
	DataDir string
	// Listen is the NATS client listener. Empty: in-process clients only.
	Listen string
	// MQTTListen is nats-server's MQTT listener; MQTT nodes connect there.
	MQTTListen string
	// LeafListen accepts leaf node connections (a hub's sites).
	LeafListen string
	// LeafUsers, when set, are the only logins LeafListen accepts, each
	// with its own permissions (one per site); see leaf.go.
	LeafUsers []LeafUser
	// LeafTLS, when set, is required of leaf node connections; with
	// ClientCAs and ClientAuth set, sites must present a certificate.
	LeafTLS *tls.Config
	// LeafIsolate keeps leaf nodes apart: the interest of one is not
	// passed on to the others, so nothing flows from site to site.
	LeafIsolate bool
	// LeafRemotes are hubs this server joins as a leaf node (a site).
	LeafRemotes []LeafRemote
	// MonitorListen serves nats-server's HTTP monitoring endpoints.
	MonitorListen string
	// JetStreamDomain isolates this server's JetStream (needed for sites).
	JetStreamDomain string
	// Cluster, when set, makes this server a member of a NATS cluster
	// (cluster.go); Name must then be unique among the members.
	Cluster *ClusterConfig
	// TLS, when set, is required of NATS clients.
	TLS *tls.Config
	// Auth, when set, requires every client to sign in; each user gets the
	// permissions of its role. Nil: no authentication (loopback default).
	Auth *Auth
	// Logger receives nats-server's log lines. Required.
	Logger *slog.Logger
	// Debug and Trace enable nats-server's verbose logs.
	Debug, Trace bool
	// ReadyTimeout bounds Start; default 10 s.
	ReadyTimeout time.Duration
}

// LeafRemote is a hub to join as a leaf node. A user and password may be
// given in the URL (nats-leaf://site:secret@hub:7422).
type LeafRemote struct {
	// URL is nats-leaf://host:7422 (or tls://); the members of a clustered
	// hub comma-separated, tried in turn when the link drops.
	URL         string
	Credentials string // optional .creds file
	TLS         *tls.Config
	// DenyImports are subjects this server never takes from the hub;
	// DenyExports are subjects it never sends to the hub.
	DenyImports, DenyExports []string
}

// Server is an embedded nats-server with JetStream and, as configured, the
// MQTT and leaf node listeners.
type Server struct {
	cfg  ServerConfig
	opts *server.Options
	ns   *server.Server
	log  *serverLogger
	auth *edgeAuth
}

// NewServer validates cfg and prepares the server; Start starts it.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Logger == nil {
		return nil, errors.New("bus: server config: no logger")
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	if err := checkDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	auth, err := newEdgeAuth(cfg)
	if err != nil {
		return nil, err
	}
	opts, err := serverOptions(cfg)
	if err != nil {
		return nil, err
	}
	opts.CustomClientAuthentication = auth
	opts.AlwaysEnableNonce = true // nkey users sign a nonce
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	auth.bind(ns.GlobalAccount())
	l := &serverLogger{log: cfg.Logger}
	ns.SetLoggerV2(l, cfg.Debug, cfg.Trace, false)
	return &Server{cfg: cfg, opts: opts, ns: ns, log: l, auth: auth}, nil
}

// checkDataDir makes dir and proves it is writable.
func checkDataDir(dir string) error {
	if dir == "" {
		return errors.New("data dir: not set")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("data dir %s: not writable: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// maxClosedClients is how many closed connections nats-server remembers.
const maxClosedClients = 100

func serverOptions(cfg ServerConfig) (*server.Options, error) {
	o := &server.Options{
		ServerName:      cfg.Name,
		JetStream:       true,
		StoreDir:        cfg.DataDir, // nats-server adds "jetstream/"
		JetStreamDomain: cfg.JetStreamDomain,
		NoSigs:          true,
		Debug:           cfg.Debug,
		Trace:           cfg.Trace,
		TLSConfig:       cfg.TLS,
		// nats-server keeps the last closed connections for its /connz
		// page, 10 000 by default: with MQTT nodes that come and go, about
		// 2.5 KB each held for nothing. goaiot's own diagnostics do not use
		// them; the last 100 are kept for an operator's `nats server report`.
		MaxClosedClients: maxClosedClients,
	}
	if o.ServerName == "" {
		o.ServerName = "aiot"
	}
	var err error
	if cfg.Listen == "" {
		o.DontListen = true
	} else if o.Host, o.Port, err = splitListen("nats listen", cfg.Listen); err != nil {
		return nil, err
	}
	if cfg.MQTTListen != "" {
		if o.MQTT.Host, o.MQTT.Port, err = splitListen("mqtt listen", cfg.MQTTListen); err != nil {
			return nil, err
		}
	}
	if cfg.LeafListen != "" {
		if o.LeafNode.Host, o.LeafNode.Port, err = splitListen("leaf listen", cfg.LeafListen); err != nil {
			return nil, err
		}
		if err := leafListenerOptions(o, cfg); err != nil {
			return nil, err
		}
	}
	if cfg.MonitorListen != "" {
		if o.HTTPHost, o.HTTPPort, err = splitListen("monitor listen", cfg.MonitorListen); err != nil {
			return nil, err
		}
	}
	if cfg.Cluster != nil {
		if err := clusterOptions(o, cfg.Cluster); err != nil {
			return nil, err
		}
	}
	for _, r := range cfg.LeafRemotes {
		ro, err := remoteOptions(r)
		if err != nil {
			return nil, err
		}
		o.LeafNode.Remotes = append(o.LeafNode.Remotes, ro)
	}
	return o, nil
}

func remoteOptions(r LeafRemote) (*server.RemoteLeafOpts, error) {
	var urls []*url.URL
	secure := false
	for raw := range strings.SplitSeq(r.URL, ",") {
		u, err := leafURL(strings.TrimSpace(raw))
		if err != nil {
			return nil, err
		}
		urls = append(urls, u)
		secure = secure || u.Scheme == "tls" || u.Scheme == "wss"
	}
	return &server.RemoteLeafOpts{
		URLs:        urls,
		Credentials: r.Credentials,
		TLS:         r.TLS != nil || secure,
		TLSConfig:   r.TLS,
		DenyImports: r.DenyImports,
		DenyExports: r.DenyExports,
		// Dial only the URLs given: a hub's advertised listen addresses are
		// often not reachable from a site (NAT, containers, a relay).
		IgnoreDiscoveredServers: true,
	}, nil
}

// leafURL parses one leaf remote URL.
func leafURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("leaf remote %q: %w", raw, err)
	}
	switch u.Scheme {
	case "nats-leaf", "nats", "tls", "ws", "wss":
	default:
		return nil, fmt.Errorf("leaf remote %q: scheme must be nats-leaf, tls, ws or wss", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("leaf remote %q: no host", raw)
	}
	return u, nil
}

// splitListen parses host:port; port 0 becomes nats-server's "random port".
func splitListen(what, addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: %w", what, addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%s %q: bad port", what, addr)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// Start starts the server and waits until it accepts connections. A listener
// that cannot bind or a JetStream that cannot start is returned as an error.
func (s *Server) Start() error {
	s.ns.Start()
	deadline := time.Now().Add(s.cfg.ReadyTimeout)
	ready := false
	for !ready && time.Now().Before(deadline) && s.log.fatal() == "" {
		ready = s.ns.ReadyForConnections(20 * time.Millisecond)
	}
	if msg := s.log.fatal(); msg != "" {
		s.ns.Shutdown()
		return fmt.Errorf("nats server: %s", msg)
	}
	if !ready {
		s.ns.Shutdown()
		return fmt.Errorf("nats server: not ready after %s", s.cfg.ReadyTimeout)
	}
	if !s.ns.JetStreamEnabled() {
		s.ns.Shutdown()
		return errors.New("nats server: jetstream did not start")
	}
	s.log.markStarted()
	return nil
}

// Shutdown stops the server, closing every client connection.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// NATS returns the underlying nats-server, for in-process connections and
// monitoring.
func (s *Server) NATS() *server.Server { return s.ns }

// ClientURL is the URL NATS clients connect to; empty when not listening.
func (s *Server) ClientURL() string {
	if s.opts.DontListen {
		return ""
	}
	return s.ns.ClientURL()
}

// MQTTAddr is the MQTT listener's host:port; empty when disabled.
func (s *Server) MQTTAddr() string {
	if s.opts.MQTT.Port == 0 {
		return ""
	}
	return net.JoinHostPort(s.opts.MQTT.Host, strconv.Itoa(s.opts.MQTT.Port))
}

// LeafAddr is the leaf node listener's host:port; empty when disabled.
func (s *Server) LeafAddr() string {
	if s.opts.LeafNode.Port == 0 {
		return ""
	}
	return net.JoinHostPort(s.opts.LeafNode.Host, strconv.Itoa(s.opts.LeafNode.Port))
}

// MonitorAddr is the monitoring listener's host:port; empty when disabled.
func (s *Server) MonitorAddr() string {
	if a := s.ns.MonitorAddr(); a != nil {
		return a.String()
	}
	return ""
}
