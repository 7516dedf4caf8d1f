package main

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/tasks"
)

// warmUp runs every server code path the measurements use once before the first one, so the
// first system measured does not pay for the servers' JIT compilation (both are JVMs): it reads
// each streaming workload's change stream and the copy's collection, produces and consumes a
// topic's worth of records, and runs the latency workload once.
func (r *runner) warmUp(ctx context.Context) error {
	start := time.Now()
	for _, wl := range []string{"insert", "mix"} {
		p := r.loads[wl]
		if p == nil {
			continue
		}
		opts := options.ChangeStream().SetFullDocument(options.UpdateLookup).SetBatchSize(2048).
			SetResumeAfter(bson.D{{Key: "_data", Value: p.token}})
		cs, err := r.main.db.Collection(p.coll).Watch(ctx, mongo.Pipeline{}, opts)
		if err != nil {
			return fmt.Errorf("warm-up: watch %s: %w", p.coll, err)
		}
		for n := int64(0); n < p.expected && cs.Next(ctx); n++ {
		}
		err = cs.Err()
		_ = cs.Close(ctx)
		if err != nil {
			return fmt.Errorf("warm-up: read %s: %w", p.coll, err)
		}
	}
	if p := r.loads["copy"]; p != nil {
		cur, err := r.main.db.Collection(p.coll).Find(ctx, bson.D{},
			options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(2048))
		if err != nil {
			return fmt.Errorf("warm-up: find in %s: %w", p.coll, err)
		}
		for cur.Next(ctx) {
		}
		err = cur.Err()
		_ = cur.Close(ctx)
		if err != nil {
			return fmt.Errorf("warm-up: read %s: %w", p.coll, err)
		}
	}
	for _, b := range []*broker{r.plain, r.secure} {
		if b == nil {
			continue
		}
		if err := warmKafka(ctx, b, 100_000); err != nil {
			return err
		}
	}
	if p := r.loads["latency"]; p != nil {
		// The latency workload reads the change stream a few events at a time and commits a
		// transaction every few milliseconds: server paths the loads above hardly take. One
		// unrecorded run of relay-1 compiles them. Measured cold, relay-1's first latency run
		// had twice the p50 and p99 of the four after it (29.1/109.4 ms against 10.6–15.4 /
		// 37.1–52.1 ms, 2026-12-07).
		m := &measurement{system: "relay-1", workload: "latency", rep: -1, expected: p.expected}
		r.measure(ctx, m.system, m.workload, m, nil)
		if !m.ok() {
			return fmt.Errorf("warm-up: a latency run of relay-1: %s", firstLine(m.status))
		}
	}
	logf("servers warmed up in %.1f s", time.Since(start).Seconds())
	return nil
}

// warmKafka produces n 1 KB records to a scratch topic of b in transactions, as a task does, and
// reads them back read_committed: the broker's transaction paths (and TLS and SASL on the
// secure one) are compiled before the first measured run, which otherwise pays for them.
func warmKafka(ctx context.Context, b *broker, n int) error {
	const topic = "bench-warm-up"
	if err := b.createTopic(ctx, topic); err != nil {
		return err
	}
	opts := b.clientOpts(append([]kgo.Opt{kgo.TransactionalID("bench-warm-up")},
		tasks.ProducerOpts(kgo.NoCompression())...)...)
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	value := make([]byte, 1000)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	const perTxn = 2048 // max.batch.size
	for i := 0; i < n; i += perTxn {
		if err := cl.BeginTransaction(); err != nil {
			return fmt.Errorf("warm-up: begin transaction: %w", err)
		}
		for j := i; j < min(i+perTxn, n); j++ {
			cl.Produce(ctx, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "%d", j), Value: value}, nil)
		}
		if err := cl.Flush(ctx); err != nil {
			return fmt.Errorf("warm-up: produce: %w", err)
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return fmt.Errorf("warm-up: commit: %w", err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for got := 0; got < n; {
		f := cl.PollFetches(wctx)
		if err := wctx.Err(); err != nil {
			return fmt.Errorf("warm-up: consume %d of %d records: %w", got, n, err)
		}
		got += f.NumRecords()
	}
	return nil
}
