package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/connector"
	"github.com/mongorelay/mongorelay/tasks/envelope"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/shard"
	"github.com/mongorelay/mongorelay/tasks/taskmetrics"
)

// offsetCommitter is what the Kafka writer needs of the offsets store.
type offsetCommitter interface {
	Commit(ctx context.Context, key offsets.Key, v *offsets.Value) error
}

// kafkaWriter is the sink of a task's sources: it turns events into Avro records, writes them
// in transactions through the task's own producer, tracks their acknowledgements, and commits
// each checkpoint once every record before it is acknowledged (the commit loop). Records that
// cannot be written go to the dead letter topic (rejects.go).
type kafkaWriter struct {
	spec    Spec
	cfg     *config.Config
	offsets offsetCommitter
	reg     SchemaRegistry
	log     *slog.Logger
	// single is the one collection's route of a collection-scope task, set by open; a scope
	// task (capture.scope=database or deployment) routes each event by its namespace
	// instead, through routes.
	single *route
	routes routes

	// headers go on every change record: the shard that wrote it (and the writer). Shared by
	// all records, never mutated. snapshotHeaders[j] is the same for shard j: a snapshot range
	// holds documents of every shard, and each record names its document's own.
	headers         []kgo.RecordHeader
	snapshotHeaders [][]kgo.RecordHeader

	metrics *taskmetrics.Unit

	// heartbeat writes heartbeat.topic's records; nil without one.
	heartbeat *heartbeat
	acks      *ackTracker[checkpoint]
	// flushes asks the commit loop to commit what is committable now and answer.
	flushes chan chan error
	// txn is the task's transactional producer and its open transaction, set by open.
	txn           *txn
	transactional *Transactional
	evolutions    *Evolutions
	records       sync.Pool // *kgo.Record, recycled after their promise: no allocation per record
	// stalls times the waits on Kafka (and the registry), the offset commit in flight among
	// them, so that the task reports itself degraded when one lasts.
	stalls *stalls
	// txnOffsets writes offsets in the task's transactions (exactly.once); lastOffsetTxn is
	// when a transaction carrying offsets last committed.
	txnOffsets    txnOffsets
	lastOffsetTxn time.Time

	// shutdownTimeout bounds the wait for outstanding acks and the last commit once the
	// task's context is done.
	shutdownTimeout time.Duration
}

// checkpoint is an offset to commit once the records before it are acked.
type checkpoint struct {
	key   offsets.Key
	value *offsets.Value
	// idle marks a position reached without any record (an empty batch's post-batch token):
	// it is committed at most every heartbeat.interval.ms instead of at once.
	idle bool
}

func newKafkaWriter(spec Spec, deps Deps, log *slog.Logger, st *stalls) *kafkaWriter {
	cfg := spec.Connector
	w := &kafkaWriter{
		spec:            spec,
		cfg:             cfg,
		offsets:         deps.Offsets,
		reg:             deps.Registry,
		log:             log,
		headers:         []kgo.RecordHeader{shard.Header(spec.Shard, spec.Shards)},
		transactional:   deps.Transactional,
		evolutions:      deps.Evolutions,
		shutdownTimeout: deps.ShutdownTimeout,
		stalls:          st,
		metrics:         deps.Metrics,
	}
	w.records.New = func() any { return new(kgo.Record) }
	w.txnOffsets, _ = deps.Offsets.(txnOffsets)
	w.routes = routes{byNS: map[string]map[string]*route{}, createTopic: deps.CreateTopic}
	w.acks = newAckTracker[checkpoint](func(r *kgo.Record) { w.records.Put(r) })
	w.metrics.SetQueue(maxBufferedRecords, w.acks.Pending)
	// Records are produced with the task's context, so that a stop never waits on a full
	// buffer; those the stop fails are in the open transaction, which is then aborted.
	w.acks.stopDrops = true
	w.flushes = make(chan chan error)
	if deps.WriterID != "" {
		w.headers = append(w.headers, kgo.RecordHeader{Key: WriterHeader, Value: []byte(deps.WriterID)})
	}
	for j := 0; j < spec.Shards; j++ {
		hs := append([]kgo.RecordHeader{shard.Header(j, spec.Shards)}, w.headers[1:]...)
		w.snapshotHeaders = append(w.snapshotHeaders, hs)
	}
	if w.shutdownTimeout <= 0 {
		w.shutdownTimeout = 30 * time.Second
	}
	return w
}

// open fences whoever owned the task before (initialising the transactional id) and
// registers the key schema. It comes before anything reads the task's offsets.
func (w *kafkaWriter) open(ctx context.Context) error {
	if w.transactional == nil {
		return ErrNoTransactional
	}
	if w.exactlyOnce() && w.txnOffsets == nil {
		return ErrNoTxnOffsets
	}
	if err := w.openTxn(ctx, w.transactional); err != nil {
		return err
	}
	if !w.spec.scoped() {
		rt, err := w.newRoute(ctx, w.spec.DB, w.spec.Coll, w.spec.TopicMaxBytes)
		if err != nil {
			_ = w.closeTxn(ctx, false)
			return err
		}
		w.single = rt
	}
	w.stalls.begin(waitRegistry)
	var err error
	w.heartbeat, err = newHeartbeat(ctx, w.reg, w.cfg)
	w.stalls.end(waitRegistry)
	if err != nil {
		_ = w.closeTxn(ctx, false)
		return err
	}
	return nil
}

