package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/mongorelay/mongorelay/bench/internal/procstat"
	"github.com/mongorelay/mongorelay/internal/proc"
)

// The sink workload (issue 21): -events JSON documents of about 1 KB, each with its own _id,
// on one topic of one partition, written into a MongoDB collection by each sink system: the
// Go driver alone (ceiling-bulk: replaceOne upserts by _id in ordered bulk writes of 1,000,
// majority write concern, from documents already in memory), mongorelay's sink (relay-1) and
// the MongoDB Kafka Connector's (mkc-json: JsonConverter without schemas, ProvidedInValue ids,
// its default replace-one upsert, majority write concern). A run ends when the collection
// holds every document.

// sinkTopic is the topic every sink system reads; the systems write to collections of their own.
const sinkTopic = "bench-sink"

// sinkSystems are the systems that run the sink workload; the others run only the source
// workloads, and the sink systems' ceiling only this one.
var sinkSystems = []string{"ceiling-bulk", "relay-1", "mkc-json"}

// sinkDocument is the n-th document of the sink workload, as JSON: strings, numbers, a nested
// document and arrays, about 1 KB.
func sinkDocument(rng *rand.Rand, n int) []byte {
	items := make([]map[string]any, 3+rng.IntN(4))
	for i := range items {
		items[i] = map[string]any{"sku": fmt.Sprintf("sku-%05d", rng.IntN(100000)), "qty": 1 + rng.IntN(9),
			"price": float64(rng.IntN(100000)) / 100, "note": strings.Repeat("x", 40+rng.IntN(40))}
	}
	doc := map[string]any{"_id": n, "customer": fmt.Sprintf("c%06d", rng.IntN(1000000)),
		"status": []string{"new", "paid", "shipped"}[rng.IntN(3)], "total": float64(rng.IntN(10000000)) / 100,
		"created": time.Unix(1_700_000_000+int64(rng.IntN(10_000_000)), 0).UTC().Format(time.RFC3339),
		"address": map[string]any{"city": "Oslo", "zip": fmt.Sprintf("%05d", rng.IntN(100000)), "lines": []string{"Street 1", "Floor 2"}},
		"items":   items, "tags": []string{"gift", "b2b"}[:rng.IntN(3)%2+1]}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err) // maps of strings, numbers and slices always marshal
	}
	return b
}

// preloadSink writes the sink workload's documents to sinkTopic.
func (r *runner) preloadSink(ctx context.Context) (*prepared, error) {
	if err := r.plain.createTopic(ctx, sinkTopic); err != nil {
		return nil, err
	}
	start := time.Now()
	rng := rand.New(rand.NewPCG(r.cfg.seed, 21))
	const batch = 5000
	for written := 0; written < r.cfg.events; {
		recs := make([]*kgo.Record, 0, batch)
		for ; len(recs) < batch && written < r.cfg.events; written++ {
			value := sinkDocument(rng, written)
			r.sinkBytes += int64(len(value))
			recs = append(recs, &kgo.Record{Topic: sinkTopic, Key: []byte(fmt.Sprint(written)), Value: value})
		}
		if err := r.plain.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return nil, fmt.Errorf("pre-load %s: %w", sinkTopic, err)
		}
	}
	// The stand-in's upsert path is warmed up as the other workloads' paths are (warmUp), so
	// that the first sink system measured does not pay for its JIT compilation.
	warm := r.sinkTarget.db.Collection("sink_warmup", options.Collection().SetWriteConcern(writeconcern.Majority()))
	rng = rand.New(rand.NewPCG(r.cfg.seed, 22))
	docs := make([]bson.D, 0, 20_000)
	for i := range cap(docs) {
		var d bson.D
		if err := bson.UnmarshalExtJSON(sinkDocument(rng, i), false, &d); err != nil {
			return nil, fmt.Errorf("warm-up document: %w", err)
		}
		docs = append(docs, d)
	}
	if err := upsertAll(ctx, warm, docs); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	if err := warm.Drop(ctx); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	return &prepared{name: "sink", coll: sinkTopic, expected: int64(r.cfg.events), preload: time.Since(start),
		preloadNote: fmt.Sprintf("%d JSON documents of about 1 KB, distinct _ids, on topic %s (1 partition)", r.cfg.events, sinkTopic)}, nil
}

