package presence

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/goaiot/goaiot/internal/version"
	"github.com/nats-io/nats.go/micro"
)

// AddService registers the gateway as a NATS micro service named name (e.g.
// "aiot-coap"), so that `nats micro ls` lists it and `nats micro stats`
// shows its counters. Its endpoint "nodes", on aiot.<name>.nodes, answers
// the list of owned nodes. The caller stops the service.
func (t *Tracker) AddService(name string) (micro.Service, error) {
	svc, err := micro.AddService(t.cfg.Conn, micro.Config{
		Name:        name,
		Version:     version.Version,
		Description: t.cfg.Protocol + " gateway " + t.cfg.Gateway + " (site " + t.cfg.Site + ")",
		Metadata:    map[string]string{"gateway": t.cfg.Gateway, "site": t.cfg.Site, "protocol": t.cfg.Protocol},
		StatsHandler: func(*micro.Endpoint) any {
			return t.Stats()
		},
	})
	if err != nil {
		return nil, fmt.Errorf("micro service %s: %w", name, err)
	}
	subject := "aiot." + strings.ToLower(name) + ".nodes"
	err = svc.AddEndpoint("nodes", micro.HandlerFunc(func(r micro.Request) {
		b, _ := json.Marshal(t.Nodes()) // []Node always marshals
		_ = r.Respond(b)
	}), micro.WithEndpointSubject(subject), micro.WithEndpointQueueGroupDisabled())
	if err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("micro service %s: %w", name, err)
	}
	return svc, nil
}
