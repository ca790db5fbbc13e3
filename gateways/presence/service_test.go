package presence_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/goaiot/goaiot/gateways/presence"
)

func TestAddService(t *testing.T) {
	tr, nc := start(t, presence.Config{})
	svc, err := tr.AddService("aiot-coap")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = svc.Stop() }()
	if _, err := tr.Seen("n1", "127.0.0.5:5683"); err != nil {
		t.Fatal(err)
	}
	tr.Sync()
	m, err := nc.Request("$SRV.INFO.aiot-coap", nil, 2*time.Second)
	if err != nil {
		t.Fatalf("service not discoverable: %v", err)
	}
	var info micro.Info
	if err := json.Unmarshal(m.Data, &info); err != nil || info.Name != "aiot-coap" || len(info.Endpoints) != 1 {
		t.Fatalf("info = %+v, %v", info, err)
	}
	m, err = nc.Request(info.Endpoints[0].Subject, nil, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []presence.Node
	if err := json.Unmarshal(m.Data, &nodes); err != nil || len(nodes) != 1 || nodes[0].ID != "n1" {
		t.Fatalf("nodes = %+v, %v", nodes, err)
	}
}
