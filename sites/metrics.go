package sites

import "github.com/prometheus/client_golang/prometheus"

// monitorMetrics are the hub monitor's Prometheus metrics.
type monitorMetrics struct {
	sites           prometheus.Gauge
	linkUp          *prometheus.GaugeVec
	linkChanges     *prometheus.CounterVec
	heartbeats      prometheus.Counter
	badHeartbeats   prometheus.Counter
	collisions      prometheus.Gauge
	collisionsFound prometheus.Counter
	sourceRestarts  prometheus.Counter
	duplicateNames  prometheus.Counter
}

// newMonitorMetrics makes the metrics and registers them with every
// non-nil registerer of regs.
func newMonitorMetrics(regs ...prometheus.Registerer) (monitorMetrics, error) {
	m := monitorMetrics{
		sites:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "aiot_sites", Help: "Sites the hub has heard of."}),
		linkUp:        prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aiot_site_link_up", Help: "1 while the site's heartbeats arrive, 0 once missed."}, []string{"site"}),
		linkChanges:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aiot_site_link_changes_total", Help: "Site link state changes, by new state."}, []string{"site", "link"}),
		heartbeats:    prometheus.NewCounter(prometheus.CounterOpts{Name: "aiot_site_heartbeats_total", Help: "Site heartbeats received."}),
		badHeartbeats: prometheus.NewCounter(prometheus.CounterOpts{Name: "aiot_site_bad_heartbeats_total", Help: "Malformed site heartbeats ignored."}),
		collisions:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "aiot_site_id_collisions", Help: "Node ids online at more than one site now."}),
		collisionsFound: prometheus.NewCounter(prometheus.CounterOpts{Name: "aiot_site_id_collisions_total",
			Help: "Node id collisions across sites detected (or changed)."}),
		sourceRestarts: prometheus.NewCounter(prometheus.CounterOpts{Name: "aiot_site_source_restarts_total",
			Help: "Sources restarted because a site's link was up but its source silent."}),
		duplicateNames: prometheus.NewCounter(prometheus.CounterOpts{Name: "aiot_site_duplicate_names_total",
			Help: "Times two site processes were heard heartbeating under one site name."}),
	}
	for _, reg := range regs {
		if reg == nil {
			continue
		}
		for _, c := range []prometheus.Collector{m.sites, m.linkUp, m.linkChanges, m.heartbeats, m.badHeartbeats, m.collisions, m.collisionsFound, m.sourceRestarts, m.duplicateNames} {
			if err := reg.Register(c); err != nil {
				return m, err
			}
		}
	}
	return m, nil
}
