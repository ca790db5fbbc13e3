package queue

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
)

// entry is one queued command, as stored in the bucket (JSON) under
// key(Node, Resource).
type entry struct {
	Command  string    `json:"command"`
	Node     string    `json:"uid"`
	Resource string    `json:"endpoint"`
	Payload  []byte    `json:"payload"`
	QueuedAt time.Time `json:"queued_at"`
	Until    time.Time `json:"until"`
	// Sending marks a command a queue claimed to replay; one still marked
	// at start (the queue stopped meanwhile) is replayed again.
	Sending bool `json:"sending,omitempty"`

	rev uint64 // bucket revision
}

// key is the bucket key of a node's resource: both base64url, because node
// ids may hold characters that key-value keys may not.
func key(node, res string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(node)) + "." + base64.RawURLEncoding.EncodeToString([]byte(res))
}

func parseKey(k string) (node, res string, err error) {
	a, b, ok := strings.Cut(k, ".")
	if !ok {
		return "", "", fmt.Errorf("key %q: not <node>.<resource>", k)
	}
	n, err1 := base64.RawURLEncoding.DecodeString(a)
	r, err2 := base64.RawURLEncoding.DecodeString(b)
	if err := errors.Join(err1, err2); err != nil {
		return "", "", fmt.Errorf("key %q: %w", k, err)
	}
	return string(n), string(r), nil
}

func (e *entry) key() string { return key(e.Node, e.Resource) }

func (e *entry) encode() []byte {
	b, _ := json.Marshal(e) // an entry always marshals
	return b
}

func decodeEntry(kve jetstream.KeyValueEntry) (*entry, error) {
	e, err := parseEntry(kve.Key(), kve.Value())
	if err != nil {
		return nil, err
	}
	e.rev = kve.Revision()
	return e, nil
}

// parseEntry reads the stored entry of bucket key k: it must decode and
// name the node and resource of its key, with a command id.
func parseEntry(k string, value []byte) (*entry, error) {
	var e entry
	if err := json.Unmarshal(value, &e); err != nil {
		return nil, fmt.Errorf("entry %s: %w", k, err)
	}
	if e.key() != k || e.Command == "" {
		return nil, fmt.Errorf("entry %s: does not match its key", k)
	}
	return &e, nil
}

// openBucket creates the bucket or opens it as it is. Its stream holds one
// value per key, at most what the caps allow.
func (q *Queue) openBucket(ctx context.Context, js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	perValue := q.cfg.MaxPayload*4/3 + 1024 // base64 payload plus the fields
	cfg := jetstream.KeyValueConfig{
		Bucket:       q.cfg.Bucket,
		Description:  "goaiot: commands waiting for their node (gateways/queue)",
		History:      1,
		Storage:      jetstream.FileStorage,
		Replicas:     q.cfg.Replicas,
		MaxValueSize: int32(perValue),
		MaxBytes:     int64(perValue) * int64(q.cfg.MaxNodes) * int64(q.cfg.MaxPerNode) * 2,
	}
	var kv jetstream.KeyValue
	// Queues on several members of a cluster make the bucket at once.
	err := bus.RetryJetStream(ctx, time.Minute, func(ctx context.Context) (err error) {
		kv, err = js.CreateOrUpdateKeyValue(ctx, cfg)
		return err
	})
	if err != nil {
		return fmt.Errorf("queue: bucket %s: %w", q.cfg.Bucket, err)
	}
	q.kv = kv
	return nil
}

// loadWaiting applies the watcher's initial values, up to its end marker.
func (q *Queue) loadWaiting(ctx context.Context, w jetstream.KeyWatcher) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("queue: reading %s: %w", q.cfg.Bucket, ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("queue: watch of %s ended", q.cfg.Bucket)
			}
			if e == nil {
				return nil
			}
			q.apply(e)
		}
	}
}

// apply brings the in-memory index in line with one change of the bucket.
func (q *Queue) apply(kve jetstream.KeyValueEntry) {
	if kve.Operation() != jetstream.KeyValuePut {
		node, res, err := parseKey(kve.Key())
		if cur := q.lookup(node, res); err == nil && cur != nil && cur.rev < kve.Revision() {
			q.unindex(node, res)
		}
		return
	}
	e, err := decodeEntry(kve)
	if err != nil {
		q.log.Warn("queue: bad entry ignored", "err", err)
		return
	}
	q.index(e)
}

// index records e unless a newer revision is there already (this queue's
// own writes are indexed at once, before the watcher reports them).
func (q *Queue) index(e *entry) {
	if cur := q.lookup(e.Node, e.Resource); cur != nil && cur.rev > e.rev {
		return
	}
	m := q.waiting[e.Node]
	if m == nil {
		m = make(map[string]*entry)
		q.waiting[e.Node] = m
	}
	m[e.Resource] = e
}

func (q *Queue) unindex(node, res string) {
	m := q.waiting[node]
	delete(m, res)
	if len(m) == 0 {
		delete(q.waiting, node)
	}
}

func (q *Queue) lookup(node, res string) *entry {
	return q.waiting[node][res]
}
