// Package tasks runs tasks: each streams one shard of one MongoDB collection, after copying its
// existing documents when asked, into a Kafka topic as Avro records, and commits the position
// it has reached once everything before it is acknowledged.
package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/tasks/changestream"
	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/envelope"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/resumetoken"
	"github.com/mongorelay/mongorelay/tasks/shard"
)

// OffsetStore keeps tasks' positions; *offsets.Store is one.
type OffsetStore interface {
	Get(offsets.Key) (*offsets.Value, error)
	List(connector string) []offsets.Entry
	Commit(ctx context.Context, key offsets.Key, v *offsets.Value) error
}

// Spec names a task's slice of work: one collection, one shard.
type Spec struct {
	Connector *config.Config
	DB        string
	Coll      string
	Shard     int // 0-based
	Shards    int
	// TopicMaxBytes is the topic's max.message.bytes; 0 takes Kafka's default (1 MiB).
	TopicMaxBytes int
}

// defaultMaxMessageBytes is Kafka's default max.message.bytes, and franz-go's default batch
// size: a larger record could not be produced even to a topic that allows it.
const defaultMaxMessageBytes = 1 << 20

// Name is the task's name in offsets, logs and transactional ids: <db>.<coll>#<i>-of-<n>.
func (s Spec) Name() string {
	return fmt.Sprintf("%s.%s#%d-of-%d", s.DB, s.Coll, s.Shard, s.Shards)
}

