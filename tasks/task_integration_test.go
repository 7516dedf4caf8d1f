package tasks_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/internal/testenv"
	"github.com/mongorelay/mongorelay/registry"
	"github.com/mongorelay/mongorelay/registry/registrytest"
	"github.com/mongorelay/mongorelay/tasks"
	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/shard"
)

// env is one test's servers, clients and uniquely named topics.
type env struct {
	t        *testing.T
	mongoURI string
	brokers  []string
	mongo    *mongo.Client
	kafka    *kgo.Client
	offsets  *offsets.Store
	reg      *registry.Registry
	db       string
	// store, when set, is the offsets store tasks get instead of offsets.
	store tasks.OffsetStore
	// txnOpts are added to the options of the tasks' transactional producers.
	txnOpts []kgo.Opt
	// shutdownTimeout, when set, is the tasks' shutdown timeout.
	shutdownTimeout time.Duration
	// splitLargeEvents is the tasks' Deps.SplitLargeEvents.
	splitLargeEvents bool
	// exited waits up to timeout for the last started task to stop by itself.
	exited func(timeout time.Duration) (error, bool)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, mongoURI: testenv.Mongo(t), brokers: []string{testenv.Kafka(t)}}
	e.db = fmt.Sprintf("tasktest%d", time.Now().UnixNano())
	ctx := context.Background()
	var err error
	if e.mongo, err = mongo.Connect(options.Client().ApplyURI(e.mongoURI)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.mongo.Disconnect(context.Background()) })
	if e.kafka, err = kgo.NewClient(kgo.SeedBrokers(e.brokers...)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.kafka.Close)
	offsetsTopic := e.db + "-offsets"
	if e.offsets, err = offsets.Open(ctx, e.brokers, offsetsTopic, offsets.Partitions(1)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.offsets.Close()
		_, _ = kadm.NewClient(e.kafka).DeleteTopics(context.Background(), offsetsTopic)
	})
	if e.reg, err = registry.New(ctx, registrytest.NewStore()); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) connector(extra map[string]string) *config.Config {
	e.t.Helper()
	raw := map[string]string{
		"connector.class":           "mongodb",
		"mongodb.connection.string": e.mongoURI,
		"database.include.list":     e.db,
		"topic.prefix":              "tt",
		"heartbeat.interval.ms":     "500",
		"poll.max.wait.ms":          "200",
	}
	for k, v := range extra {
		raw[k] = v
	}
	c, err := config.Parse("tt-"+e.db, raw)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// start runs a task until the returned stop function is called; stop returns Run's error.
func (e *env) start(cfg *config.Config, coll string) (topic string, stop func() error) {
	e.t.Helper()
	return e.startShard(cfg, coll, 0, 1)
}

func (e *env) startShard(cfg *config.Config, coll string, i, n int) (topic string, stop func() error) {
	e.t.Helper()
	return e.startShardAs(cfg, coll, i, n, "test")
}

// startShardAs runs shard i of n as the owner named writer (the mongorelay.writer header).
func (e *env) startShardAs(cfg *config.Config, coll string, i, n int, writer string) (topic string, stop func() error) {
	e.t.Helper()
	r := e.run(cfg, coll, i, n, writer)
	e.exited = r.exited
	return r.topic, r.stop
}

// running is a task started by a test.
type running struct {
	topic string
	// stop cancels the task and returns Run's error.
	stop func() error
	// exited waits up to timeout for the task to end by itself.
	exited func(timeout time.Duration) (error, bool)
}

func (e *env) run(cfg *config.Config, coll string, i, n int, writer string) running {
	e.t.Helper()
	topic := cfg.Topic(e.db, coll)
	resp, err := kadm.NewClient(e.kafka).CreateTopic(context.Background(), 1, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) { // it does on a restart
		e.t.Fatal(err)
	}
	spec := tasks.Spec{Connector: cfg, DB: e.db, Coll: coll, Shard: i, Shards: n}
	var store tasks.OffsetStore = e.offsets
	if e.store != nil {
		store = e.store
	}
	task := tasks.New(spec, tasks.Deps{
		Mongo: e.mongo, Offsets: store, Registry: e.reg, SplitLargeEvents: e.splitLargeEvents,
		Transactional: &tasks.Transactional{
			ID:         e.txnID(spec.Name()),
			ClientOpts: append([]kgo.Opt{kgo.SeedBrokers(e.brokers...)}, e.txnOpts...),
			RetiredID:  e.txnID,
		},
		WriterID:        writer,
		ShutdownTimeout: e.shutdownTimeout,
		Logger:          slog.New(slog.NewTextHandler(testLogOutput(), nil)),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- task.Run(ctx) }()
	var result error
	var once sync.Once
	exited := func(timeout time.Duration) (error, bool) {
		select {
		case err := <-done:
			once.Do(func() { result = err })
			return result, true
		case <-time.After(timeout):
			return nil, false
		}
	}
	stop := func() error {
		cancel()
		once.Do(func() { result = <-done })
		return result
	}
	return running{topic: topic, stop: stop, exited: exited}
}

// txnID is the transactional id of the test's collection shard named shard.
func (e *env) txnID(shard string) string { return e.db + "-" + shard }

type rec struct {
	key    string
	op     string // "" for a tombstone
	after  map[string]any
	shard  string // the mongorelay.shard header
	writer string // the mongorelay.writer header
}

// consume reads want records of topic from the start, decoded through the registry.
func (e *env) consume(topic string, want int) []rec {
	e.t.Helper()
	return e.consumeSettled(topic, want, 0)
}

// consumeSettled reads want records of topic from the start, then whatever else arrives
// within settle: a duplicate shows as more than want.
func (e *env) consumeSettled(topic string, want int, settle time.Duration) []rec {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	dec := registry.NewDecoder(e.reg)
	var out []rec
	settling := false
	for {
		if len(out) >= want && !settling {
			if settle <= 0 {
				break
			}
			var stop context.CancelFunc
			ctx, stop = context.WithTimeout(context.Background(), settle)
			defer stop()
			settling = true
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			if settling {
				break
			}
			e.t.Fatalf("got %d of %d records from %s; the first: %+v", len(out), want, topic, out[:min(len(out), 3)])
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			k, err := dec.Decode(ctx, r.Key)
			if err != nil {
				e.t.Fatal(err)
			}
			x := rec{key: k.(map[string]any)["id"].(string)}
			for _, h := range r.Headers {
				switch h.Key {
				case shard.HeaderKey:
					x.shard = string(h.Value)
				case tasks.WriterHeader:
					x.writer = string(h.Value)
				}
			}
			if r.Value != nil {
				v, err := dec.Decode(ctx, r.Value)
				if err != nil {
					e.t.Fatal(err)
				}
				m := v.(map[string]any)
				x.op = m["op"].(string)
				x.after = unionRecord(m["after"])
			}
			out = append(out, x)
		}
	}
	return out
}

// unionRecord unwraps a decoded ["null", record] union: hamba decodes a named branch into a
// one-entry map keyed by the record's full name.
func unionRecord(v any) map[string]any {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return m
	}
	for _, inner := range m {
		if r, ok := inner.(map[string]any); ok {
			return r
		}
	}
	return m
}

func TestTaskSnapshotsStreamsAndResumes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	coll := e.mongo.Database(e.db).Collection("orders")
	if _, err := coll.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: int32(1)}, {Key: "n", Value: int32(10)}},
		bson.D{{Key: "_id", Value: int32(2)}, {Key: "n", Value: int32(20)}},
	}); err != nil {
		t.Fatal(err)
	}
	cfg := e.connector(nil)
	topic, stop := e.start(cfg, "orders")

	// Changes made once the snapshot is out come after its two reads, in order. (Changes made
	// before the task records its start point are in the snapshot instead.)
	e.consume(topic, 2)
	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: int32(1)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "s", Value: "x"}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: int32(2)}}); err != nil {
		t.Fatal(err)
	}
	got := e.consume(topic, 5)
	want := []struct{ key, op string }{
		{`{"$numberInt":"1"}`, "r"}, {`{"$numberInt":"2"}`, "r"},
		{`{"$numberInt":"1"}`, "u"}, {`{"$numberInt":"2"}`, "d"}, {`{"$numberInt":"2"}`, ""},
	}
	for i, w := range want {
		if got[i].key != w.key || got[i].op != w.op {
			t.Fatalf("record %d = %s %q, want %s %q (all: %+v)", i, got[i].key, got[i].op, w.key, w.op, got)
		}
	}
	if s := got[2].after["s"]; s != "x" {
		t.Fatalf("update's after.s = %v, want x (full document looked up)", got[2].after)
	}
	if err := stop(); err != nil {
		t.Fatalf("clean stop: %v", err)
	}

	// Written while stopped: a restart resumes after the committed position, without
	// repeating the snapshot or the records already delivered.
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: int32(3)}}); err != nil {
		t.Fatal(err)
	}
	_, stop = e.start(cfg, "orders")
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("clean stop: %v", err)
		}
	}()
	got = e.consume(topic, 6)
	if last := got[5]; last.key != `{"$numberInt":"3"}` || last.op != "c" {
		t.Fatalf("record after restart = %+v, want insert of 3", last)
	}
}

