package bus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

// TestNodeTablesGatewayRole: with --auth, the gateway role creates
// NODE_TABLES, writes, reads back and deletes its keys, and can do nothing
// else with the bucket (delete it, purge it, change it) nor with another
// bucket.
func TestNodeTablesGatewayRole(t *testing.T) {
	s, ids := authServer(t)
	var v violations
	js, err := jetstream.New(connectAs(t, s, ids[bus.RoleGateway], &v))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := bus.EnsureNodeTables(ctx, js)
	if err != nil {
		t.Fatalf("create as gateway: %v", err)
	}
	if _, err := bus.EnsureNodeTables(ctx, js); err != nil {
		t.Fatalf("bind as gateway: %v", err)
	}
	if _, err := kv.Put(ctx, "coap.gw.n1", []byte(`{}`)); err != nil {
		t.Fatalf("put as gateway: %v", err)
	}
	w, err := kv.Watch(ctx, "coap.gw.>")
	if err != nil {
		t.Fatalf("watch as gateway: %v", err)
	}
	if e := <-w.Updates(); e == nil || e.Key() != "coap.gw.n1" {
		t.Fatalf("watch as gateway: got %v", e)
	}
	_ = w.Stop()
	if err := kv.Purge(ctx, "coap.gw.n1", jetstream.PurgeTTL(bus.NodeTablesMarkerTTL)); err != nil {
		t.Fatalf("delete as gateway: %v", err)
	}

	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	if err := js.DeleteKeyValue(short, bus.NodeTablesBucket); err == nil {
		t.Fatal("the gateway role deleted the bucket")
	}
	if _, err := js.UpdateKeyValue(short, bus.NodeTablesConfig()); err == nil {
		t.Fatal("the gateway role updated the bucket")
	}
	if _, err := js.CreateKeyValue(short, jetstream.KeyValueConfig{Bucket: "OTHER"}); err == nil {
		t.Fatal("the gateway role created another bucket")
	}
}

// TestNodeTablesOtherRoles: no role but the gateway (and the admin) may
// touch NODE_TABLES, and a node (an MQTT client of the listener, a node
// user) never reaches it: writes, reads (direct gets, consumers), bucket
// management are all refused by the server.
func TestNodeTablesOtherRoles(t *testing.T) {
	s, ids := authServer(t)
	admin := connectAs(t, s, ids[bus.RoleAdmin], nil)
	js, _ := jetstream.New(admin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := bus.EnsureNodeTables(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "coap.gw.n1", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	subjects := []string{
		"$KV.NODE_TABLES.coap.gw.n1",
		"$JS.API.DIRECT.GET.KV_NODE_TABLES.$KV.NODE_TABLES.coap.gw.n1",
		"$JS.API.STREAM.MSG.GET.KV_NODE_TABLES",
		"$JS.API.STREAM.INFO.KV_NODE_TABLES",
		"$JS.API.STREAM.CREATE.KV_NODE_TABLES",
		"$JS.API.STREAM.PURGE.KV_NODE_TABLES",
		"$JS.API.STREAM.DELETE.KV_NODE_TABLES",
		"$JS.API.CONSUMER.CREATE.KV_NODE_TABLES.x.$KV.NODE_TABLES.>",
	}
	for _, r := range []bus.Role{bus.RoleDashboard, bus.RoleViewer, bus.RoleNode} {
		for _, subject := range subjects {
			t.Run(string(r)+" "+subject, func(t *testing.T) {
				var v violations
				nc := connectAs(t, s, ids[r], &v)
				if err := nc.Publish(subject, []byte(`{}`)); err != nil {
					t.Fatal(err)
				}
				bustest.Eventually(t, 5*time.Second, fmt.Sprintf("%s refused publishing %s", r, subject), func() error { return bustest.Want(v.has(subject)) })
			})
		}
	}
	e, err := kv.Get(ctx, "coap.gw.n1")
	if err != nil || string(e.Value()) != `{"v":1}` || e.Revision() != 1 {
		t.Fatalf("entry after the attempts: %v, %v", e, err)
	}
}

// TestNodeTablesConfig: the bucket the gateways make keeps one value per
// key, on disk, bounded in size, age and per entry, and deleted keys leave
// a marker only for a while.
func TestNodeTablesConfig(t *testing.T) {
	nc := bustest.Connect(t, bustest.StartServer(t))
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := bus.EnsureNodeTables(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	info := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config
	if st.History() != 1 || st.TTL() != bus.NodeTablesTTL || st.LimitMarkerTTL() != bus.NodeTablesMarkerTTL ||
		info.MaxBytes != bus.NodeTablesMaxBytes || info.MaxMsgSize != bus.NodeTablesMaxValue || info.Storage != jetstream.FileStorage {
		t.Fatalf("bucket config %+v", info)
	}
}