// sink runs system sys on the sink workload into m.
func (r *runner) sink(ctx context.Context, sys string, m *measurement, worker *connectWorker) {
	coll := r.sinkTarget.db.Collection(strings.ReplaceAll(m.prefix(), "-", "_"))
	m.topic = sinkTopic
	switch sys {
	case "ceiling-bulk":
		r.bulkCeiling(ctx, coll, m)
	case "relay-1":
		r.relaySink(ctx, coll, m)
	case "mkc-json":
		r.mkcSink(ctx, coll, m, worker)
	default:
		m.status = notApplicable + "a source system"
	}
	_ = coll.Drop(context.WithoutCancel(ctx))
}

// notApplicable starts the status of a system on a workload it has no part in.
const notApplicable = "not applicable: "

// bulkCeiling writes the documents with the driver alone: read from the topic and parsed
// before the window opens, then replaceOne upserts in ordered bulk writes of 1,000.
func (r *runner) bulkCeiling(ctx context.Context, coll *mongo.Collection, m *measurement) {
	cl, err := kgo.NewClient(append(r.plain.opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		sinkTopic: {0: kgo.NewOffset().AtStart()}}))...)
	if err != nil {
		m.status = err.Error()
		return
	}
	defer cl.Close()
	docs := make([]bson.D, 0, m.expected)
	for int64(len(docs)) < m.expected && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(rec *kgo.Record) {
			var d bson.D
			if err := bson.UnmarshalExtJSON(rec.Value, false, &d); err == nil {
				docs = append(docs, d)
			}
		})
	}
	target := r.sinkTarget.db.Collection(coll.Name(), options.Collection().SetWriteConcern(writeconcern.Majority()))
	w := r.begin("sink", os.Getpid())
	if err := upsertAll(ctx, target, docs); err != nil {
		m.status = err.Error()
		return
	}
	m.elapsed, m.events, m.bytes = time.Since(w.t0), int64(len(docs)), r.sinkBytes
	r.end(w, m)
	m.note = "CPU and RSS are the harness's own, which holds every document in memory"
}

// upsertAll writes docs (each with its _id first) into coll as replaceOne upserts in ordered
// bulk writes of 1,000.
func upsertAll(ctx context.Context, coll *mongo.Collection, docs []bson.D) error {
	for start := 0; start < len(docs); start += 1000 {
		models := make([]mongo.WriteModel, 0, 1000)
		for _, d := range docs[start:min(start+1000, len(docs))] {
			models = append(models, mongo.NewReplaceOneModel().SetFilter(bson.D{d[0]}).SetReplacement(d).SetUpsert(true))
		}
		if _, err := coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(true)); err != nil {
			return fmt.Errorf("bulk write to %s: %w", coll.Name(), err)
		}
	}
	return nil
}

