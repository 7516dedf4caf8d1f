package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/bench/internal/workload"
)

const benchDB = "benchdb"

// prepared is a workload written to MongoDB once and read by every system.
type prepared struct {
	name string // insert, mix, copy, colls, latency
	coll string
	// colls is the number of collections of the colls workload (collName(0) … collName(colls-1));
	// 0 for the others, which write coll only.
	colls    int
	expected int64 // records every system must deliver
	// The start point of a streaming workload: the marker event written just before the
	// pre-load. Every system starts right after it (resumeAfter its token, or, for the MongoDB
	// Kafka Connector, startAtOperationTime at the next increment), so all read the same events.
	token string
	at    bson.Timestamp
	// What the pre-load was, for the results file.
	preload     time.Duration
	preloadNote string
}

// streamStart returns the startAtOperationTime equivalent to "right after the marker".
func (p *prepared) streamStart() bson.Timestamp { return bson.Timestamp{T: p.at.T, I: p.at.I + 1} }

// writeMarker inserts a document into coll and returns its change event's token and cluster
// time, read from a stream opened before the insert.
func writeMarker(ctx context.Context, coll *mongo.Collection, gen *workload.Generator) (string, bson.Timestamp, error) {
	cs, err := coll.Watch(ctx, mongo.Pipeline{})
	if err != nil {
		return "", bson.Timestamp{}, fmt.Errorf("watch %s: %w", coll.Name(), err)
	}
	defer func() { _ = cs.Close(context.WithoutCancel(ctx)) }()
	if _, err := coll.InsertOne(ctx, gen.Doc(time.Now())); err != nil {
		return "", bson.Timestamp{}, fmt.Errorf("insert the start marker into %s: %w", coll.Name(), err)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if !cs.Next(rctx) {
		return "", bson.Timestamp{}, fmt.Errorf("read the start marker's event from %s: %w", coll.Name(), errors.Join(cs.Err(), rctx.Err()))
	}
	data, ok := cs.Current.Lookup("_id", "_data").StringValueOK()
	if !ok {
		return "", bson.Timestamp{}, fmt.Errorf("the marker event has no _id._data: %s", cs.Current)
	}
	t, i, ok := cs.Current.Lookup("clusterTime").TimestampOK()
	if !ok {
		return "", bson.Timestamp{}, fmt.Errorf("the marker event has no clusterTime: %s", cs.Current)
	}
	return data, bson.Timestamp{T: t, I: i}, nil
}

const preloadBatch = 1000

// preloadInserts writes the insert workload into collection name: a marker, then n documents
// in batches.
func preloadInserts(ctx context.Context, db *mongo.Database, name string, n int, seed uint64) (*prepared, error) {
	coll := db.Collection(name)
	gen := workload.New(seed)
	p := &prepared{name: "insert", coll: coll.Name(), expected: int64(n)}
	var err error
	if p.token, p.at, err = writeMarker(ctx, coll, gen); err != nil {
		return nil, err
	}
	start := time.Now()
	docs := make([]any, 0, preloadBatch)
	for written := 0; written < n; {
		docs = docs[:0]
		for len(docs) < preloadBatch && written+len(docs) < n {
			docs = append(docs, gen.Doc(time.Now()))
		}
		if _, err := coll.InsertMany(ctx, docs); err != nil {
			return nil, fmt.Errorf("pre-load %s after %d documents: %w", coll.Name(), written, err)
		}
		written += len(docs)
	}
	p.preload = time.Since(start)
	p.preloadNote = fmt.Sprintf("%d inserts of a ~1 KB document, insertMany batches of %d", n, preloadBatch)
	return p, nil
}

// preloadMix writes the mix workload: a marker, then n operations, 50/30/20
// insert/update/delete, in ordered bulk writes.
func preloadMix(ctx context.Context, db *mongo.Database, n int, seed uint64) (*prepared, error) {
	coll := db.Collection("mix")
	gen := workload.New(seed)
	p := &prepared{name: "mix", coll: coll.Name(), expected: int64(n)}
	var err error
	if p.token, p.at, err = writeMarker(ctx, coll, gen); err != nil {
		return nil, err
	}
	var kinds [3]int
	start := time.Now()
	models := make([]mongo.WriteModel, 0, preloadBatch)
	for written := 0; written < n; {
		models = models[:0]
		for len(models) < preloadBatch && written+len(models) < n {
			op := gen.Mix(time.Now())
			kinds[op.Kind]++
			switch op.Kind {
			case workload.Insert:
				models = append(models, mongo.NewInsertOneModel().SetDocument(op.Doc))
			case workload.Update:
				models = append(models, mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: op.ID}}).SetUpdate(op.Update))
			case workload.Delete:
				models = append(models, mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: op.ID}}))
			}
		}
		res, err := coll.BulkWrite(ctx, models)
		if err != nil {
			return nil, fmt.Errorf("pre-load %s after %d operations: %w", coll.Name(), written, err)
		}
		_ = res
		written += len(models)
	}
	p.preload = time.Since(start)
	p.preloadNote = fmt.Sprintf("%d operations: %d inserts, %d updates ($set of 4 fields + $inc), %d deletes; ordered bulk writes of %d",
		n, kinds[workload.Insert], kinds[workload.Update], kinds[workload.Delete], preloadBatch)
	return p, nil
}

