package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/services/dashboard"
	"github.com/goaiot/goaiot/sites"
)

// hubCommand is `aiot hub`: NATS with a leaf node listener for the sites,
// the NODES history sourced from the sites' streams, the dashboard and the
// sites monitor. It takes the flags of `aiot run`; gateways run at sites.
func hubCommand(ctx context.Context, args []string, _, stderr io.Writer) error {
	return startTopology(ctx, args, stderr, "aiot hub [flags]", hubParts(), true, &hubTopology{})
}

// hubParts are the parts of `aiot run` with their flags, of which only the
// dashboard runs, plus the sites monitor. A hub stores only what it sources
// from sites (see package sites), so gateways at the hub's location run as
// a site of their own (`aiot site`), not inside the hub.
func hubParts() []part {
	var out []part
	for _, p := range parts() {
		if p.name != "dashboard" {
			p = flagsOnly(p)
		}
		out = append(out, p)
	}
	return append(out, sitesMonitorPart())
}

// flagsOnly keeps a part's flags and runs nothing.
func flagsOnly(p part) part {
	register := p.register
	p.register = func(fs *flag.FlagSet) func(*system) (runner, error) {
		register(fs)
		return func(*system) (runner, error) { return idle{}, nil }
	}
	return p
}

// idle is a part that does not run here.
type idle struct{}

func (idle) Run(context.Context) error { return nil }

// hubTopology is the hub's server and stream.
type hubTopology struct {
	leafListen    string
	leafUsers     string
	insecureLeafs bool
	tls           tlsFlags
	sites         listFlag
}

func (h *hubTopology) register(fs *flag.FlagSet) {
	fs.StringVar(&h.leafListen, "leaf-listen", ":7422", "leaf node listener the sites join (aiot site --hub nats-leaf://this-host:7422)")
	fs.StringVar(&h.leafUsers, "leaf-users", "", "file of per-site leaf logins, lines \"<site> <password or bcrypt hash>\": sites must log in and may send only their own tree (empty: any site may join)")
	fs.BoolVar(&h.insecureLeafs, "insecure-leafs", false, "allow a leaf listener without --leaf-users or --leaf-tls-ca: any leaf node may join, command every site and reach the JetStream API")
	h.tls.register(fs, "leaf-tls", "leaf listener", "the sites' client certificates (then required)")
	fs.Var(&h.sites, "sites", "sites to source from at start (any other is added at its first heartbeat); repeatable, comma-separated in the environment")
}

func (h *hubTopology) configure(_ *system, cfg *bus.ServerConfig) error {
	if h.leafListen == "" {
		return errors.New("--leaf-listen: empty: sites could not join")
	}
	if h.leafUsers == "" && h.tls.ca == "" && !h.insecureLeafs {
		return fmt.Errorf("--leaf-listen %s without --leaf-users or --leaf-tls-ca: any leaf node could join, command every site and reach the JetStream API; "+
			"give --leaf-users FILE (one login per site) or --leaf-tls-ca, or accept it with --insecure-leafs", h.leafListen)
	}
	cfg.Name, cfg.JetStreamDomain = "aiot-hub", sites.HubDomain
	cfg.LeafListen, cfg.LeafIsolate = h.leafListen, true
	var err error
	if cfg.LeafTLS, err = h.tls.server(); err != nil {
		return err
	}
	if h.leafUsers != "" {
		if cfg.LeafUsers, err = loadLeafUsers(h.leafUsers); err != nil {
			return fmt.Errorf("--leaf-users: %w", err)
		}
	}
	return nil
}

func (h *hubTopology) ensureStream(ctx context.Context, js jetstream.JetStream, c bus.StreamConfig) error {
	_, err := sites.EnsureHubStream(ctx, js, c, h.sites...)
	return err
}

