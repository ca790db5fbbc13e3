package persist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/internal/loglimit"
	"github.com/goaiot/goaiot/internal/shrink"
)

// Defaults of Config.
const (
	DefaultDelay      = 100 * time.Millisecond
	DefaultRefresh    = bus.NodeTablesTTL / 4
	DefaultMaxPending = 100_000
	DefaultMaxEntries = 100_000
	DefaultTimeout    = 10 * time.Second
	// maxBackoff is the longest wait before a failed write is tried again.
	maxBackoff = 30 * time.Second
)

// Config configures a Table of entries of type T (the gateway's JSON entry).
type Config[T any] struct {
	// Conn is the gateway's bus connection (role gateway). Required.
	Conn *nats.Conn
	// Logger receives the table's log lines. Required.
	Logger *slog.Logger
	// Kind ("coap", "mqttsn") and Gateway (the instance name) make the key
	// prefix. Required.
	Kind, Gateway string
	// Entries returns the gateway's current entries of ids (every entry
	// when ids is nil), copied under the gateway's own lock; an id it
	// does not return is deleted from the bucket. Called by Run and Flush,
	// never with a lock of the table held. Required.
	Entries func(ids []string) map[string]T
	// Decode parses and checks one stored entry of node id; an error
	// skips the entry with a log line. Required.
	Decode func(id string, data []byte) (T, error)
	// Delay is how long after a change it is written (changes within it
	// are written together). Default DefaultDelay.
	Delay time.Duration
	// Refresh is how often every entry is written again. Default
	// DefaultRefresh.
	Refresh time.Duration
	// MaxPending caps the ids waiting to be written. Default
	// DefaultMaxPending.
	MaxPending int
	// MaxEntries caps the entries Load returns. Default DefaultMaxEntries.
	MaxEntries int
	// Timeout bounds Load and each write. Default DefaultTimeout.
	Timeout time.Duration
}

func (c *Config[T]) withDefaults() {
	if c.Delay <= 0 {
		c.Delay = DefaultDelay
	}
	if c.Refresh <= 0 {
		c.Refresh = DefaultRefresh
	}
	if c.MaxPending <= 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
}

func (c *Config[T]) validate() error {
	switch {
	case c.Conn == nil:
		return errors.New("persist: no nats connection")
	case c.Logger == nil:
		return errors.New("persist: no logger")
	case c.Kind == "" || c.Gateway == "":
		return errors.New("persist: no kind or gateway name")
	case c.Entries == nil || c.Decode == nil:
		return errors.New("persist: no entries or decode function")
	}
	return nil
}

// Stats counts what a table did.
type Stats struct {
	// Enabled tells whether the table is persisted (Load succeeded).
	Enabled bool `json:"enabled"`
	// Loaded entries were restored by Load; Skipped were not (a bad key, an
	// entry Decode refused, past MaxEntries).
	Loaded  int64 `json:"loaded"`
	Skipped int64 `json:"skipped"`
	// Written and Deleted count the entries put and deleted.
	Written int64 `json:"written"`
	Deleted int64 `json:"deleted"`
	// Failed counts writes that failed and wait to be tried again;
	// TooLarge, entries over bus.NodeTablesMaxValue, not written.
	Failed   int64 `json:"failed"`
	TooLarge int64 `json:"too_large"`
	// Dropped counts changes not kept past MaxPending.
	Dropped int64 `json:"dropped"`
	// Pending is how many ids wait to be written now.
	Pending int `json:"pending"`
}

// Table is one gateway's node table in the NODE_TABLES bucket. A nil
// *Table is a table that is not persisted: every method does nothing.
type Table[T any] struct {
	cfg    Config[T]
	log    *slog.Logger
	bad    *loglimit.Limit
	prefix string

	on        atomic.Bool // Load succeeded: kv is set
	kv        jetstream.KeyValue
	markerTTL bool // the bucket takes PurgeTTL

	mu    sync.Mutex
	dirty map[string]struct{}
	wake  chan struct{}

	loaded, skipped, written, deleted, failed, tooLarge, dropped atomic.Int64
}

