package sites

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/goaiot/goaiot/bus"
)

// MonitorConfig configures the hub's Monitor.
type MonitorConfig struct {
	Conn   *nats.Conn   // the hub's bus; required
	Logger *slog.Logger // required
	// Registerer also receives the monitor's metrics, besides the
	// monitor's own registry (MetricsHandler); nil: only the latter.
	Registerer prometheus.Registerer
	// Misses is how many heartbeat intervals a site may miss before its
	// link is marked down; default 3.
	Misses int
	// Check is how often links are checked; default 500 ms.
	Check time.Duration
	// NoSources leaves the NODES stream alone (a hub whose stream is managed
	// by hand, and tests).
	NoSources bool
	// StaleSource: a site whose link is up but whose source has been silent
	// for longer has it restarted (RestartSource); default 5 s. The source
	// consumer's heartbeats come every second.
	StaleSource time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// site is what the monitor knows of one site.
type site struct {
	name     string
	link     string // "" until the first heartbeat
	last     time.Time
	interval time.Duration
	nodes    map[string]bool
	sourced  bool
	// instances are the site processes heard lately under this name, with
	// their last heartbeat: more than one is a name given to two sites.
	instances map[string]time.Time
}

// Monitor runs at the hub. It follows the sites' heartbeats and marks each
// site's link up or down (aiot.site.<site>.link), makes the hub's NODES
// stream source from every site it hears of, and reports node ids online at
// more than one site (aiot.sites.collision) instead of merging them.
type Monitor struct {
	cfg MonitorConfig
	log *slog.Logger
	m   monitorMetrics
	reg *prometheus.Registry // the monitor's own metrics (MetricsHandler)
	js  jetstream.JetStream

	mu         sync.Mutex
	sites      map[string]*site
	collisions map[string][]string // uid → sites, for the uids colliding now
	toSource   chan string

	restarted map[string]time.Time // last RestartSource per site (Run's goroutine only)
}

// NewMonitor validates cfg.
func NewMonitor(cfg MonitorConfig) (*Monitor, error) {
	switch {
	case cfg.Conn == nil:
		return nil, errors.New("sites: monitor: no nats connection")
	case cfg.Logger == nil:
		return nil, errors.New("sites: monitor: no logger")
	case cfg.Misses < 0 || cfg.Check < 0:
		return nil, errors.New("sites: monitor: negative misses or check interval")
	}
	if cfg.Misses == 0 {
		cfg.Misses = 3
	}
	if cfg.Check == 0 {
		cfg.Check = 500 * time.Millisecond
	}
	if cfg.StaleSource <= 0 {
		cfg.StaleSource = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("sites: monitor: jetstream: %w", err)
	}
	reg := prometheus.NewRegistry()
	m, err := newMonitorMetrics(reg, cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("sites: monitor: %w", err)
	}
	return &Monitor{cfg: cfg, log: cfg.Logger, m: m, reg: reg, js: js,
		sites: map[string]*site{}, collisions: map[string][]string{}, toSource: make(chan string, 64),
		restarted: map[string]time.Time{}}, nil
}

// Run follows the sites until ctx ends.
func (mo *Monitor) Run(ctx context.Context) error {
	nc := mo.cfg.Conn
	var subs []*nats.Subscription
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	for subj, h := range map[string]nats.MsgHandler{
		SubjectAllHeartbeats: mo.onHeartbeat,
		bus.NodeState("*"):   mo.onState,
		SubjectList:          mo.onList,
	} {
		s, err := nc.Subscribe(subj, h)
		if err != nil {
			return fmt.Errorf("sites: monitor: subscribe %s: %w", subj, err)
		}
		subs = append(subs, s)
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("sites: monitor: %w", err)
	}
	t := time.NewTicker(mo.cfg.Check)
	defer t.Stop()
	watch := time.NewTicker(mo.cfg.StaleSource / 2)
	defer watch.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case name := <-mo.toSource:
			mo.addSource(ctx, name)
		case <-t.C:
			mo.checkLinks()
		case <-watch.C:
			if !mo.cfg.NoSources {
				mo.watchSources(ctx)
			}
		}
	}
}

