package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/gateways/coap"
)

func coapPart() part {
	return part{
		name:    "coap",
		summary: "CoAP gateway for RIOT nodes (UDP --coap-listen, optional DTLS with pre-shared keys)",
		register: func(fs *flag.FlagSet) func(*system) (runner, error) {
			var cfg coap.Config
			var nodePort int
			var keys string
			fs.IntVar(&nodePort, "coap-node-port", coap.DefaultNodePort, "port of the CoAP nodes' own servers (0: the source port of their /alive, for NAT)")
			fs.StringVar(&cfg.DTLSListen, "coap-dtls-listen", "", "CoAP over DTLS (pre-shared keys) UDP listen address, e.g. :5684 (empty: off)")
			fs.StringVar(&keys, "coap-dtls-keys", "", "DTLS pre-shared keys file, mode 600: lines of \"<identity> <hex key>\"")
			fs.DurationVar(&cfg.CommandTimeout, "coap-command-timeout", 5*time.Second, "time a CoAP node has to answer a command")
			fs.Float64Var(&cfg.SourceRate, "coap-rate", 1000, "POSTs accepted per second from one source address (more get 4.29; -1: no limit)")
			fs.DurationVar(&cfg.QuietPeerIdle, "coap-quiet-peer-idle", 500*time.Millisecond, "a CoAP peer that only sent NON requests is forgotten after this much silence (others after 10 s; longer keeps fast senders' state, shorter holds less memory; negative: 10 s)")
			fs.Float64Var(&cfg.DiscoveryRate, "coap-discovery-rate", 10, "discoveries started per second toward one address (bounds reflection of spoofed beacons; -1: no limit)")
			return func(sys *system) (runner, error) {
				switch {
				case nodePort < 0 || nodePort > 65535:
					return nil, fmt.Errorf("--coap-node-port %d: want 0-65535", nodePort)
				case nodePort == 0:
					cfg.NodePort = coap.SourcePort
				default:
					cfg.NodePort = nodePort
				}
				if (cfg.DTLSListen == "") != (keys == "") {
					return nil, fmt.Errorf("--coap-dtls-listen and --coap-dtls-keys go together")
				}
				if keys != "" {
					k, err := coap.LoadPSKFile(keys)
					if err != nil {
						return nil, err
					}
					cfg.DTLSKeys = k
				}
				// The gateway needs none of its own messages back: its
				// tracker skips its own node.check (one per beacon) and
				// $state, and it serves what others send.
				nc, err := sys.connect("coap", func(c *bus.ConnectConfig) { c.NoEcho = true })
				if err != nil {
					return nil, err
				}
				cfg.Conn, cfg.Logger, cfg.Listen = nc, sys.log.With("part", "coap"), sys.opts.coapListen
				cfg.Gateway, cfg.Site, cfg.NodeTimeout = sys.gatewayName("coap"), sys.opts.site, sys.opts.nodeTimeout
				cfg.MaxNodes, cfg.Claims = sys.opts.maxNodes, sys.claims
				return coap.New(cfg)
			}
		},
	}
}