// Task streams one Spec. Create it with New and call Run once.
type Task struct {
	spec    Spec
	cfg     *config.Config
	coll    *mongo.Collection
	offsets OffsetStore
	reg     SchemaRegistry
	log     *slog.Logger
	topic   string

	streamKey offsets.Key

	// headers go on every change record: the shard that wrote it (and the writer). Shared by
	// all records, never mutated. snapshotHeaders[j] is the same for shard j: a snapshot range
	// holds documents of every shard, and each record names its document's own.
	headers         []kgo.RecordHeader
	snapshotHeaders [][]kgo.RecordHeader

	// maxRecordBytes is the largest key+value+headers that fits the topic, overhead deducted.
	maxRecordBytes int
	counters       Counters

	enc  *recordEncoder
	acks *ackTracker[checkpoint]
	// flushes asks the commit loop to commit what is committable now and answer.
	flushes chan chan error
	// txn is the task's transactional producer and its open transaction, set by Run.
	txn           *txn
	transactional *Transactional
	evolutions    *Evolutions
	records       sync.Pool // *kgo.Record, recycled after their promise: no allocation per record
	// committing is when the offset commit in flight began (Unix nanoseconds), 0 when none.
	committing atomic.Int64

	// shutdownTimeout bounds the wait for outstanding acks and the last commit once Run's
	// context is done.
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

// Deps are the shared services a task uses.
type Deps struct {
	Mongo           *mongo.Client
	Offsets         OffsetStore
	Registry        SchemaRegistry
	Logger          *slog.Logger
	ShutdownTimeout time.Duration
	// Transactional is the task's own transactional producer: the single-writer fence of
	// DESIGN.md 6. Required: Run fails without it.
	Transactional *Transactional
	// Evolutions, shared by the tasks of a process, makes each schema evolution atomic among
	// them (nil: none).
	Evolutions *Evolutions
	// WriterID names this owner of the task (node and assignment epoch) in every record's
	// mongorelay.writer header; empty leaves the header out.
	WriterID string
}

// WriterHeader is the header naming the owner that wrote a record.
const WriterHeader = "mongorelay.writer"

// New prepares the task of spec.
func New(spec Spec, deps Deps) *Task {
	cfg := spec.Connector
	name := spec.Name()
	t := &Task{
		spec:            spec,
		cfg:             cfg,
		coll:            deps.Mongo.Database(spec.DB).Collection(spec.Coll),
		offsets:         deps.Offsets,
		reg:             deps.Registry,
		log:             deps.Logger.With("connector", cfg.Name, "task", name),
		topic:           cfg.Topic(spec.DB, spec.Coll),
		headers:         []kgo.RecordHeader{shard.Header(spec.Shard, spec.Shards)},
		transactional:   deps.Transactional,
		evolutions:      deps.Evolutions,
		streamKey:       offsets.ShardKey(cfg.Name, spec.DB, spec.Coll, spec.Shard, spec.Shards),
		shutdownTimeout: deps.ShutdownTimeout,
	}
	t.records.New = func() any { return new(kgo.Record) }
	t.maxRecordBytes = min(spec.TopicMaxBytes, defaultMaxMessageBytes)
	if t.maxRecordBytes <= 0 {
		t.maxRecordBytes = defaultMaxMessageBytes
	}
	t.maxRecordBytes -= recordOverhead
	t.acks = newAckTracker[checkpoint](func(r *kgo.Record) { t.records.Put(r) })
	// Records are produced with the task's context, so that a stop never waits on a full
	// buffer; those the stop fails are in the open transaction, which is then aborted.
	t.acks.stopDrops = true
	t.flushes = make(chan chan error)
	if deps.WriterID != "" {
		t.headers = append(t.headers, kgo.RecordHeader{Key: WriterHeader, Value: []byte(deps.WriterID)})
	}
	for j := 0; j < spec.Shards; j++ {
		hs := append([]kgo.RecordHeader{shard.Header(j, spec.Shards)}, t.headers[1:]...)
		t.snapshotHeaders = append(t.snapshotHeaders, hs)
	}
	if t.shutdownTimeout <= 0 {
		t.shutdownTimeout = 30 * time.Second
	}
	return t
}

// Topic is the Kafka topic the task writes.
func (t *Task) Topic() string { return t.topic }

// Counters are the task's counts of records not delivered normally.
func (t *Task) Counters() *Counters { return &t.counters }

// ErrNoTransactional is returned by Run for a task built without Deps.Transactional.
var ErrNoTransactional = errors.New("tasks: Deps.Transactional is required (every task writes through its own transactional producer)")

// Run streams until ctx is done, then waits for outstanding records and commits the last
// position (a clean stop returns nil), or until the task fails: history lost, a document that
// cannot be encoded, Kafka refusing records, an offset that cannot be committed. A failed task
// has committed nothing past the last record Kafka acknowledged, so running it again resumes
// without loss.
//
// The task never produces without committing: production runs under a context that the
// commit loop cancels when it fails, so at most the records in flight at that moment (one
// transaction) follow the last commit, and Run returns the commit's error.
func (t *Task) Run(ctx context.Context) error {
	if t.transactional == nil {
		return ErrNoTransactional
	}
	// First of all: fence whoever owned the task before, then read the offsets.
	if err := t.openTxn(ctx, t.transactional); err != nil {
		return err
	}
	enc, err := newRecordEncoder(ctx, t.reg, t.topic, t.cfg)
	if err != nil {
		_ = t.closeTxn(ctx, false)
		return err
	}
	enc.evolutions = t.evolutions
	t.enc = enc

	produceCtx, stopProducing := context.WithCancel(ctx)
	defer stopProducing()
	commitCtx, stopCommitter := context.WithCancel(context.WithoutCancel(ctx))
	committed := make(chan error, 1)
	go func() {
		err := t.commitLoop(commitCtx)
		if err != nil {
			stopProducing()
		}
		committed <- err
	}()

	runErr := t.run(produceCtx)
	if errors.Is(runErr, context.Canceled) && produceCtx.Err() != nil {
		runErr = nil // asked to stop, or stopped by the commit loop, whose error follows
	}
	// The open transaction is aborted, even on a clean stop: it may end with part of a batch
	// whose checkpoint was never sealed, and committing those records would deliver them again
	// when the next run reads the batch from its start. What the transaction held is read
	// again instead; every checkpoint already committed stays true.
	txnErr := t.endTxn(context.WithoutCancel(ctx), false)
	drainErr := t.drain(context.WithoutCancel(ctx))
	stopCommitter()
	commitErr := <-committed
	return errors.Join(runErr, txnErr, drainErr, commitErr, t.closeTxn(context.WithoutCancel(ctx), false))
}

func (t *Task) run(ctx context.Context) error {
	for {
		start, h, err := t.prepare(ctx)
		if err != nil {
			return err
		}
		if start == nil {
			t.log.Info("initial_only snapshot complete: the task stays idle")
			<-ctx.Done()
			return ctx.Err()
		}
		err = t.stream(ctx, *start, h)
		var lost *changestream.HistoryLostError
		if !errors.As(err, &lost) {
			return err
		}
		if t.cfg.OffsetLostPolicy != config.OffsetLostResnapshot && t.cfg.SnapshotMode != config.SnapshotWhenNeeded {
			return err
		}
		t.log.Warn("change stream history lost: copying the collection again as offset.lost.policy says", "err", err)
		if err := t.resnapshot(ctx, lost.Committed); err != nil {
			return err
		}
	}
}

// prepare decides where the stream starts: after the collection's snapshot when one is due
// (copying this shard's part of it), at the shard's committed position, or, right after a
// change of the shard count, at the oldest position of the shards before (with the handover
// that drops what they delivered). A nil start means nothing to stream (initial_only).
func (t *Task) prepare(ctx context.Context) (*changestream.Start, *handover, error) {
	stream, err := t.getOffset(t.streamKey)
	if err != nil {
		return nil, nil, err
	}
	h, err := t.loadHandover()
	if err != nil {
		return nil, nil, err
	}
	p := t.loadPlan()
	var start *changestream.Start
	switch {
	case p != nil && !p.done():
		start, err = t.snapshotThenStream(ctx, p)
	case stream != nil:
		start, err = startFrom(stream)
	case h != nil:
		t.log.Info("the shard count changed: starting at the oldest position of the shards before",
			"old_offsets", len(h.keys), "from", h.oldest.String(), "until", h.newest.String())
		start, err = startFrom(h.oldestValue)
	case p != nil:
		start, err = startFrom(p.start()) // a shard that had not streamed yet when the copy ended
	case t.cfg.SnapshotMode == config.SnapshotNever:
		t.log.Info("no committed offset and snapshot.mode=never: streaming from now")
		start = &changestream.Start{}
	case t.spec.Shard == 0:
		if p, err = t.createPlan(ctx); err == nil {
			start, err = t.snapshotThenStream(ctx, p)
		}
	default:
		if p, err = t.awaitPlan(ctx, resumetoken.Position{}); err == nil {
			start, err = t.snapshotThenStream(ctx, p)
		}
	}
	return start, h, err
}

// resnapshot starts the collection's snapshot again after the history from lost on was lost:
// shard 0 plans it; the other shards wait for that plan. Every shard drops its position.
func (t *Task) resnapshot(ctx context.Context, lost resumetoken.Position) error {
	if err := t.offsets.Commit(ctx, t.streamKey, nil); err != nil {
		return fmt.Errorf("drop offset %s to copy the collection again: %w", t.streamKey, err)
	}
	var err error
	if t.spec.Shard == 0 {
		_, err = t.createPlan(ctx)
	} else {
		_, err = t.awaitPlan(ctx, lost)
	}
	return err
}

func (t *Task) getOffset(key offsets.Key) (*offsets.Value, error) {
	v, err := t.offsets.Get(key)
	if errors.Is(err, offsets.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read offset %s: %w", key, err)
	}
	return v, nil
}

func startFrom(v *offsets.Value) (*changestream.Start, error) {
	if v.ResumeToken == nil {
		return &changestream.Start{}, nil
	}
	pos, err := v.Position()
	if err != nil {
		return nil, err
	}
	return &changestream.Start{ResumeToken: tokenDoc(v.ResumeToken.Data), Position: pos}, nil
}

func (t *Task) streamOptions() changestream.Options {
	o := changestream.Options{
		Pipeline:  t.cfg.Pipeline,
		BatchSize: int32(t.cfg.MaxBatchSize),
		MaxAwait:  t.cfg.PollMaxWait,
	}
	switch t.cfg.CaptureMode {
	case config.CaptureUpdateFull:
		o.FullDocument = options.UpdateLookup
	case config.CaptureWithPreImage:
		o.FullDocumentBeforeChange = options.WhenAvailable
	case config.CaptureUpdateFullWithPreImage:
		o.FullDocument = options.UpdateLookup
		o.FullDocumentBeforeChange = options.WhenAvailable
	}
	return o
}

// openStream opens the change stream with the shard filter of shard.filter: in the pipeline
// (server), in this process (client, returned as keep), or auto: the server's when it can run
// the stage ($toHashedIndexKey came with MongoDB 5.0), else this process's.
func (t *Task) openStream(ctx context.Context, start changestream.Start) (s *changestream.Stream, keep func(bson.Raw) (bool, error), err error) {
	opts := t.streamOptions()
	if t.spec.Shards == 1 {
		s, err = changestream.Open(ctx, t.coll, opts, start)
		return s, nil, err
	}
	mode := t.cfg.ShardFilter
	if mode != config.ShardFilterClient {
		server := opts
		server.Pipeline = append(append([]bson.D(nil), opts.Pipeline...), shard.ServerStage(t.spec.Shard, t.spec.Shards))
		s, err = changestream.Open(ctx, t.coll, server, start)
		if err == nil || mode == config.ShardFilterServer {
			return s, nil, err
		}
		serverErr := err
		// If the stream opens without the stage, the stage is what the server cannot run
		// (an unknown $toHashedIndexKey, or on old servers another operator of it).
		if s, err = changestream.Open(ctx, t.coll, opts, start); err != nil {
			return nil, nil, err
		}
		t.log.Info("the server cannot filter shards: filtering in this process (shard.filter=auto)",
			"server_error", serverErr.Error(), "unsupported_operator", shard.IsUnsupported(serverErr))
		return s, shard.ClientFilter(t.spec.Shard, t.spec.Shards), nil
	}
	s, err = changestream.Open(ctx, t.coll, opts, start)
	return s, shard.ClientFilter(t.spec.Shard, t.spec.Shards), err
}

func (t *Task) stream(ctx context.Context, start changestream.Start, h *handover) error {
	s, keep, err := t.openStream(ctx, start)
	if err != nil {
		return t.classify(err, start)
	}
	defer func() { _ = s.Close(context.WithoutCancel(ctx)) }()
	t.log.Info("streaming", "topic", t.topic, "resume", start.Position.String())
	last := start.Position
	past := h == nil // past every earlier shard generation's position
	var lastRetire time.Time
	for {
		if err := t.acks.Err(); err != nil {
			return err
		}
		g := t.acks.Open()
		now := time.Now()
		n := 0
		tok, err := s.NextBatch(ctx, func(raw bson.Raw) error {
			if keep != nil {
				if mine, err := keep(raw); err != nil || !mine {
					return err
				}
			}
			if !past {
				delivered, nowPast, err := h.delivered(raw)
				if err != nil || delivered {
					return err
				}
				past = nowPast
			}
			ev, err := envelope.Parse(raw)
			if err != nil {
				return t.reject(ctx, g, raw, &ev, fmt.Errorf("parse change event: %w", err))
			}
			if ev.Kind() != envelope.KindRecord {
				t.log.Info("change event without a record", "operationType", string(ev.OperationType))
				return nil
			}
			n++
			return t.emit(ctx, g, raw, &ev, now)
		})
		if err != nil {
			g.SealEmpty()
			return t.classify(err, changestream.Start{Position: last})
		}
		if tok == nil {
			if err := t.seal(ctx, g, checkpoint{}, false, n == 0 || s.CaughtUp()); err != nil {
				return err
			}
			continue
		}
		v, err := valueAt(tok)
		if err != nil {
			g.SealEmpty()
			return err
		}
		if pos, err := v.Position(); err == nil {
			last = pos
		}
		if err := t.seal(ctx, g, checkpoint{key: t.streamKey, value: v, idle: n == 0}, true, n == 0 || s.CaughtUp()); err != nil {
			return err
		}
		if h != nil && t.spec.Shard == 0 && time.Since(lastRetire) >= retirePoll {
			lastRetire = time.Now()
			retired, err := t.retireOldKeys(ctx, h)
			if err != nil {
				return err
			}
			if retired {
				h = nil
			}
		}
	}
}

// classify turns history loss into the error that says what was lost and how to recover.
func (t *Task) classify(err error, at changestream.Start) error {
	if errors.Is(err, changestream.ErrHistoryLost) {
		return &changestream.HistoryLostError{
			Connector: t.cfg.Name,
			Namespace: t.spec.DB + "." + t.spec.Coll,
			Committed: at.Position,
			Err:       err,
		}
	}
	return err
}

// emit encodes ev (read from raw) and produces it, and its tombstone after a delete, as part
// of group g. A document that cannot be converted, or whose record is too large for the topic,
// goes where errors.tolerance and oversize.handling say.
func (t *Task) emit(ctx context.Context, g *ackGroup[checkpoint], raw bson.Raw, ev *envelope.Event, now time.Time) error {
	r := t.record()
	var err error
	if r.Key, err = t.enc.appendKey(r.Key[:0], ev); err != nil {
		t.records.Put(r)
		return t.reject(ctx, g, raw, ev, err)
	}
	if r.Value, err = t.enc.appendValue(ctx, r.Value[:0], ev, now.UnixMilli()); err != nil {
		t.records.Put(r)
		if isConversion(err) {
			return t.reject(ctx, g, raw, ev, err)
		}
		return err
	}
	if size := len(r.Key) + len(r.Value) + headersLen(t.headers); size > t.maxRecordBytes {
		t.records.Put(r)
		return t.oversize(ctx, g, ev, size+recordOverhead)
	}
	r.Timestamp = eventTime(ev, now)
	r.Headers = t.headers
	if ev.Op == envelope.OpRead && t.spec.Shards > 1 {
		j, err := shard.ForID(ev.ID(), t.spec.Shards)
		if err != nil {
			t.records.Put(r)
			return t.reject(ctx, g, raw, ev, err)
		}
		r.Headers = t.snapshotHeaders[j]
	}
	// The tombstone is built before r is produced: once produced, r may be acked, recycled
	// and handed out again by t.record().
	var tomb *kgo.Record
	if ev.Op == envelope.OpDelete && t.cfg.TombstonesOnDelete {
		tomb = t.record()
		tomb.Key = append(tomb.Key[:0], r.Key...)
		tomb.Value = nil
		tomb.Timestamp = r.Timestamp
		tomb.Headers = t.headers
	}
	if err := t.beforeProduce(ctx); err != nil {
		t.records.Put(r)
		if tomb != nil {
			t.records.Put(tomb)
		}
		return err
	}
	g.Add()
	t.txn.cl.Produce(ctx, r, g.Promise())
	if tomb != nil {
		g.Add()
		t.txn.cl.Produce(ctx, tomb, g.Promise())
	}
	return nil
}

func (t *Task) recordError(ev *envelope.Event, err error) error {
	id := ev.ID()
	return fmt.Errorf("document %s in %s.%s: %w (errors.tolerance=none stops the task; fix the document or set errors.tolerance=all with a dead letter topic)",
		id.String(), t.spec.DB, t.spec.Coll, err)
}

func headersLen(hs []kgo.RecordHeader) int {
	n := 0
	for _, h := range hs {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// record returns a record to fill, reusing the buffers of an acked one.
func (t *Task) record() *kgo.Record {
	r := t.records.Get().(*kgo.Record)
	*r = kgo.Record{Topic: t.topic, Key: r.Key[:0], Value: r.Value[:0]}
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

// flushCommits waits until every record produced so far is acked and every checkpoint before
// it committed: a commit made after it cannot be overwritten by an older one in flight.
func (t *Task) flushCommits(ctx context.Context) error {
	if err := t.drain(ctx); err != nil {
		return err
	}
	reply := make(chan error, 1)
	select {
	case t.flushes <- reply:
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
func (t *Task) drain(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, t.shutdownTimeout)
	defer cancel()
	for t.acks.Pending() > 0 {
		select {
		case <-t.acks.Drained():
		case <-ctx.Done():
			return fmt.Errorf("wait for %d outstanding records: %w", t.acks.Pending(), ctx.Err())
		}
	}
	return t.acks.Err()
}

// commitLoop commits checkpoints as they become committable: positions reached with records at
// once (fewer replays after a crash), idle positions every heartbeat.interval.ms. When ctx is
// cancelled it commits what is committable and returns. It returns a failed commit's error at
// once, and Run then stops production: positions never silently stop advancing.
func (t *Task) commitLoop(ctx context.Context) error {
	heartbeat := t.cfg.HeartbeatInterval
	var pending *checkpoint
	var lastCommit time.Time
	timer := time.NewTimer(heartbeat)
	defer timer.Stop()
	for {
		stopping := false
		var flush chan error
		select {
		case <-t.acks.Ready():
		case <-timer.C:
			timer.Reset(heartbeat)
		case flush = <-t.flushes:
		case <-ctx.Done():
			stopping = true
		}
		cp, ok, err := t.acks.Committable()
		if err != nil {
			if flush != nil {
				flush <- err
			}
			return nil // the task reports the produce error; nothing after it may be committed
		}
		if ok {
			if pending != nil && pending.key != cp.key {
				if err := t.commit(pending); err != nil {
					return err
				}
			}
			pending = &cp
		}
		if pending != nil && (stopping || flush != nil || !pending.idle || time.Since(lastCommit) >= heartbeat) {
			err := t.commit(pending)
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

func (t *Task) commit(cp *checkpoint) error {
	ctx, cancel := context.WithTimeout(context.Background(), t.shutdownTimeout)
	defer cancel()
	t.committing.Store(time.Now().UnixNano())
	defer t.committing.Store(0)
	cp.value.UpdatedMs = time.Now().UnixMilli()
	if err := t.offsets.Commit(ctx, cp.key, cp.value); err != nil {
		return fmt.Errorf("commit offset %s: %w", cp.key, err)
	}
	t.log.Debug("committed", "key", cp.key.String(), "cluster_time", cp.value.ClusterTime)
	return nil
}

// valueAt is the offset value of a resume token document ({_data: ...}).
func valueAt(tok bson.Raw) (*offsets.Value, error) {
	data, ok := tok.Lookup("_data").StringValueOK()
	if !ok {
		return nil, fmt.Errorf("resume token %s has no _data string", tok)
	}
	return offsets.ResumeAt(data)
}

func tokenDoc(data string) bson.Raw {
	doc, _ := bson.Marshal(bson.D{{Key: "_data", Value: data}})
	return doc
}