// New validates cfg; Load then opens the bucket.
func New[T any](cfg Config[T]) (*Table[T], error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.withDefaults()
	log := cfg.Logger.With("bucket", bus.NodeTablesBucket)
	return &Table[T]{
		cfg:    cfg,
		log:    log,
		bad:    loglimit.New(log, 10, "node table lines"),
		prefix: Prefix(cfg.Kind, cfg.Gateway),
		dirty:  make(map[string]struct{}),
		wake:   make(chan struct{}, 1),
	}, nil
}

// Load creates or binds the bucket and returns this gateway's stored
// entries by id. On an error the table stays off (not persisted).
func (t *Table[T]) Load(ctx context.Context) (map[string]T, error) {
	if t == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	js, err := jetstream.New(t.cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("persist: jetstream: %w", err)
	}
	kv, err := bus.EnsureNodeTables(ctx, js)
	if err != nil {
		return nil, fmt.Errorf("persist: %w", err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("persist: bucket status: %w", err)
	}
	entries, err := t.read(ctx, kv)
	if err != nil {
		return nil, err
	}
	t.kv, t.markerTTL = kv, st.LimitMarkerTTL() > 0
	t.on.Store(true)
	t.log.Info("node table loaded", "prefix", t.prefix, "entries", len(entries), "skipped", t.skipped.Load())
	return entries, nil
}

// read returns the decoded entries under the table's prefix.
func (t *Table[T]) read(ctx context.Context, kv jetstream.KeyValue) (map[string]T, error) {
	w, err := kv.Watch(ctx, t.prefix+">", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("persist: read %s: %w", t.prefix, err)
	}
	defer func() { _ = w.Stop() }()
	out := make(map[string]T)
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case e, ok = <-w.Updates():
		case <-ctx.Done():
			return nil, fmt.Errorf("persist: read %s: %w", t.prefix, ctx.Err())
		}
		switch {
		case !ok:
			return nil, fmt.Errorf("persist: read %s: watcher closed", t.prefix)
		case e == nil: // every stored entry seen
			return out, nil
		}
		t.take1(out, e)
	}
}

// take1 decodes one stored entry into out, or skips it with a log line.
func (t *Table[T]) take1(out map[string]T, e jetstream.KeyValueEntry) {
	skip := func(why string, err error) {
		t.skipped.Add(1)
		t.bad.Warn("node table entry skipped", "key", e.Key(), "why", why, "err", err)
	}
	id, err := ParseKey(t.prefix, e.Key())
	if err != nil {
		skip("bad key", err)
		return
	}
	if len(out) >= t.cfg.MaxEntries {
		skip("too many entries", fmt.Errorf("max %d", t.cfg.MaxEntries))
		return
	}
	v, err := t.cfg.Decode(id, e.Value())
	if err != nil {
		skip("bad entry", err)
		return
	}
	out[id] = v
	t.loaded.Add(1)
}

// Changed marks node id's entry to be written (or deleted, if the
// gateway no longer has it) within Delay. No I/O: safe under the
// gateway's lock.
func (t *Table[T]) Changed(id string) {
	if t == nil || !t.on.Load() {
		return
	}
	t.mu.Lock()
	_, dup := t.dirty[id]
	full := !dup && len(t.dirty) >= t.cfg.MaxPending
	if !full {
		t.dirty[id] = struct{}{}
	}
	t.mu.Unlock()
	if full {
		t.dropped.Add(1)
		t.bad.Warn("node table change dropped: too many pending", "id", id, "max", t.cfg.MaxPending)
		return
	}
	t.poke()
}

func (t *Table[T]) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// Run writes changes and refreshes until ctx ends. It returns nil.
func (t *Table[T]) Run(ctx context.Context) error {
	if t == nil || !t.on.Load() {
		<-ctx.Done()
		return nil
	}
	refresh := time.NewTicker(t.cfg.Refresh)
	defer refresh.Stop()
	delay := t.cfg.Delay
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-refresh.C:
			t.refresh(ctx)
			continue
		case <-t.wake:
		}
		if !sleep(ctx, delay) {
			return nil
		}
		if t.flush(ctx) {
			delay = t.cfg.Delay
			continue
		}
		delay = min(2*delay, maxBackoff)
		t.poke()
	}
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// Flush writes the pending changes now (a gateway that stops calls it
// once its handlers are done); it reports whether all were written.
func (t *Table[T]) Flush(ctx context.Context) bool {
	if t == nil || !t.on.Load() {
		return true
	}
	return t.flush(ctx)
}

