package mongosink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/mongorelay/mongorelay/tasks/connector"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// partition is one topic partition a task runs: where it writes, and the transactional
// producer whose id (stable per partition, never per node or task grouping) fences every
// earlier owner of the partition.
type partition struct {
	unit     taskid.Spec
	key      offsets.Key
	coll     *mongo.Collection
	producer *kgo.Client
}

// run is one run of a task.
type run struct {
	k     *Kind
	t     connector.Task
	cfg   *Config
	conv  *converter
	dlq   *deadLetters
	log   *slog.Logger
	parts map[string]map[int32]*partition
}

// Run runs one task until ctx ends or it fails.
//
// A partition's records are written in offset order, a batch at a time: the batch's offset
// record (the next offset to read) and its dead letters are produced, and acknowledged, in a
// transaction of the partition's producer, which the brokers refuse once a newer owner has
// initialised the producer's transactional id; then the batch is one bulk write with majority
// write concern; then the transaction commits, making the offset visible to read_committed
// readers. So an offset is committed only once the writes before it are acknowledged, and a
// run whose partition has moved stops at its next batch instead of overwriting the new owner's
// writes. (A run fenced between its offset's acknowledgement and its bulk write's arrival at
// the server still writes that one batch: the single-writer lease bounds how long such a run
// can go on, DESIGN.md 3.) Every write is keyed by _id, so the batch a new owner writes again
// converges to the same documents.
func (k *Kind) Run(ctx context.Context, t connector.Task) error {
	cfg, err := Parse(t.Connector, t.Config)
	if err != nil {
		return connector.Permanent(fmt.Errorf("connector %s: %w", t.Connector, err))
	}
	if k.env.Offsets == nil {
		return connector.Permanent(errors.New("the sink needs the process's offsets store"))
	}
	client, err := mongo.Connect(options.Client().ApplyURI(cfg.ConnectionString).SetWriteConcern(writeconcern.Majority()))
	if err != nil {
		return connector.Permanent(fmt.Errorf("connector %s: config %q: %w", t.Connector, "mongodb.connection.string", err))
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = client.Disconnect(dctx)
	}()
	avro, err := k.avroFor(cfg)
	if err != nil {
		return connector.Permanent(err)
	}
	r := &run{k: k, t: t, cfg: cfg, log: k.env.Logger.With("connector", t.Connector, "task", t.Spec.Name()),
		conv:  &converter{cfg: cfg, dec: &decoder{format: cfg.ValueFormat, avro: avro}},
		dlq:   &deadLetters{cfg: cfg, connector: t.Connector, task: t.Spec.Name()},
		parts: map[string]map[int32]*partition{}}
	defer r.close()
	err = r.run(ctx, client.Database(cfg.Database))
	switch {
	case ctx.Err() != nil:
		return nil
	case errors.Is(err, kerr.ProducerFenced), errors.Is(err, kerr.InvalidProducerEpoch):
		return connector.Fenced(err)
	}
	return err
}

// run fences the partitions' earlier owners, then reads and writes until ctx ends or a write
// fails.
func (r *run) run(ctx context.Context, db *mongo.Database) error {
	if err := r.dlq.create(ctx, r.k.env.Kafka); err != nil {
		return err
	}
	for _, u := range r.t.Spec.Units() {
		p, err := r.open(ctx, db, u)
		if err != nil {
			return err
		}
		if r.parts[u.Topic] == nil {
			r.parts[u.Topic] = map[int32]*partition{}
		}
		r.parts[u.Topic][u.Partition] = p
	}
	if err := r.k.env.Offsets.Refresh(ctx); err != nil {
		return fmt.Errorf("read the offsets other nodes committed: %w", err)
	}
	consumer, err := kgo.NewClient(append(slices.Clone(r.k.env.KafkaOpts),
		kgo.ConsumePartitions(r.startOffsets()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return fmt.Errorf("consumer of %s: %w", r.t.Spec.Name(), err)
	}
	defer consumer.Close()
	r.log.Info("sink task started", "partitions", len(r.t.Spec.Units()))
	for {
		fetches := consumer.PollRecords(ctx, r.batchSize()*len(r.t.Spec.Units()))
		if ctx.Err() != nil {
			return nil
		}
		for _, fe := range fetches.Errors() {
			r.t.ReportDegraded(fmt.Sprintf("reading %s[%d]: %v", fe.Topic, fe.Partition, fe.Err))
		}
		var werr error
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			p := r.parts[fp.Topic][fp.Partition]
			for recs := fp.Records; len(recs) > 0 && werr == nil; {
				n := min(len(recs), r.batchSize())
				werr = r.write(ctx, p, recs[:n])
				recs = recs[n:]
			}
		})
		if werr != nil {
			return werr
		}
		if len(fetches.Errors()) == 0 {
			r.t.ReportDegraded("")
		}
	}
}

// open creates the producer of partition u and initialises its transactional id, which fences
// every earlier owner of the partition and aborts the transaction it left open, so that the
// offsets read next are all it committed.
func (r *run) open(ctx context.Context, db *mongo.Database, u taskid.Spec) (*partition, error) {
	id := taskid.TransactionalID(r.k.env.ClusterID, r.t.Connector, u.Name())
	opts := append(slices.Clone(r.k.env.KafkaOpts), kgo.TransactionalID(id), kgo.ProducerLinger(0))
	if r.k.env.TransactionTimeout > 0 {
		opts = append(opts, kgo.TransactionTimeout(r.k.env.TransactionTimeout))
	}
	if r.t.KafkaClient != nil {
		opts = append(opts, r.t.KafkaClient(id)...)
	}
	producer, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("transactional producer %s: %w", id, err)
	}
	p := &partition{unit: u, key: offsets.PartitionKey(r.t.Connector, u.Topic, u.Partition),
		coll: db.Collection(r.cfg.CollectionOf(u.Topic)), producer: producer}
	if _, _, err := producer.ProducerID(ctx); err != nil {
		producer.Close()
		return nil, fmt.Errorf("initialise transactional id %s (fencing earlier owners): %w", id, err)
	}
	return p, nil
}

