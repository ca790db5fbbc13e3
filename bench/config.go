package bench

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Scenario names.
const (
	ScenarioCoAP   = "coap"
	ScenarioMQTT   = "mqtt"
	ScenarioMQTTSN = "mqttsn"
	ScenarioWS     = "ws"
	ScenarioFanout = "fanout"
	// ScenarioDashboard is the dashboard alone: values published on NATS
	// as a gateway would, to browsers.
	ScenarioDashboard = "dashboard"
	ScenarioCommand   = "command"
	ScenarioScale     = "scale"
	// ScenarioScaleMQTT is scale with MQTT nodes on the MQTT listener.
	ScenarioScaleMQTT = "scale-mqtt"
	// ScenarioScaleWS is scale with idle websocket nodes on /node.
	ScenarioScaleWS = "scale-ws"
	ScenarioAll     = "all"
)

// Scenarios lists every scenario in the order "all" runs them (scale last:
// its nodes stay registered until they time out), except scale-mqtt and
// scale-ws, run only when named.
var Scenarios = []string{ScenarioCoAP, ScenarioWS, ScenarioMQTT, ScenarioMQTTSN, ScenarioFanout, ScenarioDashboard, ScenarioCommand, ScenarioScale, ScenarioScaleMQTT, ScenarioScaleWS}

// RateMax as Config.Rate sends as fast as the system takes: CoAP, a closed
// loop of confirmable requests; websocket, MQTT and MQTT-SN nodes, each
// node as fast as its connection takes; dashboard, as fast as the server
// takes the publications.
const RateMax = -1

// Config configures a run. Zero values take each scenario's default (see
// defaults).
type Config struct {
	// Scenarios to run, in order; "all" is every one.
	Scenarios []string
	// Target is the system under test; with no address at all, bench starts
	// `Binary run` itself.
	Target Target
	// Binary is the aiot binary for the child system and the no-op CoAP
	// server; default this executable.
	Binary string
	// ServerArgs are extra flags for the child `aiot run`.
	ServerArgs []string

	// Nodes, Browsers, Rate (values, commands or registrations per
	// second; RateMax: as fast as the system takes) and Duration of each
	// scenario.
	Nodes, Browsers int
	Rate            float64
	Duration        time.Duration
	// MaxValues bounds the values one scenario sends. Default 5 000 000.
	MaxValues int64
	// Resources per node that values rotate over (b0, b1, …). Default 4.
	Resources int
	// Window is the number of confirmable requests in flight in a closed
	// loop. Default 64.
	Window int
	// Strangers are extra nodes that send values without ever registering:
	// the system should drop what they send, and bench count it as lost.
	Strangers int
	// Beacon and Hold: the scale scenario's beacon period (default 30 s)
	// and how long it holds the nodes online (default 65 s).
	Beacon, Hold time.Duration
	// ProfileDir, when set, gets a CPU profile of the self-started server
	// for each scenario's measurement (<scenario>.pprof; the server runs
	// with --pprof on a random loopback port).
	ProfileDir string
	// Dashboards is the number of dashboard processes the dashboard
	// scenario spreads its browsers over: the target's and Dashboards-1
	// `aiot dashboard` children on its NATS. Default 1.
	Dashboards int
	// IDPrefix starts every simulated node id (<prefix>-ws-1, …); default
	// "bench". Benches run at once against one system (the members of a
	// cluster) need one each, or their nodes would claim the same ids.
	IDPrefix string
	// OnePerFrame makes goaiot browsers ask for one message per frame, as
	// goaiot's page did before issue 17 (default: batch=1, several a frame).
	OnePerFrame bool
	// NoBaselines skips the baselines.
	NoBaselines bool
	// Progress receives a progress line (a terminal); nil for none.
	Progress io.Writer
	// Logger receives what bench does; nil discards.
	Logger *slog.Logger
}

