package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// NodesStream is the name of the stream that stores node.>.
const NodesStream = "NODES"

// Consumers on NODES, whoever makes them: readers (viewer, dashboard) may
// create consumers, and NATS permissions cannot see whether a create asks
// for a durable or a deliver_subject, so the stream bounds them all.
const (
	// MaxNodesConsumers is how many consumers NODES holds at once (the
	// sources of a hub's stream not counted); past it a create is refused
	// with JetStream's "maximum consumers limit reached" (10026).
	MaxNodesConsumers = 256
	// NodesConsumerIdle is the longest a consumer on NODES, durable or not,
	// outlives its last use (`nats stream view` asks for exactly one hour);
	// asking for longer is refused with "consumer inactive threshold
	// exceeds system limit" (10153).
	NodesConsumerIdle = time.Hour
)

// StreamConfig bounds the NODES stream.
type StreamConfig struct {
	// History is how many values are kept per subject (1 = last value only).
	History int64
	// MaxAge drops values older than this; a node silent for longer is
	// forgotten. 0 keeps values forever.
	MaxAge time.Duration
	// MaxBytes bounds the whole stream. When it is full, new values are
	// refused (DiscardNew) rather than old ones dropped: no node, however
	// loud, can evict another node's stored history. Per subject, History
	// keeps the newest values as usual.
	MaxBytes int64
	// MaxMsgSize bounds one stored message (a value with its JSON
	// envelope); larger ones are refused. Default MaxValueBytes + 4 KiB.
	MaxMsgSize int32
	// Replicas for a clustered hub; 1 on a single server.
	Replicas int
}

// DefaultMaxMsgSize is the default StreamConfig.MaxMsgSize: a value of
// DefaultMaxValueBytes with room for its envelope, or a resource list.
const DefaultMaxMsgSize = DefaultMaxValueBytes + 4096

// DefaultStreamConfig keeps 500 values per subject (40 min of 5 s sensors)
// for 7 days, in at most 1 GiB.
func DefaultStreamConfig() StreamConfig {
	return StreamConfig{History: 500, MaxAge: 7 * 24 * time.Hour, MaxBytes: 1 << 30, MaxMsgSize: DefaultMaxMsgSize, Replicas: 1}
}

func (c StreamConfig) validate() error {
	if c.History < 1 {
		return fmt.Errorf("stream history %d: must be at least 1", c.History)
	}
	if c.MaxAge < 0 {
		return fmt.Errorf("stream max age %s: must not be negative", c.MaxAge)
	}
	return nil
}

// NodesStreamConfig is the JetStream configuration of the NODES stream.
func NodesStreamConfig(c StreamConfig) jetstream.StreamConfig {
	replicas := c.Replicas
	if replicas < 1 {
		replicas = 1
	}
	maxBytes := c.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	maxMsgSize := c.MaxMsgSize
	if maxMsgSize == 0 {
		maxMsgSize = -1
	}
	return jetstream.StreamConfig{
		Name:              NodesStream,
		Description:       "goaiot node events: last value and bounded history per subject",
		Subjects:          []string{SubjectAllNodes},
		Storage:           jetstream.FileStorage,
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardNew,
		MaxMsgSize:        maxMsgSize,
		MaxMsgsPerSubject: c.History,
		MaxAge:            c.MaxAge,
		MaxBytes:          maxBytes,
		Replicas:          replicas,
		AllowDirect:       true,
		MaxConsumers:      MaxNodesConsumers,
		ConsumerLimits:    jetstream.StreamConsumerLimits{InactiveThreshold: NodesConsumerIdle},
		Duplicates:        duplicatesWindow(c.MaxAge),
	}
}

// duplicatesWindow is how long the stream remembers message ids (a
// gateway's retry of a value it already stored is dropped): two minutes,
// or the stream's max age if shorter (JetStream refuses a longer window).
func duplicatesWindow(maxAge time.Duration) time.Duration {
	if maxAge > 0 && maxAge < 2*time.Minute {
		return maxAge
	}
	return 2 * time.Minute
}

// EnsureNodesStream creates the NODES stream or updates it to cfg. It is
// idempotent: calling it at every start is safe and keeps stored data.
func EnsureNodesStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s, err := js.CreateOrUpdateStream(ctx, NodesStreamConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", NodesStream, err)
	}
	return s, nil
}

// UseNodesStream binds to the NODES stream as it is, and creates it with
// cfg only when it is missing. It is what a process against an external
// NATS does: the stream's configuration belongs to whoever runs the server
// (a hub's stream sources its sites and must never be turned into one that
// captures node.> itself).
func UseNodesStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, NodesStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return EnsureNodesStream(ctx, js, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", NodesStream, err)
	}
	return s, nil
}
