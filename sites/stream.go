package sites

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
)

// SiteSource is the hub stream's source for one site: that site's own NODES
// stream, in the site's JetStream domain, node.> only.
func SiteSource(site string) *jetstream.StreamSource {
	return &jetstream.StreamSource{Name: bus.NodesStream, Domain: site, FilterSubject: bus.SubjectAllNodes}
}

// sourceSite is the site a source reads from, or "".
func sourceSite(s *jetstream.StreamSource) string {
	if s == nil || s.Name != bus.NodesStream {
		return ""
	}
	if s.Domain != "" {
		return s.Domain
	}
	if s.External == nil {
		return ""
	}
	d, ok := strings.CutPrefix(s.External.APIPrefix, "$JS.")
	if !ok {
		return ""
	}
	d, ok = strings.CutSuffix(d, ".API")
	if !ok {
		return ""
	}
	return d
}

// SourcedSites lists the sites a stream configuration sources from, sorted.
func SourcedSites(cfg jetstream.StreamConfig) []string {
	var out []string
	for _, s := range cfg.Sources {
		if site := sourceSite(s); site != "" {
			out = append(out, site)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// HubStreamConfig is the hub's NODES stream: the limits of c, no subjects of
// its own, one source per site, and every stored message republished on its
// own subject for live subscribers (the dashboard, `nats sub 'node.>'`).
// Sites send no node.> over their leaf connection (LeafDeny), so each value
// reaches the hub once, through its site's stream, and is stored once.
func HubStreamConfig(c bus.StreamConfig, sites []string) jetstream.StreamConfig {
	sc := bus.NodesStreamConfig(c)
	sc.Description = "goaiot hub: every site's node events, sourced from the sites' NODES streams, republished on node.>"
	sc.Subjects = nil
	sc.RePublish = &jetstream.RePublish{Source: bus.SubjectAllNodes, Destination: bus.SubjectAllNodes}
	for _, s := range sites {
		sc.Sources = append(sc.Sources, SiteSource(s))
	}
	return sc
}

// EnsureHubStream creates the hub's NODES stream, or updates it to c while
// keeping every site it sources from already, plus sites. It is idempotent.
func EnsureHubStream(ctx context.Context, js jetstream.JetStream, c bus.StreamConfig, sites ...string) (jetstream.Stream, error) {
	for _, s := range sites {
		if err := ValidateName(s); err != nil {
			return nil, err
		}
	}
	if c.History < 1 {
		return nil, fmt.Errorf("stream history %d: must be at least 1", c.History)
	}
	existing, err := js.Stream(ctx, bus.NodesStream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
	case err != nil:
		return nil, fmt.Errorf("stream %s: %w", bus.NodesStream, err)
	default:
		sites = append(SourcedSites(existing.CachedInfo().Config), sites...)
	}
	slices.Sort(sites)
	sites = slices.Compact(sites)
	s, err := js.CreateOrUpdateStream(ctx, HubStreamConfig(c, sites))
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", bus.NodesStream, err)
	}
	return s, nil
}

// AddSource makes the hub's NODES stream source from site's NODES stream,
// starting at its first message. added is false when it did already.
func AddSource(ctx context.Context, js jetstream.JetStream, site string) (added bool, err error) {
	if err := ValidateName(site); err != nil {
		return false, err
	}
	st, err := js.Stream(ctx, bus.NodesStream)
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", bus.NodesStream, err)
	}
	cfg := st.CachedInfo().Config
	if slices.Contains(SourcedSites(cfg), site) {
		return false, nil
	}
	if capturesItself(cfg) {
		return false, fmt.Errorf("stream %s captures %v itself: sourcing site %s would store its values twice", bus.NodesStream, cfg.Subjects, site)
	}
	cfg.Subjects = nil
	cfg.Sources = append(cfg.Sources, SiteSource(site))
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return false, fmt.Errorf("stream %s: source site %s: %w", bus.NodesStream, site, err)
	}
	return true, nil
}

// capturesItself reports whether a stream stores subjects of its own. A
// stream created with neither subjects nor sources is given its own name as
// subject by nats-server, which captures nothing of goaiot's.
func capturesItself(cfg jetstream.StreamConfig) bool {
	return len(cfg.Subjects) > 0 && !slices.Equal(cfg.Subjects, []string{cfg.Name})
}

// sourceInfoSite is the site a source's state is about, or "".
func sourceInfoSite(si *jetstream.StreamSourceInfo) string {
	if si == nil {
		return ""
	}
	return sourceSite(&jetstream.StreamSource{Name: si.Name, External: si.External})
}

// StaleSources lists the sites whose source has had no activity (messages
// or the source consumer's 1 s heartbeats) for longer than after, sorted.
func StaleSources(ctx context.Context, js jetstream.JetStream, after time.Duration) ([]string, error) {
	st, err := js.Stream(ctx, bus.NodesStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", bus.NodesStream, err)
	}
	var out []string
	for _, si := range st.CachedInfo().Sources {
		if site := sourceInfoSite(si); site != "" && (si.Active < 0 || si.Active > after) {
			out = append(out, site)
		}
	}
	slices.Sort(out)
	return out, nil
}

// RestartSource removes site's source from the hub's NODES stream and adds
// it back. nats-server gives a source added to a stream the position of the
// last message the stream holds from it, so the source resumes where it
// stopped: nothing is skipped and nothing is stored twice. It is what gets a
// source going at once after a long outage, when nats-server would retry
// only after a back-off of up to two minutes.
func RestartSource(ctx context.Context, js jetstream.JetStream, site string) error {
	st, err := js.Stream(ctx, bus.NodesStream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", bus.NodesStream, err)
	}
	cfg := st.CachedInfo().Config
	kept := slices.DeleteFunc(slices.Clone(cfg.Sources), func(s *jetstream.StreamSource) bool { return sourceSite(s) == site })
	if len(kept) == len(cfg.Sources) {
		return fmt.Errorf("stream %s: no source for site %s", bus.NodesStream, site)
	}
	without := cfg
	without.Sources = kept
	if len(kept) == 0 {
		without.Subjects = []string{cfg.Name} // a stream needs subjects or sources; nothing publishes on its name
	}
	if _, err := js.UpdateStream(ctx, without); err != nil {
		return fmt.Errorf("stream %s: pause source of site %s: %w", bus.NodesStream, site, err)
	}
	cfg.Subjects = nil
	cfg.Sources = append(kept, SiteSource(site))
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("stream %s: resume source of site %s: %w", bus.NodesStream, site, err)
	}
	return nil
}
