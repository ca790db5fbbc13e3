package main

import (
	"flag"
	"time"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/gateways/ws"
)

// wsPath is where websocket nodes connect on the shared HTTP listener.
const wsPath = "/node"

func wsPart() part {
	return part{
		name:    "ws",
		summary: "websocket node gateway on the HTTP listener at " + wsPath,
		register: func(fs *flag.FlagSet) func(*system) (runner, error) {
			var cfg ws.Config
			var origins listFlag
			fs.Float64Var(&cfg.FrameRate, "ws-frame-rate", 50, "frames per second one websocket node may send (bursts of 4x)")
			fs.Int64Var(&cfg.MaxFrameBytes, "ws-max-frame", 64<<10, "largest frame a websocket node may send, in bytes")
			fs.DurationVar(&cfg.CommandTimeout, "ws-command-timeout", 5*time.Second, "how long a command waits for the websocket node's answer")
			// Not --allow-origin: that one lets loopback pages open the dashboard's
			// /ws, and belongs to the dashboard part, which aiot ws runs without.
			fs.Var(&origins, "ws-allow-origin", "also let browser pages from this origin (scheme://host:port, or *) open /node; requests without Origin or from the same host always may; repeatable")
			tokensFile := fs.String("ws-node-tokens", "", "websocket node tokens file (<node id> <sha256 of token> lines, from 'aiot keys --ws-node-ids'): listed ids connect only with their token")
			fs.Float64Var(&cfg.ValueRate, "ws-value-rate", bus.DefaultNodeValueRate, "values per second one websocket node may publish (bursts of 4x); negative: no limit")
			fs.Float64Var(&cfg.NewIDsPerSource, "ws-new-nodes", bus.DefaultNewNodesPerSource, "new websocket node ids per second one source address may bring (429 past it); negative: no limit")
			return func(sys *system) (runner, error) {
				if *tokensFile != "" {
					tokens, err := ws.LoadTokens(*tokensFile)
					if err != nil {
						return nil, err
					}
					cfg.Tokens = tokens
					sys.log.Info("websocket node tokens on", "nodes", tokens.Len(), "file", *tokensFile)
				}
				nc, err := sys.connect("ws")
				if err != nil {
					return nil, err
				}
				cfg.Conn, cfg.Logger = nc, sys.log.With("part", "ws")
				cfg.Gateway, cfg.Site, cfg.NodeTimeout = sys.gatewayName("ws"), sys.opts.site, sys.opts.nodeTimeout
				cfg.MaxNodes, cfg.Claims = sys.opts.maxNodes, sys.claims
				cfg.FrameBurst = int(4 * cfg.FrameRate)
				cfg.ValueBurst = int(4 * max(cfg.ValueRate, 0))
				cfg.AllowOrigins = origins
				gw, err := ws.New(cfg)
				if err != nil {
					return nil, err
				}
				sys.handle(wsPath, gw)
				return gw, nil
			}
		},
	}
}
