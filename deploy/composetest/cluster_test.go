package composetest

import (
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// clusterServices are the services only the cluster profile adds, by
// command (hub, site, dashboard).
func clusterServices(t *testing.T) (*types.Project, map[string][]types.ServiceConfig) {
	t.Helper()
	p := loadProject(t, "cluster")
	out := map[string][]types.ServiceConfig{}
	for _, s := range p.Services {
		if slices.Contains(s.Profiles, "cluster") {
			out[command(s)] = append(out[command(s)], s)
		}
	}
	for _, ss := range out {
		slices.SortFunc(ss, func(a, b types.ServiceConfig) int { return strings.Compare(a.Name, b.Name) })
	}
	return p, out
}

// TestComposeClusterFits: the cluster profile is three hub members of one
// NATS cluster with the history on three replicas, two sites that may join
// any member, and two dashboards that may use any member.
func TestComposeClusterFits(t *testing.T) {
	p, svc := clusterServices(t)
	members := svc["hub"]
	if len(members) != 3 || len(svc["site"]) < 2 || len(svc["dashboard"]) < 2 {
		t.Fatalf("%d hub members, %d sites, %d dashboards: want 3, 2, 2", len(members), len(svc["site"]), len(svc["dashboard"]))
	}
	var routes, natsURLs []string
	names := map[string]bool{}
	for _, m := range members {
		_, port, err := net.SplitHostPort(env(m, "AIOT_CLUSTER_LISTEN"))
		if err != nil {
			t.Fatalf("%s AIOT_CLUSTER_LISTEN: %v", m.Name, err)
		}
		routes = append(routes, "nats-route://"+m.Name+":"+port)
		natsURLs = append(natsURLs, "nats://"+m.Name+":4222")
		names[env(m, "AIOT_SERVER_NAME")] = true
	}
	t.Run("members form one cluster", func(t *testing.T) {
		if len(names) != 3 || names[""] {
			t.Errorf("server names %v: want three, distinct", names)
		}
		for _, m := range members {
			if got := strings.Split(env(m, "AIOT_ROUTES"), ","); !slices.Equal(sorted(got), sorted(routes)) {
				t.Errorf("%s AIOT_ROUTES %v, want %v", m.Name, got, routes)
			}
			if env(m, "AIOT_CLUSTER_NAME") != env(members[0], "AIOT_CLUSTER_NAME") {
				t.Errorf("%s: another cluster name", m.Name)
			}
			if env(m, "AIOT_REPLICAS") != "3" {
				t.Errorf("%s AIOT_REPLICAS %q, want 3", m.Name, env(m, "AIOT_REPLICAS"))
			}
		}
	})
	t.Run("routes without TLS stay on the compose network", func(t *testing.T) {
		for _, m := range members {
			if env(m, "AIOT_INSECURE_CLUSTER") == "" {
				continue
			}
			_, port, _ := net.SplitHostPort(env(m, "AIOT_CLUSTER_LISTEN"))
			for _, p := range m.Ports {
				if strconv.Itoa(int(p.Target)) == port {
					t.Errorf("%s publishes its route port %s while routes are insecure", m.Name, port)
				}
			}
		}
	})
	t.Run("members share one set of NATS keys", func(t *testing.T) {
		keys := env(members[0], "AIOT_AUTH_DIR")
		if keys == "" {
			t.Fatal("hub-1 makes no keys (AIOT_AUTH_DIR)")
		}
		for _, m := range members[1:] {
			if env(m, "AIOT_AUTH") != keys+"/auth.json" || env(m, "AIOT_AUTH_DIR") != "" {
				t.Errorf("%s: AIOT_AUTH %q, AIOT_AUTH_DIR %q: want %s/auth.json and no dir of its own", m.Name, env(m, "AIOT_AUTH"), env(m, "AIOT_AUTH_DIR"), keys)
			}
		}
		for _, d := range svc["dashboard"] {
			if !strings.HasPrefix(env(d, "AIOT_NKEY"), keys+"/") {
				t.Errorf("%s AIOT_NKEY %q: not a key of %s", d.Name, env(d, "AIOT_NKEY"), keys)
			}
		}
	})
	logins := leafUsers(t, p, members[0])
	for _, s := range svc["site"] {
		t.Run(s.Name+" may join every member", func(t *testing.T) {
			site := env(s, "AIOT_SITE")
			var hosts []string
			for _, raw := range strings.Split(env(s, "AIOT_HUB"), ",") {
				u, err := url.Parse(raw)
				if err != nil {
					t.Fatalf("AIOT_HUB: %v", err)
				}
				pw, _ := u.User.Password()
				if u.Scheme != "nats-leaf" || u.User.Username() != site || logins[site] != pw {
					t.Errorf("AIOT_HUB %s: want nats-leaf:// with the site's leaf login", u.Redacted())
				}
				hosts = append(hosts, u.Hostname())
			}
			for _, m := range members {
				if !slices.Contains(hosts, m.Name) {
					t.Errorf("AIOT_HUB does not list %s", m.Name)
				}
				if !slices.Contains(strings.Split(env(m, "AIOT_SITES"), ","), site) {
					t.Errorf("%s AIOT_SITES does not source %s", m.Name, site)
				}
			}
		})
	}
	for _, d := range svc["dashboard"] {
		t.Run(d.Name+" may use every member", func(t *testing.T) {
			if got := strings.Split(env(d, "AIOT_NATS"), ","); !slices.Equal(sorted(got), sorted(natsURLs)) {
				t.Errorf("AIOT_NATS %v, want %v", got, natsURLs)
			}
		})
	}
	t.Run("no host port taken twice with the default services", func(t *testing.T) {
		seen := map[string]string{}
		for _, s := range p.Services {
			for _, port := range s.Ports {
				key := port.Published + "/" + port.Protocol
				if other, ok := seen[key]; ok {
					t.Errorf("host port %s: %s and %s", key, other, s.Name)
				}
				seen[key] = s.Name
			}
		}
	})
}
