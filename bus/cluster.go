package bus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxReplicas is the most copies JetStream keeps of a stream.
const MaxReplicas = 5

// ClusterConfig makes the embedded server a member of a NATS cluster:
// nats-server's own routes and clustered JetStream (a Raft meta group and
// one Raft group per stream), nothing of goaiot's. Every member lists the
// same routes (its own included is fine) and the same Name, and has a
// server name (ServerConfig.Name) of its own.
type ClusterConfig struct {
	// Name is the cluster's name, the same on every member. Required.
	Name string
	// Listen is this member's route listener, host:port. Required.
	Listen string
	// Advertise, when set, is the host:port the other members are told to
	// reach this one at (behind NAT or in containers).
	Advertise string
	// Routes are the other members' route URLs: nats-route://host:6222
	// (or nats://, tls://). At least one.
	Routes []string
	// TLS, when set, is required on routes both ways: with ClientCAs and
	// RootCAs (the cluster's CA), members prove themselves to each other.
	TLS *tls.Config
}

func (c *ClusterConfig) validate() error {
	if c.Name == "" {
		return errors.New("cluster: no name")
	}
	if strings.ContainsAny(c.Name, " \t.*>") {
		return fmt.Errorf("cluster name %q: no spaces, dots or wildcards", c.Name)
	}
	if c.Listen == "" {
		return errors.New("cluster: no listen address")
	}
	if len(c.Routes) == 0 {
		return errors.New("cluster: no routes (give the other members' nats-route://host:port)")
	}
	return nil
}

// clusterOptions applies c to o.
func clusterOptions(o *server.Options, c *ClusterConfig) error {
	if err := c.validate(); err != nil {
		return err
	}
	var err error
	if o.Cluster.Host, o.Cluster.Port, err = splitListen("cluster listen", c.Listen); err != nil {
		return err
	}
	o.Cluster.Name = c.Name
	o.Cluster.Advertise = c.Advertise
	o.Cluster.TLSConfig = c.TLS
	if c.TLS != nil {
		o.Cluster.TLSTimeout = 5
	}
	for _, r := range c.Routes {
		u, err := routeURL(r)
		if err != nil {
			return err
		}
		o.Routes = append(o.Routes, u)
	}
	return nil
}

// routeURL parses one route; only route schemes and a host:port pass.
func routeURL(r string) (*url.URL, error) {
	u, err := url.Parse(r)
	if err != nil {
		return nil, fmt.Errorf("route %q: %w", r, err)
	}
	switch u.Scheme {
	case "nats-route", "nats", "tls":
	default:
		return nil, fmt.Errorf("route %q: scheme must be nats-route, nats or tls", r)
	}
	if u.Hostname() == "" || u.Port() == "" {
		return nil, fmt.Errorf("route %q: want host:port", r)
	}
	return u, nil
}

// Clustered reports whether this server is a member of a NATS cluster.
func (s *Server) Clustered() bool { return s.cfg.Cluster != nil }

// ClusterAddr is the route listener's host:port; empty when not clustered.
func (s *Server) ClusterAddr() string {
	if s.cfg.Cluster == nil {
		return ""
	}
	if a := s.ns.ClusterAddr(); a != nil {
		return a.String()
	}
	return ""
}

// WaitJetStream waits until clustered JetStream has a meta leader and this
// member is current with it, so that streams can be created and updated.
// A lone member waits for enough of its peers to form a quorum; every
// 10 s it logs that it is waiting. It returns at once on a single server.
func (s *Server) WaitJetStream(ctx context.Context) error {
	if !s.Clustered() {
		return nil
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	began := time.Now()
	next := began.Add(10 * time.Second)
	for !s.ns.JetStreamIsCurrent() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("jetstream cluster: no meta leader after %s (fewer than a quorum of members up?): %w",
				time.Since(began).Round(time.Second), ctx.Err())
		case now := <-tick.C:
			if now.After(next) {
				s.cfg.Logger.Warn("waiting for the JetStream cluster: no meta leader yet (a quorum of members must be up)",
					"cluster", s.cfg.Cluster.Name, "routes", s.cfg.Cluster.Routes, "waited", now.Sub(began).Round(time.Second))
				next = now.Add(10 * time.Second)
			}
		}
	}
	return nil
}

// CheckReplicas refuses a replica count JetStream cannot keep: below 1,
// above MaxReplicas, or above 1 on an embedded server that is not part of
// a cluster (clustered is false). Against an external NATS (clustered
// true), the server itself refuses a count above its cluster's size.
func CheckReplicas(replicas int, clustered bool) error {
	switch {
	case replicas < 1 || replicas > MaxReplicas:
		return fmt.Errorf("replicas %d: want 1 to %d", replicas, MaxReplicas)
	case replicas > 1 && !clustered:
		return fmt.Errorf("replicas %d: a single server keeps one copy; form a cluster (--cluster-listen, --routes) or use an external one (--nats)", replicas)
	}
	return nil
}

// RetryJetStream calls fn until it succeeds, with at most 3 s per attempt,
// for up to within: in a cluster a JetStream API request can go
// unanswered (members that create the same stream at the same moment:
// only the first is answered) or be refused while the meta group or a
// stream elects its leader. Errors other than these are returned at once.
func RetryJetStream(ctx context.Context, within time.Duration, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, 3*time.Second)
		err := fn(actx)
		acancel()
		if err == nil || !transientJS(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// transientJS tells a JetStream error worth retrying in a cluster.
func transientJS(err error) bool {
	var api *jetstream.APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrTimeout):
		return true
	case errors.As(err, &api):
		return api.Code == 503 || api.ErrorCode == jetstream.JSErrCodeJetStreamNotEnabled
	}
	return false
}