// loadLeafUsers reads lines "<site> <password or bcrypt hash>" (blank lines
// and # comments skipped); each site may send only sites.LeafPublish.
func loadLeafUsers(path string) ([]bus.LeafUser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var users []bus.LeafUser
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: want \"<site> <password>\"", n)
		}
		if err := sites.ValidateName(fields[0]); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		users = append(users, bus.LeafUser{User: fields[0], Password: fields[1], Publish: sites.LeafPublish(fields[0])})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, errors.New("no users")
	}
	return users, nil
}

// sitesMonitorPart is the hub's sites monitor: link states, id collisions,
// the stream's sources; /sites and /metrics/sites on the HTTP listener.
func sitesMonitorPart() part {
	return part{
		name:    "sites",
		summary: "the hub's view of its sites: heartbeats, link state, id collisions, sourcing",
		register: func(fs *flag.FlagSet) func(*system) (runner, error) {
			var misses int
			fs.IntVar(&misses, "site-misses", 3, "a site's link is marked down after this many missed heartbeats")
			return func(sys *system) (runner, error) {
				nc, err := sys.connect("core") // adds sources to the NODES stream: the admin's job
				if err != nil {
					return nil, err
				}
				reg := prometheus.NewRegistry()
				mon, err := sites.NewMonitor(sites.MonitorConfig{Conn: nc, Logger: sys.log.With("part", "sites"), Registerer: reg, Misses: misses})
				if err != nil {
					return nil, err
				}
				d, ok := sys.built["dashboard"].(*dashboard.Dashboard)
				if !ok {
					return nil, errors.New("/sites follows the dashboard's login: no dashboard")
				}
				sys.handle("/metrics/sites", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
				sys.handle("/sites", d.RequireViewer(sitesHandler(mon)))
				return mon, nil
			}
		},
	}
}

// sitesHandler serves the monitor's view as JSON.
func sitesHandler(mon *sites.Monitor) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Sites      []sites.SiteInfo    `json:"sites"`
			Collisions map[string][]string `json:"collisions"`
		}{mon.Sites(), mon.Collisions()})
	})
}

// tlsFlags are the PEM files of one TLS endpoint.
type tlsFlags struct{ cert, key, ca string }

func (t *tlsFlags) register(fs *flag.FlagSet, prefix, what, caWhat string) {
	fs.StringVar(&t.cert, prefix+"-cert", "", what+": PEM certificate (with -key: TLS on)")
	fs.StringVar(&t.key, prefix+"-key", "", what+": PEM private key of -cert")
	fs.StringVar(&t.ca, prefix+"-ca", "", what+": PEM CA that signed "+caWhat)
}

func (t tlsFlags) certificates() ([]tls.Certificate, error) {
	if t.cert == "" && t.key == "" {
		return nil, nil
	}
	c, err := tls.LoadX509KeyPair(t.cert, t.key)
	if err != nil {
		return nil, fmt.Errorf("tls certificate: %w", err)
	}
	return []tls.Certificate{c}, nil
}

func (t tlsFlags) pool() (*x509.CertPool, error) {
	if t.ca == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(t.ca)
	if err != nil {
		return nil, fmt.Errorf("tls ca: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls ca %s: no PEM certificate", t.ca)
	}
	return p, nil
}

// server is the listener's TLS config, nil when no flag is set.
func (t tlsFlags) server() (*tls.Config, error) {
	if t.cert == "" && t.key == "" && t.ca == "" {
		return nil, nil
	}
	certs, err := t.certificates()
	if err != nil {
		return nil, err
	}
	if certs == nil {
		return nil, errors.New("tls: a listener needs a certificate and its key")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: certs}
	if cfg.ClientCAs, err = t.pool(); err != nil {
		return nil, err
	}
	if cfg.ClientCAs != nil {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// client is a dialer's TLS config, nil when no flag is set.
func (t tlsFlags) client() (*tls.Config, error) {
	if t.cert == "" && t.key == "" && t.ca == "" {
		return nil, nil
	}
	certs, err := t.certificates()
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: certs}
	if cfg.RootCAs, err = t.pool(); err != nil {
		return nil, err
	}
	return cfg, nil
}
