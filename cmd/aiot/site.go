package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/internal/tlsconfig"
	"github.com/goaiot/goaiot/sites"
)

// siteCommand is `aiot site --hub nats-leaf://host:7422 --site NAME`: what
// `aiot run` runs (gateways, dashboard, --demo), on an embedded NATS that is
// a leaf node of the hub, with its own JetStream domain (the site's name)
// and NODES stream, plus the site's heartbeat.
func siteCommand(ctx context.Context, args []string, _, stderr io.Writer) error {
	return startTopology(ctx, args, stderr, "aiot site --hub URL --site NAME [flags]", append(parts(), siteBeaconPart()), true, &siteTopology{})
}

// siteTopology is a site's server and stream.
type siteTopology struct {
	hub   string
	creds string
	tls   tlsFlags
}

func (s *siteTopology) register(fs *flag.FlagSet) {
	fs.StringVar(&s.hub, "hub", "", "the hub's leaf node URL: nats-leaf://host:7422 (tls://… for TLS; nats-leaf://site:password@host:7422 with --leaf-users on the hub)")
	fs.StringVar(&s.creds, "hub-creds", "", "NATS .creds file to join the hub with (operator/JWT setups)")
	s.tls.register(fs, "hub-tls", "link to the hub", "the hub's certificate (default: system roots)")
}

func (s *siteTopology) configure(sys *system, cfg *bus.ServerConfig) error {
	if s.hub == "" {
		return errors.New("--hub: required (nats-leaf://host:7422)")
	}
	if sys.opts.site == "local" {
		return errors.New(`--site: required: each site needs a name of its own (not the default "local")`)
	}
	if err := sites.ValidateName(sys.opts.site); err != nil {
		return fmt.Errorf("--site: %w", err)
	}
	t, err := tlsconfig.Client(s.tls.files)
	if err != nil {
		return fmt.Errorf("--hub-tls: %w", err)
	}
	cfg.JetStreamDomain = sys.opts.site
	cfg.LeafRemotes = []bus.LeafRemote{{URL: s.hub, Credentials: s.creds, TLS: t,
		DenyImports: sites.LeafDeny(), DenyExports: sites.LeafDeny()}}
	return nil
}

func (s *siteTopology) ensureStream(ctx context.Context, js jetstream.JetStream, c bus.StreamConfig) error {
	_, err := bus.EnsureNodesStream(ctx, js, c)
	return err
}

// siteBeaconPart publishes the site's heartbeat for the hub.
func siteBeaconPart() part {
	return part{
		name:    "heartbeat",
		summary: "the site's heartbeat to the hub",
		register: func(fs *flag.FlagSet) func(*system) (runner, error) {
			var every time.Duration
			fs.DurationVar(&every, "heartbeat", 2*time.Second, "the site's heartbeat period (the hub marks it down after --site-misses)")
			return func(sys *system) (runner, error) {
				nc, err := sys.connect("heartbeat")
				if err != nil {
					return nil, err
				}
				return sites.NewBeacon(sites.BeaconConfig{Conn: nc, Logger: sys.log.With("part", "heartbeat"), Site: sys.opts.site, Interval: every})
			}
		},
	}
}