// run runs produce, the sources' work, with the commit loop beside it, then ends the
// transaction, waits for outstanding records and commits the last position. A clean stop
// (ctx done) returns nil.
//
// The writer never produces without committing: produce runs under a context that the commit
// loop cancels when it fails, so at most the records in flight at that moment (one
// transaction) follow the last commit, and run returns the commit's error.
func (w *kafkaWriter) run(ctx context.Context, produce func(context.Context) error) error {
	produceCtx, stopProducing := context.WithCancel(ctx)
	defer stopProducing()
	commitCtx, stopCommitter := context.WithCancel(context.WithoutCancel(ctx))
	committed := make(chan error, 1)
	go func() {
		err := w.commitLoop(commitCtx)
		if err != nil {
			stopProducing()
		}
		committed <- err
	}()

	// A panic of the sources fails the task like any error, after the cleanup below: the
	// transaction aborted, the commit loop stopped, the producer closed.
	runErr := produceRecovered(produceCtx, produce)
	if errors.Is(runErr, context.Canceled) && produceCtx.Err() != nil {
		runErr = nil // asked to stop, or stopped by the commit loop, whose error follows
	}
	// The open transaction is aborted, even on a clean stop: it may end with part of a batch
	// whose checkpoint was never sealed, and committing those records would deliver them again
	// when the next run reads the batch from its start. What the transaction held is read
	// again instead; every checkpoint already committed stays true.
	txnErr := w.endTxn(context.WithoutCancel(ctx), false)
	drainErr := w.drain(context.WithoutCancel(ctx))
	stopCommitter()
	commitErr := <-committed
	return errors.Join(runErr, txnErr, drainErr, commitErr, w.closeTxn(context.WithoutCancel(ctx), false))
}

// produceRecovered runs produce, turning a panic into its error (connector.Recover).
func produceRecovered(ctx context.Context, produce func(context.Context) error) (err error) {
	defer connector.Recover(&err)
	return produce(ctx)
}

// err is the first produce error, if any: the sources stop on it.
func (w *kafkaWriter) err() error { return w.acks.Err() }

// openGroup starts the group of one source batch.
func (w *kafkaWriter) openGroup() *ackGroup[checkpoint] { return w.acks.Open() }

// write encodes ev (read from raw) and produces it, and its tombstone after a delete, as part
// of group g. A document that cannot be converted, or whose record is too large for the topic,
// goes where errors.tolerance and oversize.handling say.
func (w *kafkaWriter) write(ctx context.Context, g *ackGroup[checkpoint], raw bson.Raw, ev *envelope.Event, now time.Time) error {
	conversionHook(ev)
	rt, err := w.routeOf(ctx, ev)
	if err != nil {
		return err
	}
	r := w.record(rt.topic)
	if r.Key, err = rt.enc.appendKey(r.Key[:0], ev); err != nil {
		w.records.Put(r)
		return w.reject(ctx, g, raw, ev, err)
	}
	if r.Value, err = rt.enc.appendValue(ctx, r.Value[:0], ev, now.UnixMilli()); err != nil {
		switch {
		case errors.Is(err, envelope.ErrTombstone) && w.cfg.TombstonesOnDelete:
			r.Value = nil // output.shape=document: the delete's record is its tombstone
		case errors.Is(err, envelope.ErrTombstone):
			w.records.Put(r) // output.shape=document without tombstones: a delete writes nothing
			return nil
		case errors.Is(err, envelope.ErrNoDocument):
			w.records.Put(r) // output.shape=document: nothing to write, the delete follows
			return nil
		case isConversion(err):
			w.records.Put(r)
			return w.reject(ctx, g, raw, ev, err)
		default:
			w.records.Put(r)
			return err
		}
	}
	if size := len(r.Key) + len(r.Value) + headersLen(w.headers); size > rt.maxRecordBytes {
		w.records.Put(r)
		return w.oversize(ctx, g, rt, ev, size+recordOverhead)
	}
	r.Timestamp = eventTime(ev, now)
	r.Headers = w.headers
	if ev.Op == envelope.OpRead && w.spec.Shards > 1 {
		j, err := shard.ForID(ev.ID(), w.spec.Shards)
		if err != nil {
			w.records.Put(r)
			return w.reject(ctx, g, raw, ev, err)
		}
		r.Headers = w.snapshotHeaders[j]
	}
	// The tombstone is built before r is produced: once produced, r may be acked, recycled
	// and handed out again by w.record().
	var tomb *kgo.Record
	if ev.Op == envelope.OpDelete && w.cfg.TombstonesOnDelete && r.Value != nil {
		tomb = w.record(rt.topic)
		tomb.Key = append(tomb.Key[:0], r.Key...)
		tomb.Value = nil
		tomb.Timestamp = r.Timestamp
		tomb.Headers = w.headers
	}
	if err := w.beforeProduce(ctx); err != nil {
		w.records.Put(r)
		if tomb != nil {
			w.records.Put(tomb)
		}
		return err
	}
	w.metrics.Records.Add(1)
	w.metrics.Bytes.Add(int64(len(r.Key) + len(r.Value)))
	g.Add()
	w.txn.cl.Produce(ctx, r, g.Promise())
	if tomb != nil {
		w.metrics.Records.Add(1)
		w.metrics.Bytes.Add(int64(len(tomb.Key)))
		g.Add()
		w.txn.cl.Produce(ctx, tomb, g.Promise())
	}
	return nil
}