// watchSources restarts the source of every site whose link is up but
// whose source is silent, at most once per two StaleSource periods per site.
func (mo *Monitor) watchSources(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stale, err := StaleSources(ctx, mo.js, mo.cfg.StaleSource)
	if err != nil {
		mo.log.Warn("cannot check the sites' sources", "err", err)
		return
	}
	now := mo.cfg.Now()
	for _, name := range stale {
		mo.mu.Lock()
		s, ok := mo.sites[name]
		up := ok && s.link == LinkUp && s.sourced
		mo.mu.Unlock()
		if !up || now.Sub(mo.restarted[name]) < 2*mo.cfg.StaleSource {
			continue
		}
		mo.restarted[name] = now
		if err := RestartSource(ctx, mo.js, name); err != nil {
			mo.log.Error("cannot restart the site's source", "site", name, "err", err)
			continue
		}
		mo.m.sourceRestarts.Inc()
		mo.log.Info("restarted the site's source: its link is up but the source was silent", "site", name, "silent_over", mo.cfg.StaleSource)
	}
}

// onHeartbeat marks the site up and takes its node list.
func (mo *Monitor) onHeartbeat(m *nats.Msg) {
	hb, err := ParseHeartbeat(m.Data)
	if err != nil || m.Subject != SubjectHeartbeat(hb.Site) {
		mo.m.badHeartbeats.Inc()
		mo.log.Warn("bad site heartbeat", "subject", m.Subject, "err", err)
		return
	}
	mo.m.heartbeats.Inc()
	if m.Reply != "" {
		_ = m.Respond(nil) // the site learns that the hub hears it
	}
	now := mo.cfg.Now()
	var out []any
	mo.mu.Lock()
	s := mo.site(hb.Site)
	s.last, s.interval = now, time.Duration(hb.Interval)*time.Millisecond
	mo.checkInstances(s, hb.Instance, now)
	changed := map[string]bool{}
	for id := range s.nodes {
		changed[id] = true
	}
	s.nodes = make(map[string]bool, len(hb.Nodes))
	for _, id := range hb.Nodes {
		if bus.ValidateNodeID(id) == nil {
			s.nodes[id] = true
			changed[id] = true
		}
	}
	if s.link != LinkUp {
		s.link = LinkUp
		out = append(out, mo.linkChanged(s, now))
	}
	out = append(out, mo.recheck(changed, now)...)
	source := !s.sourced && !mo.cfg.NoSources
	mo.mu.Unlock()
	if source {
		select {
		case mo.toSource <- hb.Site:
		default: // the next heartbeat asks again
		}
	}
	mo.publish(out)
}

// onState follows node.<id>.$state, so that a collision is seen as soon as
// the second site announces the id, not at its next heartbeat.
func (mo *Monitor) onState(m *nats.Msg) {
	subj, err := bus.ParseSubject(m.Subject)
	if err != nil {
		return
	}
	st, err := bus.ParseState(m.Data)
	if err != nil || ValidateName(st.Site) != nil {
		return
	}
	now := mo.cfg.Now()
	mo.mu.Lock()
	s, known := mo.sites[st.Site]
	if !known {
		// Sites are made by their heartbeats (which list their nodes), never
		// by a $state naming any site: that would grow memory without bound.
		mo.mu.Unlock()
		return
	}
	if st.State == bus.StateOffline {
		delete(s.nodes, subj.Node)
	} else {
		s.nodes[subj.Node] = true
	}
	out := mo.recheck(map[string]bool{subj.Node: true}, now)
	mo.mu.Unlock()
	mo.publish(out)
}

// checkInstances notes which process sent a site's heartbeat and reports
// two processes heartbeating under one name. Lock held.
func (mo *Monitor) checkInstances(s *site, instance string, now time.Time) {
	if instance == "" {
		return
	}
	for id, last := range s.instances {
		if now.Sub(last) > time.Duration(mo.cfg.Misses)*s.interval {
			delete(s.instances, id)
		}
	}
	_, known := s.instances[instance]
	s.instances[instance] = now
	if !known && len(s.instances) == 2 {
		mo.m.duplicateNames.Inc()
		mo.log.Error("two sites heartbeat under one name: their JetStream domains clash and their histories mix; give each site its own --site",
			"site", s.name)
	}
}

// site returns the entry of name, created on first use. Lock held.
func (mo *Monitor) site(name string) *site {
	s, ok := mo.sites[name]
	if !ok {
		s = &site{name: name, nodes: map[string]bool{}, instances: map[string]time.Time{}}
		mo.sites[name] = s
		mo.m.sites.Set(float64(len(mo.sites)))
	}
	return s
}

