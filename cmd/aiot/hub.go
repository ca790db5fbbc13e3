package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/internal/tlsconfig"
	"github.com/goaiot/goaiot/services/dashboard"
	"github.com/goaiot/goaiot/sites"
)

// hubCommand is `aiot hub`: NATS with a leaf node listener for the sites,
// the NODES history sourced from the sites' streams, the dashboard and the
// sites monitor. It takes the flags of `aiot run` but those of the parts
// that do not run here (gateways run at sites): these it refuses.
func hubCommand(ctx context.Context, args []string, _, stderr io.Writer) error {
	return startTopology(ctx, args, stderr, "aiot hub [flags]", hubParts(), true, &hubTopology{})
}

// hubParts are the parts that run in the hub: the dashboard and the
// command queue of `aiot run`, and the sites monitor. A hub stores only
// what it sources from sites (see package sites), so gateways at the hub's
// location run as a site of their own (`aiot site`), not inside the hub;
// hubTopology refuses their flags. The queue must run at the hub: it is
// the one that answers the hub's commands to nodes no gateway owns, from
// the hub's view of every site (gateways/queue, "Replies").
func hubParts() []part {
	var out []part
	for _, p := range parts() {
		if hubRuns(p) {
			out = append(out, p)
		}
	}
	return append(out, sitesMonitorPart())
}

// hubRuns tells the parts of `aiot run` that also run in the hub.
func hubRuns(p part) bool { return p.name == "dashboard" || p.name == "queue" }

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

// refusedParts are the parts of `aiot run` that do not run in the hub:
// their flags are refused (startTopology), not silently ignored.
func (h *hubTopology) refusedParts() []part {
	var out []part
	for _, p := range parts() {
		if !hubRuns(p) {
			out = append(out, p)
		}
	}
	return out
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
	if h.leafUsers == "" && h.tls.files.CA == "" && !h.insecureLeafs {
		return fmt.Errorf("--leaf-listen %s without --leaf-users or --leaf-tls-ca: any leaf node could join, command every site and reach the JetStream API; "+
			"give --leaf-users FILE (one login per site) or --leaf-tls-ca, or accept it with --insecure-leafs", h.leafListen)
	}
	cfg.Name, cfg.JetStreamDomain = "aiot-hub", sites.HubDomain
	cfg.LeafListen, cfg.LeafIsolate = h.leafListen, true
	var err error
	if cfg.LeafTLS, err = tlsconfig.Server(h.tls.files); err != nil {
		return fmt.Errorf("--leaf-tls: %w", err)
	}
	if h.leafUsers != "" {
		if cfg.LeafUsers, err = sites.LoadLeafUsers(h.leafUsers); err != nil {
			return fmt.Errorf("--leaf-users: %w", err)
		}
	}
	return nil
}

func (h *hubTopology) ensureStream(ctx context.Context, js jetstream.JetStream, c bus.StreamConfig) error {
	_, err := sites.EnsureHubStream(ctx, js, c, h.sites...)
	return err
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
				mon, err := sites.NewMonitor(sites.MonitorConfig{Conn: nc, Logger: sys.log.With("part", "sites"), Misses: misses})
				if err != nil {
					return nil, err
				}
				d, ok := sys.built["dashboard"].(*dashboard.Dashboard)
				if !ok {
					return nil, errors.New("/sites follows the dashboard's login: no dashboard")
				}
				sys.handle("/metrics/sites", mon.MetricsHandler())
				sys.handle("/sites", d.RequireViewer(mon.Handler()))
				return mon, nil
			}
		},
	}
}
