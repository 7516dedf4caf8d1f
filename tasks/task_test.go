package tasks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/registry"
	"github.com/mongorelay/mongorelay/registry/registrytest"
	"github.com/mongorelay/mongorelay/tasks/changestream"
	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/connector"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/resumetoken"
	"github.com/mongorelay/mongorelay/tasks/snapshot"
)

// token is a resume token's _data at cluster time (t, i), shaped as a real post-batch token.
func token(t, i uint32) string { return fmt.Sprintf("82%08X%08X2B0229296E04", t, i) }

func tokenAt(t, i uint32) bson.Raw { return tokenDoc(token(t, i)) }

// changeInsert is a change event inserting {_id: id} at cluster time (t, 1).
func changeInsert(t uint32, id int32) bson.Raw {
	raw, err := bson.Marshal(bson.D{
		{Key: "_id", Value: bson.D{{Key: "_data", Value: token(t, 1)}}},
		{Key: "operationType", Value: "insert"},
		{Key: "clusterTime", Value: bson.Timestamp{T: t, I: 1}},
		{Key: "ns", Value: bson.D{{Key: "db", Value: "db"}, {Key: "coll", Value: "coll"}}},
		{Key: "documentKey", Value: bson.D{{Key: "_id", Value: id}}},
		{Key: "fullDocument", Value: bson.D{{Key: "_id", Value: id}, {Key: "n", Value: id}}},
	})
	if err != nil {
		panic(err)
	}
	return raw
}

// fakeMongo is a collection whose change stream replays batches, then idles at the last
// token; a batch with err set fails the stream there.
type fakeMongo struct {
	now     bson.Raw // the post-batch token of a stream opened at the present
	batches []fakeBatch
	docs    []bson.Raw // the collection, for snapshots
	// chunkHigh is the operationTime of every incremental snapshot chunk read.
	chunkHigh bson.Timestamp
	watched   []changestream.Start
	mu        sync.Mutex
}

type fakeBatch struct {
	events []bson.Raw
	token  bson.Raw
	err    error
}

func (m *fakeMongo) watch(_ context.Context, _ changestream.Options, start changestream.Start) (changeStream, error) {
	m.mu.Lock()
	m.watched = append(m.watched, start)
	m.mu.Unlock()
	return &fakeStream{m: m, idle: m.now}, nil
}

func (m *fakeMongo) splits(context.Context, int) ([]bson.RawValue, error) { return nil, nil }

func (m *fakeMongo) pages(context.Context, snapshot.Range, bson.RawValue, int) (pageReader, error) {
	return &fakePages{docs: m.docs}, nil
}

func (m *fakeMongo) chunk(_ context.Context, after bson.RawValue, limit int) ([]bson.Raw, bson.Timestamp, error) {
	var out []bson.Raw
	for _, d := range m.docs {
		if id := d.Lookup("_id"); after.Type == 0 || id.Int32() > after.Int32() {
			if len(out) < limit {
				out = append(out, d)
			}
		}
	}
	return out, m.chunkHigh, nil
}

type fakeStream struct {
	m    *fakeMongo
	next int
	idle bson.Raw
}

func (s *fakeStream) NextBatch(ctx context.Context, fn func(bson.Raw) error) (bson.Raw, error) {
	if s.next == len(s.m.batches) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		return s.idle, nil
	}
	b := s.m.batches[s.next]
	s.next++
	if b.err != nil {
		return nil, b.err
	}
	for _, ev := range b.events {
		if err := fn(ev); err != nil {
			return nil, err
		}
	}
	s.idle = b.token
	return b.token, nil
}

func (s *fakeStream) CaughtUp() bool              { return true }
func (s *fakeStream) ResumeToken() bson.Raw       { return s.m.now }
func (s *fakeStream) Close(context.Context) error { return nil }
func (p *fakePages) Close(context.Context) error  { return nil }

type fakePages struct {
	docs []bson.Raw
	done bool
}

func (p *fakePages) NextPage(_ context.Context, fn func(bson.Raw) error) (bson.RawValue, int, error) {
	if p.done {
		return bson.RawValue{}, 0, nil
	}
	p.done = true
	var last bson.RawValue
	for _, d := range p.docs {
		if err := fn(d); err != nil {
			return last, 0, err
		}
		last = d.Lookup("_id")
	}
	return last, len(p.docs), nil
}