func TestTaskShardsSplitACollection(t *testing.T) {
	const shards, docs = 3, 60
	e := newEnv(t)
	ctx := context.Background()
	coll := e.mongo.Database(e.db).Collection("items")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "seed"}}); err != nil {
		t.Fatal(err)
	}
	// shard.filter=auto: the stand-in refuses $toHashedIndexKey, so each task filters itself.
	cfg := e.connector(map[string]string{"shards": "3"})
	var topic string
	for i := 0; i < shards; i++ {
		var stop func() error
		topic, stop = e.startShard(cfg, "items", i, shards)
		defer func() {
			if err := stop(); err != nil {
				t.Errorf("clean stop: %v", err)
			}
		}()
	}
	e.consume(topic, 1) // the snapshot (shard 0) is out: the shards stream from its start point
	for i := 0; i < docs; i++ {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: int64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	got := e.consume(topic, 1+docs)
	seen := map[string]int{}
	perShard := map[string]int{}
	for _, r := range got[1:] {
		seen[r.key]++
		perShard[r.shard]++
		var id int64
		if _, err := fmt.Sscanf(r.key, `{"$numberLong":"%d"}`, &id); err != nil {
			t.Fatalf("key %s: %v", r.key, err)
		}
		want, err := shard.ForID(bson.RawValue{Type: bson.TypeInt64, Value: bsonInt64(id)}, shards)
		if err != nil {
			t.Fatal(err)
		}
		if r.shard != shard.Name(want, shards) {
			t.Fatalf("document %d came from shard %s, its hash says %s", id, r.shard, shard.Name(want, shards))
		}
	}
	if len(seen) != docs {
		t.Fatalf("%d distinct documents, want %d", len(seen), docs)
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("document %s emitted %d times, want once", k, n)
		}
	}
	if len(perShard) != shards {
		t.Fatalf("records came from shards %v, want all %d", perShard, shards)
	}
}

