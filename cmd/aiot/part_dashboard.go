package main

import (
	"flag"
	"time"

	"github.com/goaiot/goaiot/services/dashboard"
	"github.com/goaiot/goaiot/webapp"
)

func dashboardPart() part {
	return part{
		name:    "dashboard",
		summary: "web dashboard and browser websocket (/ws) on the HTTP listener, /healthz, /metrics",
		register: func(fs *flag.FlagSet) func(*system) (runner, error) {
			var cfg dashboard.Config
			var origins listFlag
			fs.Var(&origins, "allow-origin", "also let pages from this origin (scheme://host:port, or *) open /ws; repeatable, comma-separated in the environment")
			fs.BoolVar(&cfg.ReadOnly, "read-only", false, "dashboard refuses commands from browsers")
			fs.DurationVar(&cfg.CommandTimeout, "dashboard-command-timeout", 6*time.Second, "how long a browser's command waits for the gateway's answer")
			fs.IntVar(&cfg.MaxBrowsers, "max-browsers", 10_000, "most browsers connected to /ws at once")
			fs.DurationVar(&cfg.WriteDelay, "dashboard-write-delay", time.Millisecond, "least time between two writes to one browser: what comes meanwhile joins the next write; a command's result or a history is written at once (negative: none)")
			fs.DurationVar(&cfg.ForgetAfter, "forget-after", 24*time.Hour, "a node offline for longer leaves the dashboard (its history stays in the stream); 0 keeps every node")
			usersFile := fs.String("users", "", "dashboard users file (name:bcrypt-hash[:role] lines, from 'aiot passwd' or 'htpasswd -B'): browsers log in")
			fs.StringVar(&cfg.Anonymous, "anonymous", dashboard.AnonymousAuto, "role of browsers not logged in: auto (operator on this machine when there is no users file, else viewer), viewer, operator or none")
			fs.DurationVar(&cfg.SessionTTL, "session-ttl", 12*time.Hour, "how long a dashboard login lasts")
			return func(sys *system) (runner, error) {
				nc, err := sys.connect("dashboard")
				if err != nil {
					return nil, err
				}
				if *usersFile != "" {
					if cfg.Users, err = dashboard.LoadUsers(*usersFile); err != nil {
						return nil, err
					}
					sys.log.Info("dashboard login on", "users", cfg.Users.Len(), "file", *usersFile, "anonymous", cfg.Anonymous)
				}
				cfg.Conn, cfg.Logger = nc, sys.log.With("part", "dashboard")
				cfg.Version, cfg.AllowOrigins, cfg.WebApp = versionString(), origins, webapp.FS()
				cfg.Readiness = sys.readiness
				d, err := dashboard.New(cfg)
				if err != nil {
					return nil, err
				}
				for _, r := range d.Routes() {
					sys.handle(r.Pattern, r.Handler)
				}
				return d, nil
			}
		},
	}
}
