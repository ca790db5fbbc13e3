package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/goaiot/goaiot/bench"
)

// benchCommand is `aiot bench`: the load tool (see package bench).
func benchCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	line := "aiot bench [flags]"
	fs := flag.NewFlagSet(line, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = usage(fs, line)
	var cfg bench.Config
	var scenarios, rate, serverArgs, logLevel, noop string
	var asJSON bool
	t := &cfg.Target
	fs.StringVar(&scenarios, "scenario", bench.ScenarioCoAP, "comma-separated: "+strings.Join(bench.Scenarios, ", ")+" or all")
	fs.StringVar(&t.Kind, "target", bench.KindGoaiot, "kind of system: goaiot or pyaiot (no synced/result messages)")
	fs.StringVar(&t.HTTP, "http", "", "running goaiot's HTTP URL (http://127.0.0.1:8080); no address at all: bench starts aiot run itself")
	fs.StringVar(&t.WSURL, "ws-url", "", "browser websocket URL (default <http>/ws; Pyaiot: ws://127.0.0.1:8000/ws)")
	fs.StringVar(&t.NodeURL, "node-url", "", "websocket node URL (default <http>/node; Pyaiot: ws://127.0.0.1:8001/node)")
	fs.StringVar(&t.NATS, "nats", "", "the system's NATS URL (bus-stage latency, NATS baseline, nats req commands)")
	fs.StringVar(&t.CoAP, "coap", "", "CoAP gateway UDP address (127.0.0.1:5683)")
	fs.StringVar(&t.MQTT, "mqtt", "", "MQTT broker address for MQTT nodes (127.0.0.1:1883)")
	fs.StringVar(&t.MQTTSN, "mqttsn", "", "MQTT-SN gateway UDP address (127.0.0.1:1885)")
	fs.IntVar(&t.CoAPNodePort, "coap-node-port", 5683, "with --coap: the port the gateway reaches CoAP nodes at")
	fs.Func("pids", "external system: comma-separated process ids whose CPU and memory to report, summed (e.g. Pyaiot's broker and websocket gateway)", func(s string) error {
		for f := range strings.SplitSeq(s, ",") {
			pid, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || pid <= 0 {
				return fmt.Errorf("%q: want process ids", s)
			}
			t.PIDs = append(t.PIDs, pid)
		}
		return nil
	})
	fs.IntVar(&cfg.Nodes, "nodes", 0, "nodes per scenario (0: the scenario's default)")
	fs.IntVar(&cfg.Browsers, "browsers", 0, "browsers per scenario (0: the scenario's default)")
	fs.IntVar(&cfg.Dashboards, "dashboards", 0, "dashboard: dashboard processes side by side on one NATS, browsers spread over them (0: 1)")
	fs.StringVar(&rate, "rate", "", "values (commands, registrations) per second, or max: as fast as the system takes (CoAP: a closed loop; ws, mqtt, mqttsn: every node as fast as its connection takes) (empty: the scenario's default)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "sending time per scenario (0: the scenario's default, 10s)")
	fs.Int64Var(&cfg.MaxValues, "max-values", 0, "most values one scenario sends (0: 5000000)")
	fs.IntVar(&cfg.Resources, "resources", 0, "resources per node the values rotate over (0: 4)")
	fs.IntVar(&cfg.Window, "window", 0, "confirmable requests in flight with --rate max (0: 64)")
	fs.IntVar(&cfg.Strangers, "strangers", 0, "extra CoAP nodes that send values without registering (their values must be counted lost)")
	fs.DurationVar(&cfg.Beacon, "beacon", 0, "scale, scale-mqtt, scale-ws: beacon period of each node (0: 30s; scale-ws: how often a dropped node dials again)")
	fs.DurationVar(&cfg.Hold, "hold", 0, "scale, scale-mqtt, scale-ws: how long the nodes are held online (0: 65s)")
	fs.StringVar(&cfg.ProfileDir, "cpu-profiles", "", "self-started system: write CPU, block and mutex profiles of the server per scenario into this directory (go tool pprof <dir>/<scenario>[.block|.mutex].pprof)")
	fs.StringVar(&cfg.IDPrefix, "id-prefix", "bench", "simulated node ids are <prefix>-<scenario>-<n>: one prefix per bench run at once against one system")
	fs.BoolVar(&cfg.OnePerFrame, "one-per-frame", false, "goaiot browsers ask for one message per frame (the page before issue 17), not several")
	fs.BoolVar(&cfg.NoBaselines, "no-baselines", false, "skip the baselines (NATS pub/sub, no-op go-coap, mosquitto)")
	fs.StringVar(&cfg.Binary, "aiot", "", "aiot binary for the self-started system (default: this one)")
	fs.StringVar(&serverArgs, "server-args", "", "extra flags for the self-started aiot run, space-separated")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON instead of tables")
	fs.StringVar(&logLevel, "log-level", "warn", "bench's own log: debug, info, warn or error")
	fs.StringVar(&noop, "noop-coap", "", "internal: serve the no-op go-coap baseline at this address")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if noop != "" {
		return bench.ServeNoopCoAP(ctx, noop, stdout)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: %w", logLevel, err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.Scenarios = strings.Split(scenarios, ",")
	cfg.ServerArgs = strings.Fields(serverArgs)
	switch rate {
	case "":
	case "max":
		cfg.Rate = bench.RateMax
	default:
		r, err := strconv.ParseFloat(rate, 64)
		if err != nil || r <= 0 {
			return fmt.Errorf("--rate %q: want a positive number or max", rate)
		}
		cfg.Rate = r
	}
	if f, ok := stderr.(*os.File); ok && bench.IsTerminal(f) {
		cfg.Progress = stderr
	}
	began := time.Now()
	rep, err := bench.Run(ctx, cfg)
	if rep == nil {
		return err
	}
	if asJSON {
		if werr := rep.WriteJSON(stdout); werr != nil {
			return werr
		}
	} else if werr := rep.WriteTable(stdout); werr != nil {
		return werr
	}
	cfg.Logger.Info("bench done", "took", time.Since(began).Round(time.Millisecond))
	return err
}
