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
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/tasks/changestream"
	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/envelope"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/shard"
	"github.com/mongorelay/mongorelay/tasks/snapshot"
)

// Producer sends records to Kafka; *kgo.Client is one. The promise is called once per record,
// serially, after which the record is no longer used by the producer.
type Producer interface {
	Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error))
}

// OffsetStore keeps tasks' positions; *offsets.Store is one.
type OffsetStore interface {
	Get(offsets.Key) (*offsets.Value, error)
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
	spec     Spec
	cfg      *config.Config
	coll     *mongo.Collection
	producer Producer
	offsets  OffsetStore
	reg      SchemaRegistry
	log      *slog.Logger
	topic    string

	streamKey   offsets.Key
	snapshotKey offsets.Key

	// headers go on every record: the shard that wrote it. Shared by all records, never mutated.
	headers []kgo.RecordHeader

	// maxRecordBytes is the largest key+value+headers that fits the topic, overhead deducted.
	maxRecordBytes int
	counters       Counters

	enc     *recordEncoder
	acks    *ackTracker[checkpoint]
	records sync.Pool // *kgo.Record, recycled after their promise: no allocation per record

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
	Producer        Producer
	Offsets         OffsetStore
	Registry        SchemaRegistry
	Logger          *slog.Logger
	ShutdownTimeout time.Duration
}

// New prepares the task of spec.
func New(spec Spec, deps Deps) *Task {
	cfg := spec.Connector
	name := spec.Name()
	t := &Task{
		spec:            spec,
		cfg:             cfg,
		coll:            deps.Mongo.Database(spec.DB).Collection(spec.Coll),
		producer:        deps.Producer,
		offsets:         deps.Offsets,
		reg:             deps.Registry,
		log:             deps.Logger.With("connector", cfg.Name, "task", name),
		topic:           cfg.Topic(spec.DB, spec.Coll),
		headers:         []kgo.RecordHeader{shard.Header(spec.Shard, spec.Shards)},
		streamKey:       offsets.ShardKey(cfg.Name, spec.DB, spec.Coll, spec.Shard, spec.Shards),
		snapshotKey:     offsets.SnapshotKey(cfg.Name, spec.DB, spec.Coll, 0, 1),
		shutdownTimeout: deps.ShutdownTimeout,
	}
	t.records.New = func() any { return new(kgo.Record) }
	t.maxRecordBytes = min(spec.TopicMaxBytes, defaultMaxMessageBytes)
	if t.maxRecordBytes <= 0 {
		t.maxRecordBytes = defaultMaxMessageBytes
	}
	t.maxRecordBytes -= recordOverhead
	t.acks = newAckTracker[checkpoint](func(r *kgo.Record) { t.records.Put(r) })
	if t.shutdownTimeout <= 0 {
		t.shutdownTimeout = 30 * time.Second
	}
	return t
}

// Topic is the Kafka topic the task writes.
func (t *Task) Topic() string { return t.topic }

// Counters are the task's counts of records not delivered normally.
func (t *Task) Counters() *Counters { return &t.counters }

// Run streams until ctx is done, then waits for outstanding records and commits the last
// position (a clean stop returns nil), or until the task fails: history lost, a document that
// cannot be encoded, Kafka refusing records. A failed task has committed nothing past the last
// record Kafka acknowledged, so running it again resumes without loss.
func (t *Task) Run(ctx context.Context) error {
	enc, err := newRecordEncoder(ctx, t.reg, t.topic, t.cfg)
	if err != nil {
		return err
	}
	t.enc = enc

	commitCtx, stopCommitter := context.WithCancel(context.WithoutCancel(ctx))
	committed := make(chan error, 1)
	go func() { committed <- t.commitLoop(commitCtx) }()

	runErr := t.run(ctx)
	if errors.Is(runErr, context.Canceled) && ctx.Err() != nil {
		runErr = nil // asked to stop
	}
	// Whatever happened, what was produced should be acked and committed before returning:
	// it shortens the replay of the next run.
	drainErr := t.drain(context.WithoutCancel(ctx))
	stopCommitter()
	commitErr := <-committed
	return errors.Join(runErr, drainErr, commitErr)
}

