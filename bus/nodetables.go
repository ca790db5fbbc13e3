package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// NodeTablesBucket is the JetStream key-value bucket in which gateways keep
// their node tables across restarts (package gateways/persist): the CoAP
// gateway's source ↔ uid table, the MQTT-SN gateway's sessions. Its stream
// is KV_NODE_TABLES, on disk in the data directory like NODES. Only the
// gateway role may use it (NodeTablesRights).
const NodeTablesBucket = "NODE_TABLES"

// Bounds of NODE_TABLES: a backstop behind the gateways' own caps and
// deletes.
const (
	// NodeTablesTTL drops an entry nobody wrote for this long (the entries
	// of a gateway that was renamed or removed for good); gateways write
	// their live entries again well within it.
	NodeTablesTTL = 30 * 24 * time.Hour
	// NodeTablesMaxBytes bounds the whole bucket; when it is full, new
	// writes are refused and the gateways log it.
	NodeTablesMaxBytes = 256 << 20
	// NodeTablesMaxValue bounds one entry (an MQTT-SN session with its
	// topics and subscriptions).
	NodeTablesMaxValue = 256 << 10
	// NodeTablesMarkerTTL is how long the marker of a deleted entry stays:
	// deleted nodes leave nothing behind for longer.
	NodeTablesMarkerTTL = time.Minute
)

// NodeTablesConfig is the configuration of the NODE_TABLES bucket.
func NodeTablesConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:         NodeTablesBucket,
		Description:    "goaiot gateways' node tables, kept across restarts",
		History:        1,
		TTL:            NodeTablesTTL,
		MaxBytes:       NodeTablesMaxBytes,
		MaxValueSize:   NodeTablesMaxValue,
		Storage:        jetstream.FileStorage,
		LimitMarkerTTL: NodeTablesMarkerTTL,
	}
}

// EnsureNodeTablesReplicas creates NODE_TABLES with replicas copies, or
// scales the existing bucket to them. A clustered server's process does it
// at start, before its gateways open the bucket: gateways create it with
// one copy when it is missing and otherwise take it as it is.
func EnsureNodeTablesReplicas(ctx context.Context, js jetstream.JetStream, replicas int) error {
	cfg := NodeTablesConfig()
	cfg.Replicas = replicas
	if _, err := js.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
		return fmt.Errorf("bucket %s: %d replicas: %w", NodeTablesBucket, replicas, err)
	}
	return nil
}

// EnsureNodeTables creates the NODE_TABLES bucket, or binds to it when it
// exists (with this configuration or, made by another version, another).
// Gateways on several members of a cluster may make it at the same moment:
// an unanswered request is tried again ([RetryJetStream]).
func EnsureNodeTables(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := RetryJetStream(ctx, time.Minute, func(ctx context.Context) (err error) {
		kv, err = js.CreateKeyValue(ctx, NodeTablesConfig())
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, NodeTablesBucket)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", NodeTablesBucket, err)
	}
	return kv, nil
}

// NodeTablesRights are the subjects a gateway publishes to use
// NODE_TABLES, and nothing more: create the bucket or read its info
// (creating it asks for the account's JetStream info), write and delete
// its keys, and read them back at start through an ordered consumer of
// its own (create, delete, flow control; deliveries come to the gateway's
// own inbox). No other role has any of them; nodes never reach $KV or
// $JS (NodePermissions).
func NodeTablesRights() []string {
	stream := "KV_" + NodeTablesBucket
	return []string{
		"$JS.API.INFO",
		"$JS.API.STREAM.CREATE." + stream,
		"$JS.API.STREAM.INFO." + stream,
		"$JS.API.CONSUMER.CREATE." + stream + ".>",
		"$JS.API.CONSUMER.DELETE." + stream + ".*",
		"$JS.FC." + stream + ".>",
		"$KV." + NodeTablesBucket + ".>",
	}
}
