package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// mqttIngest measures MQTT node values (node/<id>/<res>, {"value":…},
// QoS 1) through the system's MQTT broker, and the same load through a
// mosquitto child to MQTT subscribers as the baseline.
func (r *runner) mqttIngest(ctx context.Context, p params) ([]Result, error) {
	if r.target.MQTT == "" {
		return nil, fmt.Errorf("no mqtt broker: give --mqtt")
	}
	prefix := r.idPrefix() + "-mqtt-"
	rows, err := r.ingest(ctx, p, "mqtt", prefix, &mqttNodes{broker: r.target.MQTT, prefix: prefix, resources: p.resources})
	if err != nil || r.cfg.NoBaselines {
		return rows, err
	}
	b, err := r.mosquittoBaseline(ctx, p)
	if err != nil {
		return rows, fmt.Errorf("mosquitto baseline: %w", err)
	}
	return append(rows, b), nil
}

// mqttNodes are paho clients publishing like Pyaiot's MQTT nodes.
type mqttNodes struct {
	broker    string
	prefix    string
	resources int
	clients   []mqtt.Client
}

func mqttClient(broker, id string) (mqtt.Client, error) {
	o := mqtt.NewClientOptions().AddBroker("tcp://" + broker).SetClientID(id).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectTimeout(10 * time.Second).SetKeepAlive(60 * time.Second).
		SetMaxResumePubInFlight(0).SetOrderMatters(false)
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("mqtt %s: connect timeout", id)
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("mqtt %s: %w", id, err)
	}
	return c, nil
}

func (s *mqttNodes) connect(_ context.Context, n int) error {
	s.clients = make([]mqtt.Client, 0, n)
	for i := range n {
		id := s.prefix + itoa(i)
		c, err := mqttClient(s.broker, id)
		if err != nil {
			s.close()
			return err
		}
		s.clients = append(s.clients, c)
		check, _ := json.Marshal(map[string]string{"id": id})
		names := make([]string, s.resources)
		for k := range names {
			names[k] = "b" + itoa(k)
		}
		list, _ := json.Marshal(names)
		c.Publish("node/check", 1, false, check)
		c.Publish("node/"+id+"/resources", 1, false, list)
	}
	return nil
}

func (s *mqttNodes) send(i int, res, value string) error {
	tok := s.clients[i].Publish("node/"+s.prefix+itoa(i)+"/"+res, 1, false, `{"value":"`+value+`"}`)
	select {
	case <-tok.Done():
		return tok.Error()
	default:
		return nil // acknowledged later; loss is counted at the receivers
	}
}

func (s *mqttNodes) close() {
	for _, c := range s.clients {
		c.Disconnect(100)
	}
}

// mosquittoBaseline sends the same MQTT load to a mosquitto child and
// counts it at p.browsers MQTT subscribers on node/#.
func (r *runner) mosquittoBaseline(ctx context.Context, p params) (Result, error) {
	dir, err := os.MkdirTemp(r.tmp, "mosquitto-")
	if err != nil {
		return Result{}, err
	}
	c, addr, err := startMosquitto(ctx, dir)
	if err != nil {
		return Result{}, err
	}
	defer c.stop()
	t := newTally(p.nodes, p.resources)
	rcvs := make([]*receiver, p.browsers)
	for i := range rcvs {
		rcv := newReceiver(t)
		rcvs[i] = rcv
		sub, err := mqttClient(addr, "bench-sub-"+itoa(i))
		if err != nil {
			return Result{}, err
		}
		defer sub.Disconnect(100)
		tok := sub.Subscribe("node/#", 1, func(_ mqtt.Client, m mqtt.Message) {
			if v, ok := valueOf(m.Payload()); ok {
				rcv.got(v)
			}
		})
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return Result{}, fmt.Errorf("subscribe: %v", tok.Error())
		}
	}
	src := &mqttNodes{broker: addr, prefix: "bench-mosq-", resources: p.resources}
	if err := src.connect(ctx, p.nodes); err != nil {
		return Result{}, err
	}
	defer src.close()
	s := sample(c.pid)
	began := t.now()
	stopProg := r.prog.start(p.scenario+"/mosq", p.duration, func() int64 { return received(rcvs) })
	sendValues(ctx, t, p, src.send)
	sendEnd := t.now()
	drain(ctx, rcvs, t.total()*int64(len(rcvs)), 2*time.Second, 20*time.Second)
	stopProg()
	res := row(p.scenario, "baseline: mqtt → mosquitto → mqtt subscriber", p, t, rcvs, began, sendEnd, s.stop())
	res.Baseline = true
	return res, nil
}