// prepareCopy describes the initial copy workload: the collection of src (an insert pre-load)
// as it is.
func prepareCopy(ctx context.Context, db *mongo.Database, src *prepared, what string) (*prepared, error) {
	n, err := db.Collection(src.coll).CountDocuments(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("count %s: %w", src.coll, err)
	}
	return &prepared{name: "copy", coll: src.coll, expected: n, preload: src.preload,
		preloadNote: fmt.Sprintf("%s: %d documents (the pre-load and its start marker)", what, n)}, nil
}

// probe writes a small document every 200 ms until stop is closed: a system that has started
// streaming "from now" shows it is live by delivering one.
func probe(ctx context.Context, coll *mongo.Collection, stop <-chan struct{}) error {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "probe", Value: probeMarker}}); err != nil {
			return fmt.Errorf("write a probe: %w", err)
		}
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

const probeMarker = "~PROBE~"

// pacedInserts inserts n documents at rate per second, each stamped with its send time, from
// several writers (one insert is a round trip, so one writer alone could not keep the pace).
// It returns the rate achieved.
func pacedInserts(ctx context.Context, coll *mongo.Collection, n, rate int, seed uint64) (float64, error) {
	const writers = 8
	jobs := make(chan time.Time, rate)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		gen := workload.New(seed + uint64(w))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for at := range jobs {
				if d := time.Until(at); d > 0 {
					time.Sleep(d)
				}
				if _, err := coll.InsertOne(ctx, gen.Doc(time.Now()), options.InsertOne()); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	start := time.Now().Add(50 * time.Millisecond)
	interval := time.Second / time.Duration(rate)
	var err error
feed:
	for i := range n {
		select {
		case jobs <- start.Add(time.Duration(i) * interval):
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	if err != nil {
		return 0, fmt.Errorf("paced inserts into %s: %w", coll.Name(), err)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// pacedWindow opens a measuring window on pid, then makes the latency workload's paced inserts
// (n documents into coll at -latency-rate); it returns the window and the rate achieved.
func (r *runner) pacedWindow(ctx context.Context, pid int, coll *mongo.Collection, n int64) (*window, float64, error) {
	w := r.begin("latency", pid)
	rate, err := pacedInserts(ctx, coll, int(n), r.cfg.latencyRate, r.cfg.seed+7)
	return w, rate, err
}

// collName is collection i of the colls workload.
func collName(i int) string { return fmt.Sprintf("sc%02d", i) }

// preloadCollections writes the colls workload: a marker in the first of k collections, then n
// inserts of the insert workload's documents, insertMany batches going to the k collections in
// turn.
func preloadCollections(ctx context.Context, db *mongo.Database, k, n int, seed uint64) (*prepared, error) {
	gen := workload.New(seed)
	p := &prepared{name: collsWorkload, coll: collName(0), colls: k, expected: int64(n)}
	var err error
	if p.token, p.at, err = writeMarker(ctx, db.Collection(collName(0)), gen); err != nil {
		return nil, err
	}
	start := time.Now()
	docs := make([]any, 0, preloadBatch)
	for written, batch := 0, 0; written < n; batch++ {
		docs = docs[:0]
		for len(docs) < preloadBatch && written+len(docs) < n {
			docs = append(docs, gen.Doc(time.Now()))
		}
		coll := db.Collection(collName(batch % k))
		if _, err := coll.InsertMany(ctx, docs); err != nil {
			return nil, fmt.Errorf("pre-load %s after %d documents: %w", coll.Name(), written, err)
		}
		written += len(docs)
	}
	p.preload = time.Since(start)
	p.preloadNote = fmt.Sprintf("%d inserts of a ~1 KB document over %d collections of one database (%s…%s), insertMany batches of %d to each collection in turn; "+
		"relay-1 captures them with capture.scope=collection (%d tasks), %s with capture.scope=database (1 task)",
		n, k, collName(0), collName(k-1), preloadBatch, k, dbSystem)
	return p, nil
}