func bsonInt64(v int64) []byte {
	_, b, err := bson.MarshalValue(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestTaskOversizeRecords(t *testing.T) {
	big := bson.D{{Key: "_id", Value: "big"}, {Key: "blob", Value: strings.Repeat("x", 2<<20)}}
	small := bson.D{{Key: "_id", Value: "small"}}
	tests := []struct {
		name     string
		config   map[string]string
		wantFail bool
	}{
		{"fail stops the task naming the document", map[string]string{}, true},
		{"skip writes a reference to the dead letter topic", map[string]string{
			"oversize.handling": "skip", "errors.deadletterqueue.topic.name": "DLQ"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			coll := e.mongo.Database(e.db).Collection("docs")
			if _, err := coll.InsertOne(ctx, small); err != nil {
				t.Fatal(err)
			}
			if dlq, ok := tt.config["errors.deadletterqueue.topic.name"]; ok {
				tt.config["errors.deadletterqueue.topic.name"] = e.db + "-" + dlq
				if _, err := kadm.NewClient(e.kafka).CreateTopic(ctx, 1, 1, nil, e.db+"-"+dlq); err != nil {
					t.Fatal(err)
				}
			}
			cfg := e.connector(tt.config)
			topic, stop := e.start(cfg, "docs")
			e.consume(topic, 1)
			if _, err := coll.InsertOne(ctx, big); err != nil {
				t.Fatal(err)
			}
			if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "after"}}); err != nil {
				t.Fatal(err)
			}
			if tt.wantFail {
				err, ok := e.exited(20 * time.Second)
				if !ok {
					t.Fatal("the task did not stop on an oversize record")
				}
				if err == nil || !strings.Contains(err.Error(), `"big"`) || !strings.Contains(err.Error(), "oversize.handling=skip") {
					t.Fatalf("Run() = %v, want a failure naming the document and the fix", err)
				}
				if got := e.consumeAvailable(topic); len(got) != 1 {
					t.Fatalf("%d records on the topic, want only the one before the oversize document", len(got))
				}
				return
			}
			got := e.consume(topic, 2)
			if got[1].key != `"after"` {
				t.Fatalf("second record = %+v, want the document after the skipped one", got[1])
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			refs := e.consumeRaw(tt.config["errors.deadletterqueue.topic.name"], 1)
			if !strings.Contains(string(refs[0].Value), `"reason":"oversize"`) || len(refs[0].Value) > 4096 {
				t.Fatalf("dead letter record = %.300s, want a small oversize reference", refs[0].Value)
			}
		})
	}
}

