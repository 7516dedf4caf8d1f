// Package tasks runs tasks: each streams one shard of one MongoDB collection (or, with
// capture.scope, of a database or the deployment: scope.go, routes.go), after copying its
// existing documents when asked, into Kafka topics as Avro records, and commits the position it
// has reached once everything before it is acknowledged.
//
// A task is a small state machine (this file) over three parts: the resume planner decides
// where to start from the offsets (planner.go, reshard.go); the sources, the snapshot copy
// (snapshotting.go) and the change stream (stream.go), read MongoDB through mongoReader
// (mongo.go); they feed the Kafka writer (writer.go, txn.go, acks.go, rejects.go) through
// recordWriter (source.go).
package tasks

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongorelay/mongorelay/tasks/changestream"
	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/connector"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/resumetoken"
	"github.com/mongorelay/mongorelay/tasks/taskid"
	"github.com/mongorelay/mongorelay/tasks/taskmetrics"
)

// OffsetStore keeps tasks' positions; *offsets.Store is one.
type OffsetStore interface {
	Get(offsets.Key) (*offsets.Value, error)
	Commit(ctx context.Context, key offsets.Key, v *offsets.Value) error
	// SnapshotRanges and ShardOffsets are the offsets of one collection, by kind, ordered by
	// count, then index.
	SnapshotRanges(connector, db, coll string) []offsets.Entry
	ShardOffsets(connector, db, coll string) []offsets.Entry
}

// Spec names a task's slice of work: one collection, one shard; or, for capture.scope=database,
// every collection of DB (Coll "*"), one shard; for deployment, DB "*" too.
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
func (s Spec) Name() string { return taskid.ShardName(s.DB, s.Coll, s.Shard, s.Shards) }

// Task streams one Spec. Create it with New and call Run once.
type Task struct {
	spec     Spec
	cfg      *config.Config
	log      *slog.Logger
	planner  *resumePlanner
	snapshot *snapshotSource
	stream   *streamSource
	writer   *kafkaWriter
	stalls   *stalls
}

// Deps are the shared services a task uses.
type Deps struct {
	Mongo *mongo.Client
	// SplitLargeEvents says the deployment runs $changeStreamSplitLargeEvent
	// (changestream.ServerSplitsLargeEvents): change streams then end with it, so that an event
	// over 16 MB arrives in fragments and is reassembled rather than failing the stream.
	SplitLargeEvents bool
	// Offsets is the offsets store; with exactly.once it must also build offset records for
	// the task's transactions and apply them once committed, as *offsets.Store does.
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
	// Degraded reports the task alive but stalled, a wait on Kafka, MongoDB or the registry
	// having lasted StallAfter, and "" once it is not (connector.Task.Degraded); nil reports
	// nothing.
	Degraded func(reason string)
	// MongoErrors holds the last error the MongoDB client met reaching the deployment, which
	// a degraded reason about MongoDB quotes; nil: none known.
	MongoErrors *LastError
	// Metrics counts what the task does, for the node's /metrics; nil counts for no one.
	Metrics *taskmetrics.Unit
	// CreateTopic creates a topic when missing and returns its max.message.bytes (0: Kafka's
	// default). A scope task (capture.scope=database or deployment) calls it before its first
	// record to each collection's topic; a collection's task has its topic made before it runs
	// (Spec.TopicMaxBytes).
	CreateTopic func(ctx context.Context, topic string) (int, error)
	// SnapshotRequests returns the connector's ad-hoc snapshot requests
	// (connector.Task.SnapshotRequests); nil: the task takes none.
	SnapshotRequests func() []connector.SnapshotRequest
	// SnapshotSignal records an execute-snapshot signal read from the connector's signal
	// collection (connector.Task.SnapshotSignal); nil: signals are not read.
	SnapshotSignal func(ctx context.Context, collections []string, signal string) error
}

// WriterHeader is the header naming the owner that wrote a record.
const WriterHeader = "mongorelay.writer"

// New prepares the task of spec.
func New(spec Spec, deps Deps) *Task {
	if spec.scoped() {
		return newTask(spec, deps, newScopeReader(deps.Mongo, spec, deps.SplitLargeEvents))
	}
	return newTask(spec, deps, collectionReader{
		coll:             deps.Mongo.Database(spec.DB).Collection(spec.Coll),
		splitLargeEvents: deps.SplitLargeEvents,
	})
}

