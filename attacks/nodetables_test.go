package attacks

import (
	"maps"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/mqttsn"
	"github.com/goaiot/goaiot/gateways/mqttsn/packet"
	"github.com/goaiot/goaiot/gateways/persist"
)

// Issue 15: the gateways' node tables (NODE_TABLES) are written and read
// by the gateway role only. An MQTT node (the embedded listener, default
// set-up) and an MQTT-SN node try to read the bucket, overwrite the
// victim's session (to take its address or grant it a subscription),
// insert one of their own, purge or delete the bucket: each is refused,
// and the bucket holds what the gateway wrote, at the same revisions.
func TestNodeTablesAttacks(t *testing.T) {
	e := startMQTTEdge(t)
	gw, err := mqttsn.New(mqttsn.Config{Conn: bustest.Connect(t, e.srv), Logger: bustest.Logger(t), Listen: "127.0.0.1:0",
		Name: "mqttsn@lab", PersistDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, gw.Run)
	bustest.Eventually(t, wait, "gateway bound", func() error { return bustest.Want(gw.Addr() != nil) })
	dialSN(t, gw.Addr(), "victim2")
	kv := nodeTables(t, e.nc)
	victimKey := persist.Key("mqttsn", "mqttsn@lab", "victim2")
	bustest.Eventually(t, wait, "the victim's session stored", func() error { return bustest.Want(tableState(t, kv)[victimKey] > 0) })
	forged := `{"v":1,"id":"victim2","addr":"127.0.0.66:1","subs":[{"filter":"gateway/#","qos":0}]}`
	kvTopic := "$KV/NODE_TABLES/mqttsn/mqttsn=40lab/"

	t.Run("MQTT node", func(t *testing.T) {
		before := tableState(t, kv)
		c := mqttClient(t, e.srv, "mallory")
		live := make(chan paho.Message, 16)
		for _, filter := range []string{"$KV/NODE_TABLES/#", "$KV/#", "$JS/FC/#"} {
			tok := c.Subscribe(filter, 0, func(_ paho.Client, m paho.Message) { live <- m })
			if !tok.WaitTimeout(wait) {
				t.Fatalf("subscribe %s: no answer", filter)
			}
			if tok.Error() == nil && c.IsConnected() && subackCode(tok) != 0x80 {
				t.Fatalf("subscribe %s granted (code %#x)", filter, subackCode(tok))
			}
		}
		if !c.IsConnected() {
			c = mqttClient(t, e.srv, "mallory")
		}
		publish(t, c, kvTopic+"victim2", []byte(forged))
		publish(t, c, kvTopic+"mallory", []byte(`{"v":1,"id":"mallory","addr":"127.0.0.66:2"}`))
		publish(t, c, "$JS/API/STREAM/PURGE/KV_NODE_TABLES", nil)
		publish(t, c, "$JS/API/STREAM/DELETE/KV_NODE_TABLES", nil)
		publish(t, c, "$JS/API/CONSUMER/CREATE/KV_NODE_TABLES", []byte(`{"config":{"deliver_subject":"node.mallory.loot"}}`))
		settle(t, c, e.nc, "mallory")
		// A session the gateway writes now is not seen by the node.
		dialSN(t, gw.Addr(), "witness")
		bustest.Eventually(t, wait, "the witness stored", func() error {
			return bustest.Want(tableState(t, kv)[persist.Key("mqttsn", "mqttsn@lab", "witness")] > 0)
		})
		settle(t, c, e.nc, "mallory")
		select {
		case m := <-live:
			t.Fatalf("the MQTT node read %s", m.Topic())
		default:
		}
		unchanged(t, before, tableState(t, kv), "witness")
	})

	t.Run("MQTT-SN node", func(t *testing.T) {
		a := dialSN(t, gw.Addr(), "mallory2")
		mine := persist.Key("mqttsn", "mqttsn@lab", "mallory2")
		bustest.Eventually(t, wait, "mallory2's own session stored", func() error { return bustest.Want(tableState(t, kv)[mine] > 0) })
		before := tableState(t, kv)
		for _, topic := range []string{
			kvTopic + "victim2", kvTopic + "mallory2", "$JS/API/STREAM/DELETE/KV_NODE_TABLES",
			"$JS/API/DIRECT/GET/KV_NODE_TABLES", "$JS/API/CONSUMER/CREATE/KV_NODE_TABLES",
		} {
			if ack := a.register(topic); ack.ReturnCode != packet.NotSupported {
				t.Fatalf("REGISTER %s: %+v, want rejected: not supported", topic, ack)
			}
		}
		for _, filter := range []string{"$KV/NODE_TABLES/#", "$KV/#", "$JS/#"} {
			if ack := a.subscribe(filter); ack.ReturnCode != packet.NotSupported {
				t.Fatalf("SUBSCRIBE %s: %+v, want rejected: not supported", filter, ack)
			}
		}
		// Its own value still goes through: everything before it was handled.
		ack := a.register("node/mallory2/temperature")
		if p := a.publish(ack.TopicID, `{"value":"1"}`); p.ReturnCode != packet.Accepted {
			t.Fatalf("PUBACK own value %+v", p)
		}
		unchanged(t, before, tableState(t, kv), "")
	})
	if st := gw.Stats().Table; st.Failed != 0 || st.Skipped != 0 {
		t.Fatalf("table stats %+v", st)
	}
	intact(t, e.nc, e.before)
}

// nodeTables is the NODE_TABLES bucket, as the admin sees it.
func nodeTables(t *testing.T, nc *nats.Conn) jetstream.KeyValue {
	t.Helper()
	return bustest.KeyValue(t, nc, bus.NodeTablesBucket)
}

// tableState is every key of the bucket with its revision.
func tableState(t *testing.T, kv jetstream.KeyValue) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for k, e := range bustest.Entries(t, kv) {
		out[k] = e.Revision()
	}
	return out
}

// unchanged fails unless after holds exactly before's keys at the same
// revisions, plus the entry the gateway wrote for client added.
func unchanged(t *testing.T, before, after map[string]uint64, added string) {
	t.Helper()
	if added != "" {
		delete(after, persist.Key("mqttsn", "mqttsn@lab", added))
	}
	if !maps.Equal(before, after) {
		t.Fatalf("NODE_TABLES changed: before %v, after %v", before, after)
	}
}