// consumeAvailable returns the records of topic readable within a short wait.
func (e *env) consumeAvailable(topic string) []*kgo.Record {
	e.t.Helper()
	return e.readRaw(topic, -1, 2*time.Second)
}

// consumeRaw reads want undecoded records of topic from the start.
func (e *env) consumeRaw(topic string, want int) []*kgo.Record {
	e.t.Helper()
	out := e.readRaw(topic, want, 30*time.Second)
	if len(out) < want {
		e.t.Fatalf("got %d of %d records from %s", len(out), want, topic)
	}
	return out
}

// readRaw reads committed records of topic from the start until it has want of them (never,
// when want < 0) or wait has passed.
func (e *env) readRaw(topic string, want int, wait time.Duration) []*kgo.Record {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for (want < 0 || len(out) < want) && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// testLogOutput is where tasks log in these tests: stderr with MONGORELAY_TEST_LOG=1.
func testLogOutput() io.Writer {
	if os.Getenv("MONGORELAY_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}

// startShards runs n shard tasks of coll and returns a function stopping them all.
func (e *env) startShards(cfg *config.Config, coll string, n int) (topic string, stop func()) {
	e.t.Helper()
	stops := make([]func() error, n)
	for i := range stops {
		topic, stops[i] = e.startShard(cfg, coll, i, n)
	}
	return topic, func() {
		for _, s := range stops {
			if err := s(); err != nil {
				e.t.Errorf("clean stop: %v", err)
			}
		}
	}
}

func insertInts(t *testing.T, coll *mongo.Collection, from, to int) {
	t.Helper()
	var docs []any
	for i := from; i < to; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: int64(i)}, {Key: "v", Value: int64(i)}})
	}
	if _, err := coll.InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
}

func TestTaskSnapshotRangesRunInParallel(t *testing.T) {
	const docs = 3000
	e := newEnv(t)
	coll := e.mongo.Database(e.db).Collection("big")
	insertInts(t, coll, 0, docs)
	cfg := e.connector(map[string]string{"shards": "3", "max.batch.size": "100"})
	topic, stop := e.startShards(cfg, "big", 3)
	defer stop()
	got := e.consume(topic, docs)
	byShard := map[string]int{}
	seen := map[string]bool{}
	for _, r := range got {
		if r.op != "r" || seen[r.key] {
			t.Fatalf("record %+v: want each document read once", r)
		}
		seen[r.key] = true
		byShard[r.shard]++
	}
	if len(byShard) != 3 {
		t.Fatalf("snapshot records came from %v, want all three shards copying a range", byShard)
	}
	// Each range is marked done, and the stream then starts: a new insert arrives.
	insertInts(t, coll, docs, docs+1)
	if last := e.consume(topic, docs+1)[docs]; last.op != "c" {
		t.Fatalf("record after the snapshot = %+v, want the insert", last)
	}
}

