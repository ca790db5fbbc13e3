package sites

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
)

// BeaconConfig configures a site's Beacon.
type BeaconConfig struct {
	Conn   *nats.Conn   // the site's own bus; required
	Logger *slog.Logger // required
	Site   string       // this site's name; required
	// Interval between heartbeats; default 2 s.
	Interval time.Duration
}

// Beacon runs at a site: it follows the $state of the site's own nodes and
// sends aiot.site.<site>.heartbeat every Interval with their ids. The
// heartbeat crosses the leaf connection to the hub while the link is up;
// while it is down it is dropped (it is a core NATS message: nothing to
// catch up). It is a request, which the hub's Monitor answers, so the site
// knows and logs whether the hub hears it.
type Beacon struct {
	cfg BeaconConfig

	instance string

	mu     sync.Mutex
	online map[string]bool
	linked bool // the hub answered the last heartbeat
}

// NewBeacon validates cfg.
func NewBeacon(cfg BeaconConfig) (*Beacon, error) {
	switch {
	case cfg.Conn == nil:
		return nil, errors.New("sites: beacon: no nats connection")
	case cfg.Logger == nil:
		return nil, errors.New("sites: beacon: no logger")
	case cfg.Interval < 0:
		return nil, errors.New("sites: beacon: negative interval")
	}
	if err := ValidateName(cfg.Site); err != nil {
		return nil, fmt.Errorf("sites: beacon: %w", err)
	}
	if cfg.Interval == 0 {
		cfg.Interval = 2 * time.Second
	}
	return &Beacon{cfg: cfg, online: map[string]bool{}, instance: rand.Text()}, nil
}

// Run publishes heartbeats until ctx ends.
func (b *Beacon) Run(ctx context.Context) error {
	sub, err := b.cfg.Conn.Subscribe(bus.NodeState("*"), b.onState)
	if err != nil {
		return fmt.Errorf("sites: beacon: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	t := time.NewTicker(b.cfg.Interval)
	defer t.Stop()
	b.cfg.Logger.Info("site heartbeat", "site", b.cfg.Site, "subject", SubjectHeartbeat(b.cfg.Site), "interval", b.cfg.Interval)
	for {
		b.beat()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// onState follows the $state of this site's nodes; $state messages of other
// sites (that the hub forwards to this site) are ignored.
func (b *Beacon) onState(m *nats.Msg) {
	s, err := bus.ParseSubject(m.Subject)
	if err != nil {
		return
	}
	st, err := bus.ParseState(m.Data)
	if err != nil || st.Site != b.cfg.Site {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if st.State == bus.StateOffline {
		delete(b.online, s.Node)
	} else {
		b.online[s.Node] = true
	}
}

// Nodes are the ids of the site's nodes online now, sorted.
func (b *Beacon) Nodes() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Sorted(maps.Keys(b.online))
}

// Linked reports whether the hub answered the last heartbeat.
func (b *Beacon) Linked() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.linked
}

// beat sends one heartbeat and waits up to Interval for the hub's answer.
func (b *Beacon) beat() {
	hb := Heartbeat{Site: b.cfg.Site, Time: millis(time.Now()), Interval: b.cfg.Interval.Milliseconds(), Nodes: b.Nodes(), Instance: b.instance}
	data, err := json.Marshal(hb)
	if err != nil {
		b.cfg.Logger.Error("site heartbeat", "err", err)
		return
	}
	_, err = b.cfg.Conn.Request(SubjectHeartbeat(b.cfg.Site), data, b.cfg.Interval)
	b.mu.Lock()
	was := b.linked
	b.linked = err == nil
	b.mu.Unlock()
	switch {
	case err == nil && !was:
		b.cfg.Logger.Info("hub link up: the hub hears this site", "site", b.cfg.Site)
	case err != nil && was:
		b.cfg.Logger.Warn("hub link down: the hub does not answer; the site goes on alone and the hub catches up once it is back",
			"site", b.cfg.Site, "err", err)
	}
}