// relaySink runs mongorelay standalone with a sink connector from sinkTopic into coll.
func (r *runner) relaySink(ctx context.Context, coll *mongo.Collection, m *measurement) {
	prefix := m.prefix()
	conf := map[string]string{
		"connector.class":           "mongodb-sink",
		"mongodb.connection.string": r.sinkTarget.uri,
		"topics":                    sinkTopic,
		"database":                  benchDB,
		"collection":                coll.Name(),
	}
	b, err := json.MarshalIndent(map[string]any{"name": "bench-" + prefix, "config": conf}, "", "  ")
	if err != nil {
		m.status = err.Error()
		return
	}
	file := filepath.Join(r.cfg.work, prefix+".json")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		m.status = err.Error()
		return
	}
	env := append(r.plain.env[:len(r.plain.env):len(r.plain.env)],
		"MONGORELAY_REGISTRY_LISTEN=127.0.0.1:0", "MONGORELAY_HTTP_LISTEN=127.0.0.1:0",
		"MONGORELAY_OFFSETS_TOPIC=bench-offsets-"+prefix, "MONGORELAY_SCHEMAS_TOPIC=bench-schemas-"+prefix)
	w := r.begin("sink", 0)
	pr, err := r.reg.Start(prefix, filepath.Join(r.cfg.work, prefix+".log"), proc.Options{Env: env}, r.cfg.relayBin, "standalone", file)
	if err != nil {
		m.status = err.Error()
		return
	}
	defer pr.Stop(30 * time.Second)
	w.pid = pr.Pid()
	r.awaitDocs(ctx, w, coll, m, func() string {
		if pr.Exited() {
			return "mongorelay exited: " + pr.Tail(1)
		}
		if b, _ := os.ReadFile(pr.Log); strings.Contains(string(b), "task FAILED") {
			return grepLine(string(b), "task FAILED")
		}
		return ""
	})
	r.end(w, m)
}

// mkcSink runs the MongoDB Kafka Connector's sink on worker from sinkTopic into coll.
func (r *runner) mkcSink(ctx context.Context, coll *mongo.Collection, m *measurement, worker *connectWorker) {
	name := m.prefix()
	uri := r.sinkTarget.uri
	if strings.Contains(uri, "?") {
		uri += "&w=majority"
	} else {
		uri += "/?w=majority"
	}
	conf := map[string]string{
		"connector.class":                "com.mongodb.kafka.connect.MongoSinkConnector",
		"tasks.max":                      "1",
		"topics":                         sinkTopic,
		"connection.uri":                 uri,
		"database":                       benchDB,
		"collection":                     coll.Name(),
		"key.converter":                  "org.apache.kafka.connect.storage.StringConverter",
		"value.converter":                "org.apache.kafka.connect.json.JsonConverter",
		"value.converter.schemas.enable": "false",
		"document.id.strategy":           "com.mongodb.kafka.connect.sink.processor.id.strategy.ProvidedInValueStrategy",
	}
	pid := worker.p.Pid()
	if err := procstat.ResetPeak(pid); err != nil {
		m.note = err.Error()
	}
	defer func() {
		if err := worker.remove(context.WithoutCancel(ctx), name); err != nil && m.note == "" {
			m.note = err.Error()
		}
	}()
	w := r.begin("sink", pid)
	if err := worker.create(ctx, name, conf, false); err != nil {
		m.status = err.Error()
		return
	}
	logFrom := worker.logSize()
	r.awaitDocs(ctx, w, coll, m, func() string {
		if worker.p.Exited() {
			return "the Connect worker exited: " + worker.p.Tail(1)
		}
		if trace := worker.failure(ctx, name); trace != "" {
			return trace
		}
		return worker.errorSince(logFrom)
	})
	r.end(w, m)
}

// awaitDocs waits until coll holds the workload's documents, failed() reports a failure, or the
// run times out; it fills m's counts and elapsed time from w.t0.
func (r *runner) awaitDocs(ctx context.Context, w *window, coll *mongo.Collection, m *measurement, failed func() string) {
	limit := max(30*time.Second, min(r.cfg.runTimeout, time.Until(r.deadline)))
	deadline := time.Now().Add(limit)
	lastCheck := time.Now()
	for {
		n, err := coll.EstimatedDocumentCount(ctx)
		if err == nil && n >= m.expected {
			m.elapsed, m.events, m.bytes = time.Since(w.t0), n, r.sinkBytes
			return
		}
		switch {
		case ctx.Err() != nil:
			m.status = "cancelled"
			return
		case time.Now().After(deadline):
			m.status = fmt.Sprintf("timed out after %s with %d of %d documents", limit.Round(time.Second), n, m.expected)
			return
		case time.Since(lastCheck) > 2*time.Second:
			lastCheck = time.Now()
			if why := failed(); why != "" {
				m.status = "failed: " + why
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}