// params are one scenario's settings after defaults.
type params struct {
	scenario  string
	nodes     int
	browsers  int
	rate      float64
	duration  time.Duration
	maxValues int64
	resources int
	window    int
	strangers int
	beacon    time.Duration
	hold      time.Duration
}

// defaults are each scenario's settings when Config leaves them zero.
var defaults = map[string]params{
	ScenarioCoAP:      {nodes: 100, browsers: 1, rate: RateMax, duration: 10 * time.Second},
	ScenarioWS:        {nodes: 100, browsers: 1, rate: 1000, duration: 10 * time.Second},
	ScenarioMQTT:      {nodes: 100, browsers: 1, rate: 1000, duration: 10 * time.Second},
	ScenarioMQTTSN:    {nodes: 100, browsers: 1, rate: 1000, duration: 10 * time.Second},
	ScenarioFanout:    {nodes: 10, browsers: 100, rate: 1000, duration: 10 * time.Second},
	ScenarioDashboard: {nodes: 10, browsers: 100, rate: 1000, duration: 10 * time.Second},
	ScenarioCommand:   {nodes: 10, browsers: 10, rate: 50, duration: 10 * time.Second},
	ScenarioScale:     {nodes: 100_000, browsers: 1, rate: 2000, duration: 0},
	ScenarioScaleMQTT: {nodes: 100_000, browsers: 1, rate: 2000, duration: 0},
	ScenarioScaleWS:   {nodes: 10_000, browsers: 1, rate: 500, duration: 0},
}

func (c *Config) params(scenario string) params {
	p := defaults[scenario]
	p.scenario = scenario
	set := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	set(&p.nodes, c.Nodes)
	set(&p.browsers, c.Browsers)
	if c.Rate != 0 {
		p.rate = c.Rate
	}
	if c.Duration != 0 {
		p.duration = c.Duration
	}
	p.maxValues = c.MaxValues
	if p.maxValues == 0 {
		p.maxValues = 5_000_000
	}
	p.resources = c.Resources
	if p.resources == 0 {
		p.resources = 4
	}
	p.window = c.Window
	if p.window == 0 {
		p.window = 64
	}
	p.strangers = c.Strangers
	p.beacon, p.hold = c.Beacon, c.Hold
	if p.beacon == 0 {
		p.beacon = 30 * time.Second
	}
	if p.hold == 0 {
		p.hold = 65 * time.Second
	}
	return p
}

func (c *Config) validate() ([]string, error) {
	var out []string
	for _, s := range c.Scenarios {
		if s == ScenarioAll { // scale-mqtt only when named: 100 000 connections
			out = append(out, slices.DeleteFunc(slices.Clone(Scenarios), func(s string) bool { return s == ScenarioScaleMQTT || s == ScenarioScaleWS })...)
			continue
		}
		if !slices.Contains(Scenarios, s) {
			return nil, fmt.Errorf("scenario %q: want one of %v or all", s, Scenarios)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no scenario")
	}
	switch {
	case c.Nodes < 0 || c.Browsers < 0 || c.Strangers < 0 || c.Window < 0 || c.Resources < 0 || c.Dashboards < 0:
		return nil, fmt.Errorf("negative count")
	case c.Duration < 0 || c.Beacon < 0 || c.Hold < 0:
		return nil, fmt.Errorf("negative duration")
	case c.Rate < 0 && c.Rate != RateMax:
		return nil, fmt.Errorf("rate %v: want a positive number or max", c.Rate)
	case c.Duration > time.Hour || c.Hold > time.Hour:
		return nil, fmt.Errorf("runs are bounded: at most an hour per scenario")
	case c.Dashboards > 16:
		return nil, fmt.Errorf("%d dashboards: at most 16", c.Dashboards)
	case c.IDPrefix != "" && (strings.ContainsAny(c.IDPrefix, ".*> \t") || len(c.IDPrefix) > 32):
		return nil, fmt.Errorf("id prefix %q: at most 32 characters, no dots, wildcards or spaces", c.IDPrefix)
	}
	return out, nil
}
