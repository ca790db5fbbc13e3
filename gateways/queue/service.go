package queue

import (
	"fmt"

	"github.com/goaiot/goaiot/internal/version"
	"github.com/nats-io/nats.go/micro"
)

// ServiceName is the NATS micro service of the queue.
const ServiceName = "aiot-queue"

// addService registers the micro service: `nats micro stats aiot-queue`
// shows Stats, aiot.aiot-queue.stats answers them.
func (q *Queue) addService() (micro.Service, error) {
	svc, err := micro.AddService(q.nc, micro.Config{
		Name:         ServiceName,
		Version:      version.Version,
		Description:  "goaiot: commands waiting for offline nodes",
		StatsHandler: func(*micro.Endpoint) any { return q.Stats() },
	})
	if err != nil {
		return nil, fmt.Errorf("micro service %s: %w", ServiceName, err)
	}
	err = svc.AddEndpoint("stats", micro.HandlerFunc(func(r micro.Request) {
		_ = r.RespondJSON(q.Stats())
	}), micro.WithEndpointSubject("aiot."+ServiceName+".stats"), micro.WithEndpointQueueGroupDisabled())
	if err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("micro service %s: %w", ServiceName, err)
	}
	return svc, nil
}
