package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/internal/shrink"
)

// QueueGroup is the NATS queue group of every queue on one bus: each
// request is answered once however many run.
const QueueGroup = "aiot-queue"

// Config configures a Queue. Zero values take the defaults shown.
type Config struct {
	Conn   *nats.Conn   // required
	Logger *slog.Logger // required
	// Bucket is the JetStream key-value bucket of queued commands;
	// default bus.QueueBucket. It is file-backed: commands survive restarts.
	Bucket string
	// Stream holds the nodes' last $state, read at start; default
	// bus.NodesStream. A missing stream is not an error.
	Stream string
	// MaxFor is the longest Aiot-Queue-For accepted; default 24 h.
	MaxFor time.Duration
	// MaxNodes caps the nodes with commands waiting; default 1 000.
	MaxNodes int
	// MaxPerNode caps the resources of one node with a command waiting
	// (one command per resource by construction); default 16.
	MaxPerNode int
	// MaxPayload caps one queued command's payload; default
	// bus.DefaultMaxValueBytes (4 KiB).
	MaxPayload int
	// MaxKnown caps the node ids whose presence is followed; default
	// 100 000. Beyond it, new ids are not followed (not queueable), and
	// from then on ids never seen get no answer (see doc.go, "Replies").
	MaxKnown int
	// ForgetAfter: a node offline for longer, with no command waiting, is
	// no longer followed (commands to it are answered no_gateway, as for an
	// id never seen), so that id churn does not fill MaxKnown for good;
	// default 24 h, negative: never.
	ForgetAfter time.Duration
	// Replicas is how many copies of the bucket a NATS cluster keeps;
	// default 1. Against an existing bucket it scales it to this count.
	Replicas int
	// ReplayTimeout bounds the wait for the gateway's answer to a replayed
	// command; default 10 s (gateways answer within 5 s).
	ReplayTimeout time.Duration
	// AnswerGrace is how long the queue waits before it answers a command
	// for a node it does not know as owned (no_gateway, offline, queued):
	// NATS orders messages per connection, not across connections, so the
	// owner's online $state may reach the queue just after a request that
	// was sent once the $state was seen elsewhere. If the $state comes
	// within the grace, the owner answers alone. Default 250 ms; negative:
	// answer at once.
	AnswerGrace time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Bucket == "" {
		c.Bucket = bus.QueueBucket
	}
	if c.Stream == "" {
		c.Stream = bus.NodesStream
	}
	if c.MaxFor == 0 {
		c.MaxFor = 24 * time.Hour
	}
	if c.ForgetAfter == 0 {
		c.ForgetAfter = 24 * time.Hour
	}
	if c.ReplayTimeout == 0 {
		c.ReplayTimeout = 10 * time.Second
	}
	if c.AnswerGrace == 0 {
		c.AnswerGrace = 250 * time.Millisecond
	}
	def(&c.MaxNodes, 1000)
	def(&c.MaxPerNode, 16)
	def(&c.MaxPayload, bus.DefaultMaxValueBytes)
	def(&c.MaxKnown, 100_000)
	def(&c.Replicas, 1)
	if c.Now == nil {
		c.Now = time.Now
	}
}

func (c *Config) validate() error {
	switch {
	case c.Conn == nil:
		return errors.New("queue: no nats connection")
	case c.Logger == nil:
		return errors.New("queue: no logger")
	case c.MaxFor < 0 || c.ReplayTimeout < 0:
		return errors.New("queue: negative duration")
	case c.MaxNodes < 0 || c.MaxPerNode < 0 || c.MaxPayload < 0 || c.MaxKnown < 0:
		return errors.New("queue: negative limit")
	}
	return nil
}

// Stats counts what a queue did.
type Stats struct {
	Waiting    int   `json:"waiting"` // commands waiting now
	Nodes      int   `json:"nodes"`   // nodes with commands waiting
	Queued     int64 `json:"queued"`
	Refused    int64 `json:"refused"`
	Delivered  int64 `json:"delivered"`
	Failed     int64 `json:"failed"`
	Expired    int64 `json:"expired"`
	Replaced   int64 `json:"replaced"`
	Unfollowed int64 `json:"unfollowed"` // ids not followed: MaxKnown reached
	Followed   int   `json:"followed"`   // node ids followed now
}

// Queue answers the commands of nodes no gateway owns (queued, offline or
// no_gateway), keeps queued ones in a bucket and replays them when their
// node comes online.
type Queue struct {
	cfg Config
	log *slog.Logger
	nc  *nats.Conn
	kv  jetstream.KeyValue

	// Owned by Run's loop.
	states   map[string]nodeState
	peak     shrink.Peak                  // of states (see forget)
	forgot   time.Time                    // last forget
	waiting  map[string]map[string]*entry // node → resource → command
	inflight map[string]bool              // bucket keys being replayed

	// in receives the live $state and every gateway.*.*.set, in the order
	// the server sent them (one connection, one channel), so that a request
	// made after a node's online $state is never taken for one to an
	// offline node.
	in      chan *nats.Msg
	later   chan *nats.Msg // requests back from their AnswerGrace
	held    int            // requests in their AnswerGrace (at most maxHeld)
	done    chan replayed  // a replay ended
	replays sync.WaitGroup
	ready   chan struct{}

	statsMu                                                           sync.Mutex
	shown                                                             Stats // Waiting and Nodes, set by the loop
	queued, refused, delivered, failed, expired, replaced, unfollowed atomic.Int64
}