func TestTaskReshardingLosesAndRepeatsNothing(t *testing.T) {
	e := newEnv(t)
	coll := e.mongo.Database(e.db).Collection("rs")
	cfg2 := e.connector(map[string]string{"shards": "2", "snapshot.mode": "never"})
	topic, stop := e.startShards(cfg2, "rs", 2)
	time.Sleep(time.Second) // both streams open before the first write
	insertInts(t, coll, 0, 100)
	e.consume(topic, 100)
	stop()

	// Written while no task runs: the new shards must deliver each exactly once.
	insertInts(t, coll, 100, 200)
	cfg3 := e.connector(map[string]string{"shards": "3", "snapshot.mode": "never"})
	_, stop = e.startShards(cfg3, "rs", 3)
	defer stop()
	insertInts(t, coll, 200, 300)
	got := e.consume(topic, 300)
	deliveredOnce(t, got, 300)
	for _, r := range got[100:] {
		if !strings.HasSuffix(r.shard, "-of-3") {
			t.Fatalf("record %+v after the change carries shard %s, want one of 3", r, r.shard)
		}
	}
	// Once every new shard is past the old positions, the old keys are removed.
	deadline := time.Now().Add(15 * time.Second)
	for {
		old := 0
		for _, en := range e.offsets.List(cfg3.Name) {
			if !en.Key.Snapshot && en.Key.Count == 2 {
				old++
			}
		}
		if old == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d offsets of the 2-shard generation remain", old)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestTaskNewOwnerFencesTheOld(t *testing.T) {
	e := newEnv(t)
	coll := e.mongo.Database(e.db).Collection("fence")
	cfg := e.connector(map[string]string{"snapshot.mode": "never"})
	a := e.run(cfg, "fence", 0, 1, "A")
	topic := a.topic
	time.Sleep(time.Second)
	insertInts(t, coll, 0, 50)
	e.consume(topic, 50)

	// B takes the task over while A still runs (a paused node waking up, say): B's first use
	// of the transactional id fences A, whose next transaction fails.
	_, stopB := e.startShardAs(cfg, "fence", 0, 1, "B")
	defer stopB()
	time.Sleep(time.Second)
	insertInts(t, coll, 50, 100)
	errA, ok := a.exited(20 * time.Second)
	if !ok || errA == nil || !strings.Contains(errA.Error(), "fenced") {
		t.Fatalf("old owner: Run() = %v (stopped by itself: %v), want a fencing failure", errA, ok)
	}
	got := e.consume(topic, 100)
	sawB := false
	for i, r := range got {
		switch r.writer {
		case "B":
			sawB = true
		case "A":
			if sawB {
				t.Fatalf("record %d written by A after B's records: the old owner was not fenced", i)
			}
		default:
			t.Fatalf("record %d has writer %q", i, r.writer)
		}
	}
	if !sawB {
		t.Fatal("no record from the new owner")
	}
}

// A task that fails must not have committed past a record its transaction did not commit:
// the rerun, whatever its policy, delivers every document written before the failure.
func TestTaskFailureCommitsNothingUndelivered(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	coll := e.mongo.Database(e.db).Collection("loss")
	cfg := e.connector(map[string]string{"snapshot.mode": "never", "heartbeat.interval.ms": "100"})
	r := e.run(cfg, "loss", 0, 1, "A")
	time.Sleep(1500 * time.Millisecond) // streaming, and idle positions committed
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "before"}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "huge"}, {Key: "blob", Value: strings.Repeat("x", 2<<20)}}); err != nil {
		t.Fatal(err)
	}
	if err, ok := r.exited(20 * time.Second); !ok || err == nil {
		t.Fatalf("task did not fail on the oversize document: %v", err)
	}
	skip := e.connector(map[string]string{"snapshot.mode": "never", "oversize.handling": "skip"})
	skip.Name = cfg.Name
	r = e.run(skip, "loss", 0, 1, "B")
	defer r.stop()
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "after"}}); err != nil {
		t.Fatal(err)
	}
	got := e.consume(r.topic, 2)
	if got[0].key != `"before"` {
		t.Fatalf("records %+v: the document written before the failure is missing", got)
	}
}