// flush writes the pending ids; on a failure it keeps the rest pending.
func (t *Table[T]) flush(ctx context.Context) bool {
	ids := t.take()
	if len(ids) == 0 {
		return true
	}
	entries := t.cfg.Entries(ids)
	for i, id := range ids {
		var err error
		if e, ok := entries[id]; ok {
			err = t.put(ctx, id, e)
		} else {
			err = t.delete(ctx, id)
		}
		if err != nil {
			t.failed.Add(1)
			t.requeue(ids[i:])
			t.log.Warn("node table not written; trying again later", "pending", len(ids)-i, "err", err)
			return false
		}
	}
	return true
}

// refresh writes every entry again, so that the bucket's TTL keeps it.
func (t *Table[T]) refresh(ctx context.Context) {
	entries := t.cfg.Entries(nil)
	ids := slices.Sorted(maps.Keys(entries))
	for i, id := range ids {
		if err := t.put(ctx, id, entries[id]); err != nil {
			// The rest goes with the changes, tried again backing off.
			t.failed.Add(1)
			t.requeue(ids[i:])
			t.poke()
			t.log.Warn("node table not refreshed; trying again later", "pending", len(ids)-i, "err", err)
			return
		}
	}
	t.log.Debug("node table refreshed", "entries", len(entries))
}

// take empties the pending set and returns its ids, sorted.
func (t *Table[T]) take() []string {
	t.mu.Lock()
	ids := make([]string, 0, len(t.dirty))
	for id := range t.dirty {
		ids = append(ids, id)
	}
	if len(t.dirty) >= shrink.MinPeak {
		t.dirty = make(map[string]struct{}) // a Go map keeps its buckets when cleared
	} else {
		clear(t.dirty)
	}
	t.mu.Unlock()
	slices.Sort(ids)
	return ids
}

// requeue makes ids pending again (a newer change of one is the same id).
func (t *Table[T]) requeue(ids []string) {
	t.mu.Lock()
	for _, id := range ids {
		t.dirty[id] = struct{}{}
	}
	t.mu.Unlock()
}

func (t *Table[T]) put(ctx context.Context, id string, e T) error {
	b, err := json.Marshal(e)
	if err != nil {
		t.log.Error("node table entry does not encode", "id", id, "err", err)
		return nil // not worth trying again
	}
	if len(b) > bus.NodeTablesMaxValue {
		t.tooLarge.Add(1)
		t.bad.Warn("node table entry too large: not written", "id", id, "bytes", len(b), "max", bus.NodeTablesMaxValue)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	if _, err := t.kv.Put(ctx, t.prefix+escape(id), b); err != nil {
		return fmt.Errorf("put %s: %w", id, err)
	}
	t.written.Add(1)
	return nil
}

func (t *Table[T]) delete(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	var opts []jetstream.KVDeleteOpt
	if t.markerTTL {
		opts = append(opts, jetstream.PurgeTTL(bus.NodeTablesMarkerTTL))
	}
	if err := t.kv.Purge(ctx, t.prefix+escape(id), opts...); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	t.deleted.Add(1)
	return nil
}

// Stats returns the table's counters.
func (t *Table[T]) Stats() Stats {
	if t == nil {
		return Stats{}
	}
	t.mu.Lock()
	pending := len(t.dirty)
	t.mu.Unlock()
	return Stats{
		Enabled: t.on.Load(), Loaded: t.loaded.Load(), Skipped: t.skipped.Load(),
		Written: t.written.Load(), Deleted: t.deleted.Load(), Failed: t.failed.Load(),
		TooLarge: t.tooLarge.Load(), Dropped: t.dropped.Load(), Pending: pending,
	}
}