// New validates cfg; Run starts the queue.
func New(cfg Config) (*Queue, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Queue{
		cfg: cfg, log: cfg.Logger, nc: cfg.Conn,
		states:   make(map[string]nodeState),
		waiting:  make(map[string]map[string]*entry),
		inflight: make(map[string]bool),
		in:       make(chan *nats.Msg, 16384),
		later:    make(chan *nats.Msg, maxHeld),
		done:     make(chan replayed, 64),
		ready:    make(chan struct{}),
	}, nil
}

// Ready is closed once the queue answers requests.
func (q *Queue) Ready() <-chan struct{} { return q.ready }

// Run opens the bucket, follows presence, answers queued requests and
// replays commands until ctx ends.
func (q *Queue) Run(ctx context.Context) error {
	js, err := jetstream.New(q.nc)
	if err != nil {
		return fmt.Errorf("queue: jetstream: %w", err)
	}
	if err := q.openBucket(ctx, js); err != nil {
		return err
	}
	stop, err := q.followStates(ctx, js)
	if err != nil {
		return err
	}
	defer stop()
	reconnected := q.nc.StatusChanged(nats.CONNECTED)
	defer q.nc.RemoveStatusListener(reconnected)
	w, err := q.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("queue: watch %s: %w", q.cfg.Bucket, err)
	}
	defer func() { _ = w.Stop() }()
	if err := q.loadWaiting(ctx, w); err != nil {
		return err
	}
	// Requests from now on: after the last $state were read, behind the
	// live ones that came meanwhile, in the same channel.
	reqs, err := q.nc.ChanQueueSubscribe(bus.GatewaySetAll("*"), QueueGroup, q.in)
	if err != nil {
		return fmt.Errorf("queue: subscribe %s: %w", bus.GatewaySetAll("*"), err)
	}
	defer func() { _ = reqs.Unsubscribe() }()
	svc, err := q.addService()
	if err != nil {
		return err
	}
	defer func() { _ = svc.Stop() }()
	if err := q.nc.FlushTimeout(10 * time.Second); err != nil {
		return fmt.Errorf("queue: flush: %w", err)
	}
	q.replayOnline(ctx)
	q.show()
	close(q.ready)
	q.log.Info("queue ready", "bucket", q.cfg.Bucket, "waiting", q.count(), "nodes_followed", len(q.states))
	defer q.replays.Wait()
	return q.loop(ctx, w, func() { q.reload(ctx, js) }, reconnected)
}

// loop handles the queue's messages, one at a time, until ctx ends. Once
// its connection is back after a loss (nats.go says so before the server
// sends anything again) it calls reload before anything else.
func (q *Queue) loop(ctx context.Context, w jetstream.KeyWatcher, reload func(), reconnected <-chan nats.Status) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-reconnected:
			reload()
		default:
		}
		select {
		case <-ctx.Done():
			return nil
		case <-reconnected:
			reload()
		case m := <-q.in:
			if _, ok := bus.CommandNode(m.Subject); ok {
				q.onRequest(ctx, m, false)
			} else {
				q.onState(ctx, m)
			}
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil // the watch ends with ctx
				}
				return fmt.Errorf("queue: watch of %s ended", q.cfg.Bucket)
			}
			if e != nil { // nil: the end of the initial values, read before
				q.apply(e)
			}
		case m := <-q.later:
			q.held--
			q.onRequest(ctx, m, true)
		case r := <-q.done:
			q.onReplayed(ctx, r)
		case <-tick.C:
			q.expire(ctx)
			q.forget(q.cfg.Now())
		}
		q.show()
	}
}

// Stats returns the counters.
func (q *Queue) Stats() Stats {
	q.statsMu.Lock()
	s := q.shown
	q.statsMu.Unlock()
	s.Queued, s.Refused, s.Delivered = q.queued.Load(), q.refused.Load(), q.delivered.Load()
	s.Failed, s.Expired, s.Replaced = q.failed.Load(), q.expired.Load(), q.replaced.Load()
	s.Unfollowed = q.unfollowed.Load()
	return s
}

func (q *Queue) show() {
	n := q.count()
	q.statsMu.Lock()
	q.shown.Waiting, q.shown.Nodes, q.shown.Followed = n, len(q.waiting), len(q.states)
	q.statsMu.Unlock()
}

func (q *Queue) count() int {
	n := 0
	for _, m := range q.waiting {
		n += len(m)
	}
	return n
}