func (t *Task) run(ctx context.Context) error {
	for {
		start, err := t.prepare(ctx)
		if err != nil {
			return err
		}
		if start == nil {
			t.log.Info("initial_only snapshot complete: the task stays idle")
			<-ctx.Done()
			return ctx.Err()
		}
		err = t.stream(ctx, *start)
		if !errors.Is(err, changestream.ErrHistoryLost) {
			return err
		}
		if t.cfg.OffsetLostPolicy != config.OffsetLostResnapshot && t.cfg.SnapshotMode != config.SnapshotWhenNeeded {
			return err
		}
		t.log.Warn("change stream history lost: copying the collection again as offset.lost.policy says", "err", err)
		if err := t.restartSnapshot(ctx); err != nil {
			return err
		}
	}
}

// prepare runs or resumes the snapshot when one is due and returns where the stream starts;
// nil means the task has nothing to stream (initial_only).
func (t *Task) prepare(ctx context.Context) (*changestream.Start, error) {
	stream, err := t.getOffset(t.streamKey)
	if err != nil {
		return nil, err
	}
	snap, err := t.getOffset(t.snapshotKey)
	if err != nil {
		return nil, err
	}
	switch {
	case stream == nil && t.spec.Shard > 0 && t.cfg.SnapshotMode != config.SnapshotNever:
		// One snapshot per collection, copied by shard 0: the others stream from its start
		// point once it is done, so none of them misses a change made during the copy.
		return t.awaitSnapshot(ctx)
	case snap != nil && snap.Snapshot != nil && !snap.Snapshot.Done && t.spec.Shard == 0:
		t.log.Info("resuming the snapshot", "after_id", snap.Snapshot.LastID, "copied", snap.Snapshot.Copied)
		if err := t.copy(ctx, snap); err != nil {
			return nil, err
		}
		return t.afterSnapshot(snap)
	case stream != nil:
		return startFrom(stream)
	case t.cfg.SnapshotMode == config.SnapshotNever:
		t.log.Info("no committed offset and snapshot.mode=never: streaming from now")
		return &changestream.Start{}, nil
	default:
		return t.newSnapshot(ctx)
	}
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

// snapshotPoll is how often a shard waiting for its collection's snapshot checks on it.
const snapshotPoll = 500 * time.Millisecond

// awaitSnapshot waits until the collection's snapshot is done and returns its start point.
func (t *Task) awaitSnapshot(ctx context.Context) (*changestream.Start, error) {
	t.log.Info("waiting for the collection's snapshot (copied by shard 0)")
	for {
		snap, err := t.getOffset(t.snapshotKey)
		if err != nil {
			return nil, err
		}
		if snap != nil && snap.Snapshot != nil && snap.Snapshot.Done {
			if t.cfg.SnapshotMode == config.SnapshotInitialOnly {
				return nil, nil
			}
			stream := *snap
			stream.Snapshot = nil
			return startFrom(&stream)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(snapshotPoll):
		}
	}
}

// newSnapshot records where the change stream stands before copying (so no change made during
// the copy is missed), commits that, and copies.
func (t *Task) newSnapshot(ctx context.Context) (*changestream.Start, error) {
	if err := t.restartSnapshot(ctx); err != nil {
		return nil, err
	}
	snap, err := t.getOffset(t.snapshotKey)
	if err != nil {
		return nil, err
	}
	if err := t.copy(ctx, snap); err != nil {
		return nil, err
	}
	return t.afterSnapshot(snap)
}

// restartSnapshot commits a fresh snapshot offset whose start point is the stream's position
// now. On shards other than 0 it drops the shard's own position instead, so that it waits for
// the snapshot that shard 0 starts (shard 0 loses the same history).
func (t *Task) restartSnapshot(ctx context.Context) error {
	if t.spec.Shard > 0 {
		if err := t.offsets.Commit(ctx, t.streamKey, nil); err != nil {
			return fmt.Errorf("drop offset %s to resnapshot: %w", t.streamKey, err)
		}
		return nil
	}
	s, err := changestream.Open(ctx, t.coll, t.streamOptions(), changestream.Start{})
	if err != nil {
		return err
	}
	tok := s.ResumeToken()
	_ = s.Close(ctx)
	if tok == nil {
		return fmt.Errorf("record the change stream start point of %s.%s: the server returned no postBatchResumeToken", t.spec.DB, t.spec.Coll)
	}
	v, err := valueAt(tok)
	if err != nil {
		return err
	}
	v.Snapshot = &offsets.Snapshot{}
	t.log.Info("starting a snapshot", "start_t", v.ClusterTime.T, "start_i", v.ClusterTime.I)
	if err := t.offsets.Commit(ctx, t.snapshotKey, v); err != nil {
		return fmt.Errorf("commit snapshot start of %s: %w", t.snapshotKey, err)
	}
	return nil
}

// afterSnapshot commits the stream's start point, then marks the snapshot done, in that order:
// a crash in between resumes the (finished) copy, never skips the changes made during it.
func (t *Task) afterSnapshot(snap *offsets.Value) (*changestream.Start, error) {
	ctx := context.Background()
	if err := t.drain(ctx); err != nil {
		return nil, err
	}
	stream := *snap
	stream.Snapshot = nil
	if err := t.offsets.Commit(ctx, t.streamKey, &stream); err != nil {
		return nil, fmt.Errorf("commit stream start %s: %w", t.streamKey, err)
	}
	done := *snap
	s := *snap.Snapshot
	s.Done = true
	done.Snapshot = &s
	if err := t.offsets.Commit(ctx, t.snapshotKey, &done); err != nil {
		return nil, fmt.Errorf("commit snapshot done %s: %w", t.snapshotKey, err)
	}
	t.log.Info("snapshot complete", "documents", s.Copied)
	if t.cfg.SnapshotMode == config.SnapshotInitialOnly {
		return nil, nil
	}
	return startFrom(&stream)
}

// copy copies the collection's documents after snap's last copied _id as op "r" records,
// committing progress page by page; snap is updated to the final progress.
func (t *Task) copy(ctx context.Context, snap *offsets.Value) error {
	var after bson.RawValue
	if snap.Snapshot.LastID != "" {
		var err error
		if after, err = offsets.DecodeID(snap.Snapshot.LastID); err != nil {
			return fmt.Errorf("snapshot offset %s: %w", t.snapshotKey, err)
		}
	}
	r, err := snapshot.NewReader(ctx, t.coll, after, t.cfg.MaxBatchSize)
	if err != nil {
		return err
	}
	defer func() { _ = r.Close(context.WithoutCancel(ctx)) }()
	db, coll := []byte(t.spec.DB), []byte(t.spec.Coll)
	progress := *snap.Snapshot
	for {
		g := t.acks.Open()
		now := time.Now()
		last, n, err := r.NextPage(ctx, func(doc bson.Raw) error {
			ev, err := envelope.Snapshot(doc, db, coll, envelope.SnapshotTrue)
			if err != nil {
				return t.reject(ctx, g, doc, &ev, err)
			}
			return t.emit(ctx, g, doc, &ev, now)
		})
		if n == 0 || err != nil {
			g.SealEmpty() // nothing new to commit; keeps the groups in order
			snap.Snapshot = &progress
			return err
		}
		progress.Copied += int64(n)
		if progress.LastID, err = offsets.EncodeID(last); err != nil {
			return err
		}
		v := *snap
		p := progress
		v.Snapshot = &p
		g.Seal(checkpoint{key: t.snapshotKey, value: &v})
	}
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

func (t *Task) stream(ctx context.Context, start changestream.Start) error {
	s, keep, err := t.openStream(ctx, start)
	if err != nil {
		return t.classify(err, start)
	}
	defer func() { _ = s.Close(context.WithoutCancel(ctx)) }()
	t.log.Info("streaming", "topic", t.topic, "resume", start.Position.String())
	last := start.Position
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
			g.SealEmpty()
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
		g.Seal(checkpoint{key: t.streamKey, value: v, idle: n == 0})
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
	g.Add()
	t.producer.Produce(ctx, r, g.Promise())
	if tomb != nil {
		g.Add()
		t.producer.Produce(ctx, tomb, g.Promise())
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
// cancelled it commits what is committable and returns.
func (t *Task) commitLoop(ctx context.Context) error {
	heartbeat := t.cfg.HeartbeatInterval
	var pending *checkpoint
	var lastCommit time.Time
	timer := time.NewTimer(heartbeat)
	defer timer.Stop()
	for {
		stopping := false
		select {
		case <-t.acks.Ready():
		case <-timer.C:
			timer.Reset(heartbeat)
		case <-ctx.Done():
			stopping = true
		}
		cp, ok, err := t.acks.Committable()
		if err != nil {
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
		if pending != nil && (stopping || !pending.idle || time.Since(lastCommit) >= heartbeat) {
			if err := t.commit(pending); err != nil {
				return err
			}
			pending, lastCommit = nil, time.Now()
		}
		if stopping {
			return nil
		}
	}
}

func (t *Task) commit(cp *checkpoint) error {
	ctx, cancel := context.WithTimeout(context.Background(), t.shutdownTimeout)
	defer cancel()
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