// startOffsets are where the partitions are read from: their committed offsets, or the start
// of those without one.
func (r *run) startOffsets() map[string]map[int32]kgo.Offset {
	start := map[string]map[int32]kgo.Offset{}
	for topic, ps := range r.parts {
		start[topic] = map[int32]kgo.Offset{}
		for n, p := range ps {
			at := kgo.NewOffset().AtStart()
			if v, err := r.k.env.Offsets.Get(p.key); err == nil && v.KafkaOffset != nil {
				at = kgo.NewOffset().At(*v.KafkaOffset)
			}
			start[topic][n] = at
		}
	}
	return start
}

func (r *run) batchSize() int {
	if r.cfg.MaxBatchSize > 0 {
		return r.cfg.MaxBatchSize
	}
	return defaultBatch
}

func (r *run) close() {
	for _, ps := range r.parts {
		for _, p := range ps {
			p.producer.Close()
		}
	}
}

// recordError names a record in an error, as every sink error does.
func recordError(rec *kgo.Record, err error) error {
	return fmt.Errorf("record %s[%d] at offset %d: %w", rec.Topic, rec.Partition, rec.Offset, err)
}

// write writes one batch of a partition's records and commits the offset after it.
func (r *run) write(ctx context.Context, p *partition, recs []*kgo.Record) error {
	var b batch
	var dead []deadLetter
	for _, rec := range recs {
		o, err := r.conv.convert(ctx, rec)
		if err != nil {
			if !errors.Is(err, errBadRecord) {
				return recordError(rec, err) // the registry unreachable, say: retried
			}
			if !r.cfg.Tolerate() {
				return connector.Permanent(recordError(rec, fmt.Errorf("%w (errors.tolerance=all sends such records to the dead letter topic)", err)))
			}
			r.log.Warn("record skipped", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", err)
			dead = append(dead, deadLetter{rec: rec, err: err})
			continue
		}
		b.add(o, rec)
	}
	if err := p.producer.BeginTransaction(); err != nil {
		return fmt.Errorf("begin the transaction of %s: %w", p.unit.Name(), err)
	}
	committed := false
	defer func() {
		if !committed {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = p.producer.AbortBufferedRecords(actx)
			_ = p.producer.EndTransaction(actx, kgo.TryAbort)
		}
	}()
	next := recs[len(recs)-1].Offset + 1
	offsetRec := r.k.env.Offsets.Record(p.key, &offsets.Value{KafkaOffset: &next})
	// Acknowledged only while this run's producer epoch is the partition's newest: a newer
	// owner fences this run here, before it writes to MongoDB.
	if err := p.producer.ProduceSync(ctx, append([]*kgo.Record{offsetRec}, r.dlq.records(dead)...)...).FirstErr(); err != nil {
		return fmt.Errorf("write the offset of %s before writing to MongoDB: %w", p.unit.Name(), err)
	}
	refused, err := r.bulkWrite(ctx, p, b)
	if err != nil {
		return err
	}
	if err := p.producer.ProduceSync(ctx, r.dlq.records(refused)...).FirstErr(); err != nil {
		return fmt.Errorf("write the dead letters of %s: %w", p.unit.Name(), err)
	}
	if err := p.producer.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("commit the offset %d of %s: %w", next, p.unit.Name(), err)
	}
	committed = true
	if err := r.k.env.Offsets.Apply(offsetRec); err != nil {
		r.log.Warn("committed offset not recorded in memory", "err", err)
	}
	now := time.Now()
	unit := r.t.Metrics.Unit(p.unit.Name())
	unit.Batch(now, len(recs), len(recs)-len(b.models), recs[len(recs)-1].Timestamp.UnixMilli(), false)
	unit.Committed(now)
	return nil
}

// bulkWrite writes b with one bulk write, then again from after each write the server
// refused when the write is ordered. A refused write fails the task, or with
// errors.tolerance=all is returned, for the dead letter topic.
func (r *run) bulkWrite(ctx context.Context, p *partition, b batch) ([]deadLetter, error) {
	opts := options.BulkWrite().SetOrdered(r.cfg.Ordered)
	var refused []deadLetter
	for len(b.models) > 0 {
		_, err := p.coll.BulkWrite(ctx, b.models, opts)
		if err == nil {
			return refused, nil
		}
		failures, err := splitBulkError(err)
		if err != nil {
			return nil, fmt.Errorf("bulk write of %d records of %s from offset %d to %s.%s: %w",
				len(b.models), p.unit.Name(), b.recs[0].Offset, r.cfg.Database, p.coll.Name(), err)
		}
		for _, f := range failures {
			rec := b.recs[f.index]
			if !r.cfg.Tolerate() {
				return nil, connector.Permanent(recordError(rec, fmt.Errorf("write to %s.%s: %w (errors.tolerance=all sends such records to the dead letter topic)",
					r.cfg.Database, p.coll.Name(), f.err)))
			}
			r.log.Warn("record not written", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", f.err)
			refused = append(refused, deadLetter{rec: rec, err: f.err})
		}
		if !r.cfg.Ordered {
			return refused, nil
		}
		// An ordered bulk write stops at its first failure: write what follows it.
		rest := failures[0].index + 1
		b = batch{models: b.models[rest:], recs: b.recs[rest:]}
	}
	return refused, nil
}