var errOffsetsDown = errors.New("injected: the offsets topic refuses writes")

// failingOffsets is the offsets store with writes that fail once armed. At the first failure
// it notes the end offset of watched, so the test can count what was written after it.
type failingOffsets struct {
	*offsets.Store
	adm     *kadm.Client
	watched string
	armed   atomic.Bool
	once    sync.Once
	endAt   int64
	endErr  error
}

func (f *failingOffsets) Commit(ctx context.Context, k offsets.Key, v *offsets.Value) error {
	if !f.armed.Load() {
		return f.Store.Commit(ctx, k, v)
	}
	f.once.Do(func() { f.endAt, f.endErr = endOffset(ctx, f.adm, f.watched) })
	return errOffsetsDown
}

// endOffset is the high watermark of partition 0 of topic: every record appended so far,
// committed, aborted or pending, and transaction markers.
func endOffset(ctx context.Context, adm *kadm.Client, topic string) (int64, error) {
	return partitionOffset(ctx, adm.ListEndOffsets, topic)
}

// partitionOffset is partition 0's offset of one kind (end, last stable) in topic.
func partitionOffset(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error), topic string) (int64, error) {
	ends, err := list(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, err
	}
	o, _ := ends.Lookup(topic, 0)
	return o.Offset, nil
}

func TestTaskThatCannotCommitItsOffsetsStopsProducingWithinOneCommitInterval(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	coll := e.mongo.Database(e.db).Collection("stuck")
	// The commit loop's offset commits are at-least-once's: with exactly.once the offsets go
	// in the transactions, and the store's Commit is not what fails.
	cfg := e.connector(map[string]string{"snapshot.mode": "never", "exactly.once": "false"})
	adm := kadm.NewClient(e.kafka)
	store := &failingOffsets{Store: e.offsets, adm: adm, watched: cfg.Topic(e.db, "stuck")}
	e.store = store
	r := e.run(cfg, "stuck", 0, 1, "A")
	defer r.stop()
	time.Sleep(time.Second) // the stream is open before the first write

	// A steady stream of writes, before and after the failure.
	stopWriting := make(chan struct{})
	var inserted atomic.Int64
	var wrote sync.WaitGroup
	wrote.Add(1)
	began := time.Now()
	go func() {
		defer wrote.Done()
		for i := 0; ; i++ {
			select {
			case <-stopWriting:
				return
			default:
			}
			if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: int64(i)}}); err != nil {
				t.Error(err)
				return
			}
			inserted.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	e.consume(r.topic, 100) // streaming, offsets committed
	store.armed.Store(true)
	err, exited := r.exited(20 * time.Second)
	time.Sleep(cfg.HeartbeatInterval) // writes go on: a task still producing would show it
	close(stopWriting)
	wrote.Wait()
	rate := float64(inserted.Load()) / time.Since(began).Seconds()

	if !exited {
		t.Fatalf("the task kept running for 20s after its offsets stopped committing")
	}
	if !errors.Is(err, errOffsetsDown) {
		t.Fatalf("Run() = %v, want the commit's failure", err)
	}
	if store.endErr != nil {
		t.Fatal(store.endErr)
	}
	end, err := endOffset(ctx, adm, r.topic)
	if err != nil {
		t.Fatal(err)
	}
	worth := int64(rate * cfg.HeartbeatInterval.Seconds())
	if worth < 20 {
		t.Fatalf("only %.0f writes/s: too few for one commit interval's worth to tell anything", rate)
	}
	if after := end - store.endAt; after > worth {
		t.Fatalf("%d records written after the first failed commit, want at most one commit interval's worth (%d at %.0f writes/s)", after, worth, rate)
	} else {
		t.Logf("%d records written after the first failed commit (one interval's worth: %d)", after, worth)
	}
}
