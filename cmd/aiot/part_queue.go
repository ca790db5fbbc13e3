package main

import (
	"flag"
	"time"

	"github.com/goaiot/goaiot/gateways/queue"
)

// queuePart answers commands to nodes no gateway owns and keeps commands
// for offline nodes (gateways/queue). It runs wherever gateways run (`aiot
// run`, `aiot site`, or alone with `aiot queue`) and in the hub.
func queuePart() part {
	return part{
		name:    "queue",
		summary: "commands sent with Aiot-Queue-For wait for offline nodes, in the AIOT_QUEUE bucket, and go out when the node is back",
		register: func(fs *flag.FlagSet) func(*system) (runner, error) {
			var cfg queue.Config
			on := true
			fs.BoolVar(&on, "queue", true, "answer commands to nodes no gateway owns: queued (with Aiot-Queue-For), refused as offline, or no_gateway for ids never seen (false: nobody answers them, requests time out)")
			fs.DurationVar(&cfg.MaxFor, "queue-max-for", 24*time.Hour, "longest Aiot-Queue-For a command may ask")
			fs.IntVar(&cfg.MaxNodes, "queue-max-nodes", 1000, "most nodes with commands waiting (each: one command per resource, at most 16 resources)")
			fs.DurationVar(&cfg.ForgetAfter, "queue-forget-after", 24*time.Hour, "a node offline for longer with no command waiting is no longer followed (its commands are answered no_gateway); 0 keeps every node")
			return func(sys *system) (runner, error) {
				if !on {
					return idle{}, nil
				}
				nc, err := sys.connect("queue")
				if err != nil {
					return nil, err
				}
				if cfg.ForgetAfter == 0 {
					cfg.ForgetAfter = -1 // the flag's 0 is queue.Config's "never"
				}
				cfg.Conn, cfg.Logger = nc, sys.log.With("part", "queue")
				cfg.Replicas = sys.opts.stream.Replicas
				return queue.New(cfg)
			}
		},
	}
}