// checkLinks marks down the sites that missed too many heartbeats.
func (mo *Monitor) checkLinks() {
	now := mo.cfg.Now()
	var out []any
	mo.mu.Lock()
	for _, s := range mo.sites {
		if s.link == LinkUp && now.Sub(s.last) > time.Duration(mo.cfg.Misses)*s.interval {
			s.link = LinkDown
			out = append(out, mo.linkChanged(s, now))
		}
	}
	mo.mu.Unlock()
	mo.publish(out)
}

// linkChanged logs and counts a link change and returns its message. Lock held.
func (mo *Monitor) linkChanged(s *site, now time.Time) Link {
	up := 0.0
	if s.link == LinkUp {
		up = 1
		mo.log.Info("site link up", "site", s.name, "nodes", len(s.nodes))
	} else {
		mo.log.Warn("site link down: heartbeats missed", "site", s.name, "last_heartbeat", s.last, "misses", mo.cfg.Misses)
	}
	mo.m.linkUp.WithLabelValues(s.name).Set(up)
	mo.m.linkChanges.WithLabelValues(s.name, s.link).Inc()
	return Link{Type: "site", Site: s.name, Link: s.link, Time: millis(now)}
}

// recheck recomputes the collisions of ids and returns the messages for
// those that changed. Lock held.
func (mo *Monitor) recheck(ids map[string]bool, now time.Time) []any {
	var out []any
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		var at []string
		for name, s := range mo.sites {
			if s.nodes[id] {
				at = append(at, name)
			}
		}
		slices.Sort(at)
		was, colliding := mo.collisions[id]
		switch {
		case len(at) > 1 && !slices.Equal(at, was):
			mo.collisions[id] = at
			mo.m.collisionsFound.Inc()
			mo.log.Error("node id collision: the same id is online at several sites; values are not merged but share subjects: give the sites an id prefix",
				"uid", id, "sites", at)
		case len(at) < 2 && colliding:
			delete(mo.collisions, id)
			mo.log.Info("node id collision over", "uid", id, "sites", at)
		default:
			continue
		}
		out = append(out, Collision{Type: "collision", UID: id, Sites: at, Time: millis(now)})
	}
	mo.m.collisions.Set(float64(len(mo.collisions)))
	return out
}

// publish sends link and collision messages.
func (mo *Monitor) publish(msgs []any) {
	for _, m := range msgs {
		subj := SubjectCollision
		if l, ok := m.(Link); ok {
			subj = SubjectLink(l.Site)
		}
		data, err := json.Marshal(m)
		if err == nil {
			err = mo.cfg.Conn.Publish(subj, data)
		}
		if err != nil {
			mo.log.Warn("sites: publish", "subject", subj, "err", err)
		}
	}
}

// addSource makes the NODES stream source from a site heard of.
func (mo *Monitor) addSource(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	added, err := AddSource(ctx, mo.js, name)
	if err != nil {
		mo.log.Error("cannot source the site's stream; retrying at its next heartbeat", "site", name, "err", err)
		return
	}
	if added {
		mo.log.Info("hub stream now sources the site's stream", "site", name, "stream", bus.NodesStream, "domain", name)
	}
	mo.mu.Lock()
	mo.sites[name].sourced = true
	mo.mu.Unlock()
}

// Sites is the state of every site, sorted by name.
func (mo *Monitor) Sites() []SiteInfo {
	mo.mu.Lock()
	defer mo.mu.Unlock()
	out := make([]SiteInfo, 0, len(mo.sites))
	for _, s := range mo.sites {
		out = append(out, SiteInfo{Site: s.name, Link: s.link, LastSeen: s.last, Nodes: len(s.nodes), Sourced: s.sourced})
	}
	slices.SortFunc(out, func(a, b SiteInfo) int {
		switch {
		case a.Site < b.Site:
			return -1
		case a.Site > b.Site:
			return 1
		}
		return 0
	})
	return out
}

// Collisions are the node ids online at several sites now, with the sites.
func (mo *Monitor) Collisions() map[string][]string {
	mo.mu.Lock()
	defer mo.mu.Unlock()
	return maps.Clone(mo.collisions)
}

// onList answers aiot.sites with {"sites":[…],"collisions":{uid:[sites]}}.
func (mo *Monitor) onList(m *nats.Msg) {
	data, err := json.Marshal(mo.view())
	if err == nil {
		err = m.Respond(data)
	}
	if err != nil {
		mo.log.Warn("sites: answer list", "err", err)
	}
}