// newTask prepares the task of spec reading MongoDB through m.
func newTask(spec Spec, deps Deps, m mongoReader) *Task {
	cfg := spec.Connector
	log := deps.Logger.With("connector", cfg.Name, "task", spec.Name())
	if deps.Metrics == nil {
		deps.Metrics = new(taskmetrics.Unit)
	}
	streamKey := offsets.ShardKey(cfg.Name, spec.DB, spec.Coll, spec.Shard, spec.Shards)
	st := &stalls{report: deps.Degraded, kafkaErrs: &LastError{}, mongoErrs: deps.MongoErrors}
	st.grace[waitStreamRead] = cfg.PollMaxWait // an idle stream's read is held that long
	w := newKafkaWriter(spec, deps, log, st)
	st.pending = w.acks.Progress
	p := &resumePlanner{spec: spec, cfg: cfg, offsets: deps.Offsets, mongo: m, log: log, streamKey: streamKey, stalls: st}
	var scope *scopeFilter
	if spec.scoped() {
		scope = newScopeFilter(cfg, deps.Offsets)
	}
	var inc *incrementalSnapshot
	if deps.SnapshotRequests != nil && !spec.scoped() {
		inc = &incrementalSnapshot{spec: spec, mongo: m, requests: deps.SnapshotRequests, offsets: deps.Offsets, key: streamKey,
			log: log, stalls: st, metrics: deps.Metrics}
	}
	var signal func(context.Context, []string, string) error
	if cfg.SignalCollection == spec.DB+"."+spec.Coll {
		signal = deps.SnapshotSignal
	}
	return &Task{
		spec:    spec,
		cfg:     cfg,
		log:     log,
		planner: p,
		writer:  w,
		stalls:  st,
		snapshot: &snapshotSource{spec: spec, cfg: cfg, mongo: m, w: w, offsets: deps.Offsets, log: log, stalls: st,
			metrics: deps.Metrics},
		stream: &streamSource{spec: spec, cfg: cfg, mongo: m, w: w, log: log, streamKey: streamKey,
			retire: p.retireOldKeys, stalls: st, metrics: deps.Metrics, scope: scope, inc: inc, signal: signal},
	}
}

// Topic is the Kafka topic the task writes.
func (t *Task) Topic() string { return t.cfg.Topic(t.spec.DB, t.spec.Coll) }

// ErrNoTransactional is returned by Run for a task built without Deps.Transactional.
var ErrNoTransactional = errors.New("tasks: Deps.Transactional is required (every task writes through its own transactional producer)")

// Run streams until ctx is done, then waits for outstanding records and commits the last
// position (a clean stop returns nil), or until the task fails: history lost, a document that
// cannot be encoded, Kafka refusing records, an offset that cannot be committed (production
// stops at once then: see kafkaWriter.run). A failed task has committed nothing past the last
// record Kafka acknowledged, so running it again resumes without loss; with exactly.once,
// nothing past its last committed transaction, so running it again repeats nothing either.
//
// While it runs, a wait on Kafka, MongoDB or the registry that lasts StallAfter is reported
// through Deps.Degraded, and cleared once over.
func (t *Task) Run(ctx context.Context) (err error) {
	watchCtx, stopWatching := context.WithCancel(ctx)
	watched := make(chan error, 1)
	go func() { watched <- t.stalls.watch(watchCtx) }()
	defer func() {
		stopWatching()
		err = errors.Join(err, <-watched)
	}()
	// First of all: fence whoever owned the task before, and the shards a change of the
	// shard count retired (reshard.go), then read the offsets.
	if err := t.writer.open(ctx); err != nil {
		return err
	}
	if err := t.fenceRetired(ctx); err != nil {
		_ = t.writer.closeTxn(ctx, false)
		return err
	}
	return t.writer.run(ctx, t.run)
}

// run is the task's state machine: plan, copy the snapshot when one is due, stream; after a
// history loss that the config allows to repair, copy the collection again and stream on.
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
		err = t.stream.run(ctx, *start, h)
		var lost *changestream.HistoryLostError
		if !errors.As(err, &lost) {
			return err
		}
		if t.cfg.OffsetLostPolicy != config.OffsetLostResnapshot && t.cfg.SnapshotMode != config.SnapshotWhenNeeded {
			return err
		}
		if t.spec.scoped() {
			return errors.Join(err, errScopeHistoryLost)
		}
		t.log.Warn("change stream history lost: copying the collection again as offset.lost.policy says", "err", err)
		if err := t.planner.restart(ctx, lost.Committed); err != nil {
			return err
		}
	}
}

// prepare carries out the planner's decision up to the stream's start: it copies this
// shard's part of a due snapshot. A nil start means nothing to stream (initial_only).
func (t *Task) prepare(ctx context.Context) (*changestream.Start, *handover, error) {
	rp, err := t.planner.resume()
	if err != nil {
		return nil, nil, err
	}
	p := rp.plan
	switch {
	case rp.action == resumeStream:
		return rp.start, rp.handover, nil
	case t.spec.scoped():
		return t.prepareScope(ctx, rp.handover)
	case rp.action == resumePlanSnapshot:
		p, err = t.planner.createPlan(ctx)
	case rp.action == resumeAwaitSnapshot:
		p, err = t.planner.awaitPlan(ctx, resumetoken.Position{})
	}
	if err != nil {
		return nil, nil, err
	}
	t.writer.metrics.SnapshotStarted(time.Now())
	err = t.snapshot.copyRanges(ctx, p)
	if err == nil {
		p, err = t.planner.awaitDone(ctx)
	}
	t.writer.metrics.SnapshotEnded(time.Now(), err == nil)
	if err != nil {
		return nil, nil, err
	}
	if t.cfg.SnapshotMode == config.SnapshotInitialOnly {
		return nil, rp.handover, nil
	}
	start, err := startFrom(p.start())
	return start, rp.handover, err
}

// prepareScope copies the scope's collections (copyScope), and returns where its stream
// starts; nil with snapshot.mode=initial_only.
func (t *Task) prepareScope(ctx context.Context, h *handover) (*changestream.Start, *handover, error) {
	t.writer.metrics.SnapshotStarted(time.Now())
	v, err := t.copyScope(ctx)
	t.writer.metrics.SnapshotEnded(time.Now(), err == nil)
	if err != nil || t.cfg.SnapshotMode == config.SnapshotInitialOnly {
		return nil, h, err
	}
	start, err := startFrom(v)
	return start, h, err
}
