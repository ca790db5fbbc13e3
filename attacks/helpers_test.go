package attacks

import (
	"context"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

const wait = 10 * time.Second

// victim stores history for node "victim" as its owning gateway would, and
// returns the stream's state after it.
func victim(t *testing.T, nc *nats.Conn, values int) jetstream.StreamState {
	t.Helper()
	for i := range values {
		v := fmt.Sprintf(`{"value":"%d°C"}`, 20+i)
		if err := nc.Publish(bus.NodeValue("victim", "temperature"), []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	bustest.Eventually(t, wait, "victim's values stored", func() error {
		return bustest.Want(streamState(t, nc).Msgs >= uint64(values))
	})
	return streamState(t, nc)
}

func streamState(t *testing.T, nc *nats.Conn) jetstream.StreamState {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	st, err := js.Stream(ctx, bus.NodesStream)
	if err != nil {
		t.Fatalf("NODES stream: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State
}

// lastValue is the stored last value of subject.
func lastValue(t *testing.T, nc *nats.Conn, subject string) string {
	t.Helper()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	st, err := js.Stream(ctx, bus.NodesStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return ""
	}
	return string(m.Data)
}

// intact fails unless the stream still holds everything it held in before.
func intact(t *testing.T, nc *nats.Conn, before jetstream.StreamState) {
	t.Helper()
	after := streamState(t, nc)
	if after.FirstSeq != before.FirstSeq || after.Msgs < before.Msgs {
		t.Fatalf("stored history lost: before %d msgs from seq %d, after %d from seq %d",
			before.Msgs, before.FirstSeq, after.Msgs, after.FirstSeq)
	}
	if got, want := lastValue(t, nc, bus.NodeValue("victim", "temperature")), `{"value":"`; len(got) < len(want) {
		t.Fatalf("victim's last value gone: %q", got)
	}
}

// mqttClient connects a paho client with clientID to the MQTT listener.
func mqttClient(t *testing.T, srv *bus.Server, clientID string) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker("tcp://" + srv.MQTTAddr()).SetClientID(clientID).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(wait)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("mqtt connect %s: %v", clientID, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// publish sends one MQTT message at QoS 0 (never acknowledged, so a refused
// one cannot fail the client).
func publish(t *testing.T, c paho.Client, topic string, payload []byte) {
	t.Helper()
	if tok := c.Publish(topic, 0, false, payload); !tok.WaitTimeout(wait) {
		t.Fatalf("publish %s: timeout", topic)
	}
}

// settle publishes a sentinel on the client's own subject and waits for it
// on NATS: everything the client sent before has been handled by then.
func settle(t *testing.T, c paho.Client, nc *nats.Conn, own string) {
	t.Helper()
	sub, err := nc.SubscribeSync(bus.NodeValue(own, "sentinel"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	_ = nc.Flush()
	publish(t, c, "node/"+own+"/sentinel", []byte(`{"value":"done"}`))
	if _, err := sub.NextMsg(wait); err != nil {
		t.Fatalf("sentinel of %s: %v", own, err)
	}
}

// subackCode is the return code of a subscribe token's first filter.
func subackCode(tok paho.Token) byte {
	st, ok := tok.(*paho.SubscribeToken)
	if !ok {
		return 0
	}
	for _, code := range st.Result() {
		return code
	}
	return 0
}
