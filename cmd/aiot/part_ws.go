package main

import (
	"flag"
	"time"

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
			fs.Float64Var(&cfg.FrameRate, "ws-frame-rate", 50, "frames per second one websocket node may send (bursts of 4x)")
			fs.Int64Var(&cfg.MaxFrameBytes, "ws-max-frame", 64<<10, "largest frame a websocket node may send, in bytes")
			fs.DurationVar(&cfg.CommandTimeout, "ws-command-timeout", 5*time.Second, "how long a command waits for the websocket node's answer")
			return func(sys *system) (runner, error) {
				nc, err := sys.connect("ws")
				if err != nil {
					return nil, err
				}
				cfg.Conn, cfg.Logger = nc, sys.log.With("part", "ws")
				cfg.Gateway, cfg.Site, cfg.NodeTimeout = sys.gatewayName("ws"), sys.opts.site, sys.opts.nodeTimeout
				cfg.FrameBurst = int(4 * cfg.FrameRate)
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
