package dashboard

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Outcomes of a command, the label of aiot_dashboard_command_results_total.
const (
	outcomeOK           = "ok"
	outcomeQueued       = "queued"  // waits for its node (gateways/queue)
	outcomeRefused      = "refused" // the gateway or node said no
	outcomeTimeout      = "timeout"
	outcomeNoResponders = "no_responders" // no gateway serves the node: nobody answered (no queue), or the queue said no_gateway
	outcomeInvalid      = "invalid"       // bad uid or endpoint, too many in flight
	outcomeForbidden    = "forbidden"     // a viewer (or read-only dashboard, or expired session)
	outcomeError        = "error"         // NATS failed otherwise
)

// Reasons a browser was disconnected by the server.
const (
	cutBadFrame = "bad_frame"
	cutRate     = "rate_limit"
	cutSlow     = "slow"
	cutStuck    = "write_failed"
	cutStopping = "stopping"
)

// metrics are the dashboard's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg        *prometheus.Registry
	browsers   prometheus.Gauge
	nodes      prometheus.Gauge
	online     prometheus.Gauge
	eventsIn   prometheus.Counter
	invalid    prometheus.Counter
	refused    prometheus.Counter
	framesOut  prometheus.Counter
	flusherW   prometheus.Counter
	coalesced  prometheus.Counter
	dropped    prometheus.Counter
	cut        *prometheus.CounterVec
	origins    prometheus.Counter
	results    *prometheus.CounterVec
	histories  prometheus.Counter
	snapshotsN prometheus.Counter
	logins     *prometheus.CounterVec
	sessions   prometheus.Gauge
	unauth     prometheus.Counter
}

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	f := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "aiot", Subsystem: "dashboard", Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	g := func(name, help string) prometheus.Gauge {
		c := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "aiot", Subsystem: "dashboard", Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	m := &metrics{
		reg:        reg,
		browsers:   g("browsers", "Browsers connected to /ws."),
		nodes:      g("nodes", "Nodes known (online or offline)."),
		online:     g("nodes_online", "Nodes online (or reset)."),
		eventsIn:   f("events_in_total", "Node messages received from the bus."),
		invalid:    f("events_invalid_total", "Node messages from the bus that were ignored as malformed."),
		refused:    f("claims_refused_total", "Claims of an online node id by a gateway that does not own it (aiot.claims.refused)."),
		framesOut:  f("frames_out_total", "Messages written to browsers."),
		flusherW:   f("flusher_writes_total", "Socket writes to browsers made by the hub's flusher itself, without a writer goroutine (writenow.go)."),
		coalesced:  f("coalesced_total", "Updates replaced by a later value of the same resource for a slow browser."),
		dropped:    f("dropped_total", "Messages still queued for a browser when it was disconnected."),
		origins:    f("origin_rejected_total", "Websocket handshakes refused because of their Origin."),
		histories:  f("history_requests_total", "History requests answered."),
		snapshotsN: f("snapshots_total", "Snapshots sent to browsers."),
		sessions:   g("sessions", "Login sessions held (expired ones until pruned)."),
		unauth:     f("unauthenticated_total", "Websocket handshakes refused because the browser had not logged in."),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "aiot", Subsystem: "dashboard", Name: "logins_total",
			Help: "Login and logout requests, by outcome."}, []string{"outcome"}),
		cut: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "aiot", Subsystem: "dashboard", Name: "disconnects_total",
			Help: "Browsers disconnected by the server, by reason."}, []string{"reason"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "aiot", Subsystem: "dashboard", Name: "command_results_total",
			Help: "Commands from browsers, by outcome."}, []string{"outcome"}),
	}
	reg.MustRegister(m.cut, m.results, m.logins,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{cutBadFrame, cutRate, cutSlow, cutStuck, cutStopping} {
		m.cut.WithLabelValues(r)
	}
	for _, o := range []string{outcomeOK, outcomeQueued, outcomeRefused, outcomeTimeout, outcomeNoResponders, outcomeInvalid, outcomeForbidden, outcomeError} {
		m.results.WithLabelValues(o)
	}
	for _, o := range []string{loginOK, loginBad, loginLimited, loginRefused} {
		m.logins.WithLabelValues(o)
	}
	return m
}