// testKafka is an in-process Kafka cluster with topics, and an offsets store on it.
func testKafka(t *testing.T, topics ...string) ([]string, *offsets.Store) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := offsets.Open(ctx, c.ListenAddrs(), "offsets", offsets.Partitions(1),
		offsets.Logger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	return c.ListenAddrs(), store
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testConfig(t *testing.T, extra map[string]string) *config.Config {
	t.Helper()
	raw := map[string]string{
		"connector.class":           "mongodb",
		"mongodb.connection.string": "mongodb://127.0.0.1:1",
		"database.include.list":     "db",
		"topic.prefix":              "tt",
		"heartbeat.interval.ms":     "100",
	}
	for k, v := range extra {
		raw[k] = v
	}
	c, err := config.Parse("c", raw)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testPlanner(t *testing.T, store OffsetStore, m mongoReader, cfg *config.Config, shard, shards int) *resumePlanner {
	spec := Spec{Connector: cfg, DB: "db", Coll: "coll", Shard: shard, Shards: shards}
	return newTask(spec, Deps{Offsets: store, Logger: quietLogger()}, m).planner
}

func commitAll(t *testing.T, store OffsetStore, es ...offsets.Entry) {
	t.Helper()
	for _, e := range es {
		if err := store.Commit(context.Background(), e.Key, e.Value); err != nil {
			t.Fatal(err)
		}
	}
}

func at(t *testing.T, ts uint32) *offsets.Value {
	t.Helper()
	v, err := offsets.ResumeAt(token(ts, 1))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func rangeAt(t *testing.T, ts uint32, done bool) *offsets.Value {
	v := at(t, ts)
	v.Snapshot = &offsets.Snapshot{Done: done}
	return v
}

func TestResumePlannerDecidesWhereEachShardStarts(t *testing.T) {
	tests := []struct {
		name          string
		config        map[string]string
		shard, shards int
		committed     func(t *testing.T) []offsets.Entry
		action        resumeAction
		startT        uint32 // the stream start's cluster time, for resumeStream (0: now)
		planRanges    int    // the plan's ranges, for resumeSnapshot
		handoverKeys  int
		atOperationT  uint32 // the stream's startAtOperationTime, for an offset without a token
	}{
		{name: "a fresh shard 0 plans the snapshot", shard: 0, shards: 2, action: resumePlanSnapshot},
		{name: "a fresh shard 1 waits for shard 0's plan", shard: 1, shards: 2, action: resumeAwaitSnapshot},
		{name: "a fresh shard without snapshot streams from now", config: map[string]string{"snapshot.mode": "never"},
			shard: 0, shards: 1, action: resumeStream},
		{name: "a snapshot in progress is copied on", shard: 1, shards: 2, action: resumeSnapshot, planRanges: 2,
			committed: func(t *testing.T) []offsets.Entry {
				return []offsets.Entry{
					{Key: offsets.SnapshotKey("c", "db", "coll", 0, 2), Value: rangeAt(t, 100, true)},
					{Key: offsets.SnapshotKey("c", "db", "coll", 1, 2), Value: rangeAt(t, 100, false)},
				}
			}},
		{name: "a streaming shard resumes at its position", shard: 0, shards: 1, action: resumeStream, startT: 200,
			committed: func(t *testing.T) []offsets.Entry {
				return []offsets.Entry{
					{Key: offsets.SnapshotKey("c", "db", "coll", 0, 1), Value: rangeAt(t, 100, true)},
					{Key: offsets.ShardKey("c", "db", "coll", 0, 1), Value: at(t, 200)},
					{Key: offsets.ShardKey("c", "db", "other", 0, 1), Value: at(t, 900)},
				}
			}},
		{name: "a shard of a new count starts at the oldest old position", shard: 2, shards: 3, action: resumeStream,
			startT: 300, handoverKeys: 2,
			committed: func(t *testing.T) []offsets.Entry {
				return []offsets.Entry{
					{Key: offsets.ShardKey("c", "db", "coll", 0, 2), Value: at(t, 310)},
					{Key: offsets.ShardKey("c", "db", "coll", 1, 2), Value: at(t, 300)},
				}
			}},
		{name: "a shard whose offset is a cluster time alone starts at it", shard: 0, shards: 1,
			action: resumeStream, atOperationT: 400,
			committed: func(t *testing.T) []offsets.Entry {
				return []offsets.Entry{{Key: offsets.ShardKey("c", "db", "coll", 0, 1),
					Value: &offsets.Value{ClusterTime: &offsets.ClusterTime{T: 400, I: 2}}}}
			}},
		{name: "a snapshot done before the shard streamed starts at its start point", shard: 1, shards: 2,
			action: resumeStream, startT: 100,
			committed: func(t *testing.T) []offsets.Entry {
				return []offsets.Entry{
					{Key: offsets.SnapshotKey("c", "db", "coll", 0, 1), Value: rangeAt(t, 100, true)},
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, store := testKafka(t)
			if tt.committed != nil {
				commitAll(t, store, tt.committed(t)...)
			}
			p := testPlanner(t, store, &fakeMongo{}, testConfig(t, tt.config), tt.shard, tt.shards)
			rp, err := p.resume()
			if err != nil {
				t.Fatal(err)
			}
			if rp.action != tt.action {
				t.Fatalf("action = %d, want %d", rp.action, tt.action)
			}
			if tt.action == resumeStream && rp.start.Position.ClusterTime.T != tt.startT {
				t.Fatalf("stream starts at %s, want cluster time %d", rp.start.Position, tt.startT)
			}
			if at := rp.start; tt.atOperationT != 0 && (at.AtOperationTime == nil || at.AtOperationTime.T != tt.atOperationT || at.AtOperationTime.I != 2) {
				t.Fatalf("stream starts at operation time %v, want %d/2", at.AtOperationTime, tt.atOperationT)
			}
			if len(rp.plan) != tt.planRanges {
				t.Fatalf("plan of %d ranges, want %d", len(rp.plan), tt.planRanges)
			}
			if got := 0; rp.handover != nil || tt.handoverKeys != 0 {
				if rp.handover != nil {
					got = len(rp.handover.keys)
				}
				if got != tt.handoverKeys {
					t.Fatalf("handover of %d old keys, want %d", got, tt.handoverKeys)
				}
			}
		})
	}
}

// After a history loss, the shard drops its position and shard 0 plans a new snapshot from
// the present: the next decision copies it.
func TestResumePlannerRestartsTheSnapshotAfterHistoryLoss(t *testing.T) {
	_, store := testKafka(t)
	commitAll(t, store,
		offsets.Entry{Key: offsets.SnapshotKey("c", "db", "coll", 0, 1), Value: rangeAt(t, 100, true)},
		offsets.Entry{Key: offsets.ShardKey("c", "db", "coll", 0, 1), Value: at(t, 200)})
	p := testPlanner(t, store, &fakeMongo{now: tokenAt(500, 1)}, testConfig(t, nil), 0, 1)
	if err := p.restart(context.Background(), resumetoken.Position{ClusterTime: bson.Timestamp{T: 200, I: 1}}); err != nil {
		t.Fatal(err)
	}
	rp, err := p.resume()
	if err != nil {
		t.Fatal(err)
	}
	if rp.action != resumeSnapshot || len(rp.plan) != 1 || rp.plan[0].Value.ClusterTime.T != 500 {
		t.Fatalf("after the restart: action %d with plan %+v, want a new snapshot starting at 500", rp.action, rp.plan)
	}
}

// A shard that has copied its snapshot ranges reads the plan before it waits: when every range
// is done (it copied them all), it goes on at once rather than after a poll interval.
func TestResumePlannerAwaitsOnlyRangesStillBeingCopied(t *testing.T) {
	tests := []struct {
		name     string
		done     []bool // per range
		finishes bool   // before the first poll
	}{
		{name: "every range done", done: []bool{true, true}, finishes: true},
		{name: "a range another shard still copies", done: []bool{true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, store := testKafka(t)
			for i, done := range tt.done {
				commitAll(t, store, offsets.Entry{Key: offsets.SnapshotKey("c", "db", "coll", i, len(tt.done)), Value: rangeAt(t, 100, done)})
			}
			p := testPlanner(t, store, &fakeMongo{}, testConfig(t, nil), 0, len(tt.done))
			ctx, cancel := context.WithTimeout(context.Background(), snapshotPoll/2)
			defer cancel()
			sp, err := p.awaitDone(ctx)
			switch {
			case tt.finishes && (err != nil || !sp.done()):
				t.Fatalf("awaitDone = %d ranges, %v; want the done plan before the first poll", len(sp), err)
			case !tt.finishes && !errors.Is(err, context.DeadlineExceeded):
				t.Fatalf("awaitDone = %d ranges, %v; want it still waiting when the context ends", len(sp), err)
			}
		})
	}
}

// awaitOffset waits until store holds key at cluster time t.
func awaitOffset(ctx context.Context, t *testing.T, store OffsetStore, key offsets.Key, at uint32) {
	t.Helper()
	for ctx.Err() == nil {
		if v, err := store.Get(key); err == nil && v.ClusterTime.T == at {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	v, err := store.Get(key)
	t.Fatalf("offset %s = %+v (%v), want the position at %d", key, v, err, at)
}

// runTask runs a task on in-process Kafka reading m; stop cancels it and returns Run's error.
func runTask(t *testing.T, cfg *config.Config, m mongoReader) (brokers []string, store *offsets.Store, done <-chan error, stop func() error) {
	t.Helper()
	brokers, store = testKafka(t, cfg.Topic("db", "coll"))
	reg, err := registry.New(context.Background(), registrytest.NewStore())
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{Connector: cfg, DB: "db", Coll: "coll", Shard: 0, Shards: 1}
	task := newTask(spec, Deps{Offsets: store, Registry: reg, Logger: quietLogger(),
		Transactional: &Transactional{ID: "test-" + spec.Name(), ClientOpts: []kgo.Opt{kgo.SeedBrokers(brokers...)}},
	}, m)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- task.Run(ctx) }()
	var once sync.Once
	var result error
	ch := make(chan error, 1)
	wait := func() error {
		once.Do(func() { result = <-ran; ch <- result })
		return result
	}
	go func() { _ = wait() }()
	return brokers, store, ch, func() error { cancel(); return wait() }
}

func TestTaskWritesEveryEventAndCommitsThePositionAfterIt(t *testing.T) {
	cfg := testConfig(t, map[string]string{"snapshot.mode": "never"})
	m := &fakeMongo{batches: []fakeBatch{
		{events: []bson.Raw{changeInsert(100, 1), changeInsert(101, 2)}, token: tokenAt(101, 1)},
		{events: []bson.Raw{changeInsert(102, 3)}, token: tokenAt(102, 1)},
	}}
	brokers, store, _, stop := runTask(t, cfg, m)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(cfg.Topic("db", "coll")),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got int
	for got < 3 && ctx.Err() == nil {
		got += cl.PollFetches(ctx).NumRecords()
	}
	if got != 3 {
		t.Fatalf("%d records on the topic, want 3 (Run: %v)", got, stop())
	}
	awaitOffset(ctx, t, store, offsets.ShardKey(cfg.Name, "db", "coll", 0, 1), 102)
	if err := stop(); err != nil {
		t.Fatalf("clean stop: %v", err)
	}
}

func TestTaskFailsNamingTheLossWhenTheStreamsHistoryIsLost(t *testing.T) {
	cfg := testConfig(t, map[string]string{"snapshot.mode": "never"})
	m := &fakeMongo{batches: []fakeBatch{{err: fmt.Errorf("read change stream: %w", changestream.ErrHistoryLost)}}}
	_, _, done, stop := runTask(t, cfg, m)
	defer stop()
	select {
	case err := <-done:
		var lost *changestream.HistoryLostError
		if !errors.As(err, &lost) || lost.Namespace != "db.coll" {
			t.Fatalf("Run() = %v, want a HistoryLostError for db.coll", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the task did not fail on a lost history")
	}
}

func TestTaskWithoutTransactionalProducerFailsToRun(t *testing.T) {
	spec := Spec{Connector: testConfig(t, nil), DB: "db", Coll: "coll", Shards: 1}
	task := newTask(spec, Deps{Logger: quietLogger()}, &fakeMongo{})
	if err := task.Run(context.Background()); !errors.Is(err, ErrNoTransactional) {
		t.Fatalf("Run() = %v, want ErrNoTransactional", err)
	}
}

// panicStream is a change stream whose reader panics on its second batch.
type panicStream struct {
	changeStream
	read int
}

func (s *panicStream) NextBatch(ctx context.Context, fn func(bson.Raw) error) (bson.Raw, error) {
	if s.read++; s.read == 2 {
		panic("poison batch")
	}
	return s.changeStream.NextBatch(ctx, fn)
}

type panicMongo struct{ *fakeMongo }

func (m panicMongo) watch(ctx context.Context, o changestream.Options, start changestream.Start) (changeStream, error) {
	cs, err := m.fakeMongo.watch(ctx, o, start)
	return &panicStream{changeStream: cs}, err
}

func TestTaskFailsOnAPanicOfItsSourceAfterCommittingWhatWasDelivered(t *testing.T) {
	cfg := testConfig(t, map[string]string{"snapshot.mode": "never"})
	m := panicMongo{&fakeMongo{batches: []fakeBatch{{events: []bson.Raw{changeInsert(100, 1)}, token: tokenAt(100, 1)}}}}
	_, store, done, stop := runTask(t, cfg, m)
	defer stop()
	select {
	case err := <-done:
		if !connector.IsPermanent(err) || !strings.Contains(err.Error(), "task panicked: poison batch") {
			t.Fatalf("Run() = %v, want the panic as a permanent error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the task did not end on its source's panic")
	}
	// The batch before the panic was delivered, and its position committed on the way out.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	awaitOffset(ctx, t, store, offsets.ShardKey(cfg.Name, "db", "coll", 0, 1), 100)
}
