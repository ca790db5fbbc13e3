package mqttsn

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/internal/version"
)

// serviceName is the NATS micro service name, so `nats micro ls` lists
// the gateway and `nats micro stats aiot-mqttsn` shows its counters.
const serviceName = "aiot-mqttsn"

// ClientInfo describes one session, as the "clients" endpoint lists it.
type ClientInfo struct {
	ID            string    `json:"id"`
	Address       string    `json:"address"`
	State         string    `json:"state"`
	KeepAlive     string    `json:"keepalive"`
	LastSeen      time.Time `json:"last_seen"`
	Topics        int       `json:"topics"`
	Subscriptions []string  `json:"subscriptions"`
	Queued        int       `json:"queued"`
}

// Clients lists the sessions, sorted by client id.
func (g *Gateway) Clients() []ClientInfo {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]ClientInfo, 0, len(g.byID))
	for _, c := range g.byID {
		ci := ClientInfo{
			ID: c.id, Address: c.addr.String(), State: c.state.String(), KeepAlive: c.keepAlive.String(),
			LastSeen: c.lastSeen, Topics: len(c.ids), Subscriptions: []string{}, Queued: len(c.queue),
		}
		for f := range c.subs {
			ci.Subscriptions = append(ci.Subscriptions, f)
		}
		sort.Strings(ci.Subscriptions)
		out = append(out, ci)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// addService registers the gateway as a NATS micro service with an endpoint
// "clients" on aiot.aiot-mqttsn.clients that lists the sessions.
func (g *Gateway) addService() (micro.Service, error) {
	svc, err := micro.AddService(g.nc, micro.Config{
		Name:        serviceName,
		Version:     version.Version,
		Description: bus.ProtocolMQTTSN + " gateway " + g.cfg.Name + " (site " + g.cfg.Site + ")",
		Metadata:    map[string]string{"gateway": g.cfg.Name, "site": g.cfg.Site, "protocol": bus.ProtocolMQTTSN},
		StatsHandler: func(*micro.Endpoint) any {
			return g.Stats()
		},
	})
	if err != nil {
		return nil, fmt.Errorf("micro service %s: %w", serviceName, err)
	}
	err = svc.AddEndpoint("clients", micro.HandlerFunc(func(r micro.Request) {
		b, _ := json.Marshal(g.Clients()) // plain structs always marshal
		_ = r.Respond(b)
	}), micro.WithEndpointSubject("aiot."+serviceName+".clients"), micro.WithEndpointQueueGroupDisabled())
	if err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("micro service %s: %w", serviceName, err)
	}
	return svc, nil
}