func (w *kafkaWriter) recordError(ev *envelope.Event, err error) error {
	id := ev.ID()
	return fmt.Errorf("document %s in %s %w: %w (errors.tolerance=none stops the task; fix the document or set errors.tolerance=all with a dead letter topic)",
		id.String(), w.namespaceOf(ev), ErrDocumentRejected, err)
}

func headersLen(hs []kgo.RecordHeader) int {
	n := 0
	for _, h := range hs {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// record returns a record to fill for topic, reusing the buffers of an acked one.
func (w *kafkaWriter) record(topic string) *kgo.Record {
	r := w.records.Get().(*kgo.Record)
	*r = kgo.Record{Topic: topic, Key: r.Key[:0], Value: r.Value[:0]}
	return r
}

// eventTime is the record's timestamp: when MongoDB committed the change, so consumers can
// measure end-to-end latency; snapshot reads have no such time and take now.
func eventTime(ev *envelope.Event, now time.Time) time.Time {
	switch {
	case ev.HasWallTime:
		return time.UnixMilli(ev.WallTime)
	case ev.ClusterTime.T != 0:
		return time.Unix(int64(ev.ClusterTime.T), 0)
	}
	return now
}

// flush commits the open transaction and waits until every record produced so far is acked
// and every checkpoint before it committed: a commit made after it cannot be overwritten by an
// older one in flight.
func (w *kafkaWriter) flush(ctx context.Context) error {
	if err := w.endTxn(ctx, true); err != nil {
		return err
	}
	if err := w.drain(ctx); err != nil {
		return err
	}
	reply := make(chan error, 1)
	select {
	case w.flushes <- reply:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain waits until every produced record is acked or failed, up to the shutdown timeout.
func (w *kafkaWriter) drain(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, w.shutdownTimeout)
	defer cancel()
	for w.acks.Pending() > 0 {
		select {
		case <-w.acks.Drained():
		case <-ctx.Done():
			return fmt.Errorf("wait for %d outstanding records: %w", w.acks.Pending(), ctx.Err())
		}
	}
	return w.acks.Err()
}

// commitLoop commits checkpoints as they become committable: positions reached with records at
// once (fewer replays after a crash), idle positions every heartbeat.interval.ms. When ctx is
// cancelled it commits what is committable and returns. It returns a failed commit's error at
// once, and run then stops production: positions never silently stop advancing.
func (w *kafkaWriter) commitLoop(ctx context.Context) (err error) {
	defer connector.Recover(&err)
	heartbeat := w.cfg.HeartbeatInterval
	var pending *checkpoint
	var lastCommit time.Time
	timer := time.NewTimer(heartbeat)
	defer timer.Stop()
	for {
		stopping := false
		var flush chan error
		select {
		case <-w.acks.Ready():
		case <-timer.C:
			timer.Reset(heartbeat)
		case flush = <-w.flushes:
		case <-ctx.Done():
			stopping = true
		}
		cp, ok, err := w.acks.Committable()
		if err != nil {
			if flush != nil {
				flush <- err
			}
			return nil // the task reports the produce error; nothing after it may be committed
		}
		if ok {
			if pending != nil && pending.key != cp.key {
				if err := w.commit(pending); err != nil {
					return err
				}
			}
			pending = &cp
		}
		if pending != nil && (stopping || flush != nil || !pending.idle || time.Since(lastCommit) >= heartbeat) {
			err := w.commit(pending)
			if flush != nil {
				flush <- err
				flush = nil
			}
			if err != nil {
				return err
			}
			pending, lastCommit = nil, time.Now()
		}
		if flush != nil {
			flush <- nil
		}
		if stopping {
			return nil
		}
	}
}

func (w *kafkaWriter) commit(cp *checkpoint) error {
	ctx, cancel := context.WithTimeout(context.Background(), w.shutdownTimeout)
	defer cancel()
	w.stalls.begin(waitOffset)
	defer w.stalls.end(waitOffset)
	cp.value.UpdatedMs = time.Now().UnixMilli()
	if err := w.offsets.Commit(ctx, cp.key, cp.value); err != nil {
		return fmt.Errorf("commit offset %s: %w", cp.key, err)
	}
	w.metrics.Committed(time.Now())
	w.log.Debug("committed", "key", cp.key.String(), "cluster_time", cp.value.ClusterTime)
	return nil
}
