package ws

import (
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/micro"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/internal/version"
)

// addService registers the gateway as the NATS micro service aiot-ws:
// `nats micro stats aiot-ws` shows Stats (refusals by reason included),
// and its endpoint "nodes", on aiot.aiot-ws.nodes, lists the connected
// nodes. It is presence's service with the gateway's own counters.
func (g *Gateway) addService() (micro.Service, error) {
	svc, err := micro.AddService(g.cfg.Conn, micro.Config{
		Name:         ServiceName,
		Version:      version.Version,
		Description:  bus.ProtocolWebSocket + " gateway " + g.cfg.Gateway + " (site " + g.cfg.Site + ")",
		Metadata:     map[string]string{"gateway": g.cfg.Gateway, "site": g.cfg.Site, "protocol": bus.ProtocolWebSocket},
		StatsHandler: func(*micro.Endpoint) any { return g.Stats() },
	})
	if err != nil {
		return nil, fmt.Errorf("micro service %s: %w", ServiceName, err)
	}
	err = svc.AddEndpoint("nodes", micro.HandlerFunc(func(r micro.Request) {
		b, _ := json.Marshal(g.Nodes()) // []presence.Node always marshals
		_ = r.Respond(b)
	}), micro.WithEndpointSubject("aiot."+ServiceName+".nodes"), micro.WithEndpointQueueGroupDisabled())
	if err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("micro service %s: %w", ServiceName, err)
	}
	return svc, nil
}
