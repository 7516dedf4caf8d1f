package tasks_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongorelay/mongorelay/tasks"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/resumetoken"
	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// cutter is a dialer whose connections can all be cut at once, as kill -9 cuts a process's:
// nothing the process had not sent reaches Kafka, and a transaction it left open hangs.
type cutter struct {
	mu    sync.Mutex
	dead  bool
	conns []net.Conn
}

func (c *cutter) dial(ctx context.Context, network, host string) (net.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return nil, errors.New("injected: the process was killed")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, host)
	if err == nil {
		c.conns = append(c.conns, conn)
	}
	return conn, err
}

func (c *cutter) kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dead = true
	for _, conn := range c.conns {
		_ = conn.Close()
	}
}

// catchingUp is the offsets store of a process taking a task over with exactly.once (as
// mongosource runs it): its first read catches up with the whole topic.
type catchingUp struct {
	*offsets.Store
	once sync.Once
	err  error
}

func (c *catchingUp) Get(k offsets.Key) (*offsets.Value, error) {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		c.err = c.Store.CatchUp(ctx)
	})
	if c.err != nil {
		return nil, c.err
	}
	return c.Store.Get(k)
}

// takeover opens the test's offsets topic afresh, as a new process does, with opts on its
// client.
func (e *env) takeover(opts ...kgo.Opt) *catchingUp {
	e.t.Helper()
	var s *offsets.Store
	var err error
	// A topic just created may not be described yet: try for a while.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		s, err = offsets.Open(context.Background(), e.brokers, e.db+"-offsets", offsets.Partitions(1),
			offsets.ClientOptions(opts...), offsets.Logger(slog.New(slog.NewTextHandler(testLogOutput(), nil))))
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(s.Close)
	return &catchingUp{Store: s}
}

// deliveredOnce checks that got holds n distinct documents, each exactly once.
func deliveredOnce(t *testing.T, got []rec, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range got {
		seen[r.key]++
	}
	if len(seen) != n {
		t.Fatalf("%d distinct documents downstream, want %d", len(seen), n)
	}
	for k, c := range seen {
		if c != 1 {
			t.Fatalf("document %s delivered %d times, want once (%d records in all)", k, c, len(got))
		}
	}
}

// lastStable is the last stable offset of partition 0 of topic: below it, every
// transaction is decided.
func lastStable(ctx context.Context, adm *kadm.Client, topic string) (int64, error) {
	return partitionOffset(ctx, adm.ListCommittedOffsets, topic)
}

// hanging reports whether a transaction is open on partition 0 of topic.
func (e *env) hanging(topic string) bool {
	e.t.Helper()
	ctx := context.Background()
	adm := kadm.NewClient(e.kafka)
	stable, err := lastStable(ctx, adm, topic)
	if err != nil {
		e.t.Fatal(err)
	}
	end, err := endOffset(ctx, adm, topic)
	if err != nil {
		e.t.Fatal(err)
	}
	return stable < end
}

func TestExactlyOnceTaskKilledMidStreamDeliversEveryChangeOnceAfterItsRestart(t *testing.T) {
	const docs = 600
	e := newEnv(t)
	coll := e.mongo.Database(e.db).Collection("eos")
	cfg := e.connector(map[string]string{"snapshot.mode": "never", "exactly.once": "true"})
	// A's process dies with its producer and its offsets store. The kill reaches the store's
	// connections first and the producer's a moment later: transactions still commit in
	// between, the very moment at which at-least-once delivers their records again.
	// The shutdown timeout also bounds each transaction's commit: a loaded machine (the race
	// detector, other packages' tests on the same broker) needs seconds for the first commit
	// to a new offsets topic, and a task whose commit times out fails, which is not what this
	// test is about. It only makes the killed task take longer to give up.
	producer, store := &cutter{}, &cutter{}
	e.txnOpts, e.shutdownTimeout = []kgo.Opt{kgo.Dialer(producer.dial)}, 10*time.Second
	e.store = e.takeover(kgo.Dialer(store.dial))
	a := e.run(cfg, "eos", 0, 1, "A")
	defer func() { _ = a.stop() }() // it fails by itself once killed
	time.Sleep(time.Second)         // the stream is open before the first write

	written := make(chan struct{})
	go func() {
		defer close(written)
		for i := 0; i < docs; i += 10 {
			var batch []any
			for j := i; j < i+10; j++ {
				batch = append(batch, bson.D{{Key: "_id", Value: int64(j)}})
			}
			if _, err := coll.InsertMany(context.Background(), batch); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	e.consume(a.topic, 100)
	store.kill() // mid-stream, with writes going on
	time.Sleep(100 * time.Millisecond)
	producer.kill() // its open transaction hangs

	e.txnOpts, e.store = nil, e.takeover()
	b := e.run(cfg, "eos", 0, 1, "B")
	defer func() {
		if err := b.stop(); err != nil {
			t.Errorf("clean stop: %v", err)
		}
	}()
	<-written
	deliveredOnce(t, e.consumeSettled(a.topic, docs, 3*time.Second), docs)
}

func TestExactlyOnceTaskFencedByANewOwnerCommitsNoOffsetPastItsLastTransaction(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	coll := e.mongo.Database(e.db).Collection("fenced")
	cfg := e.connector(map[string]string{"snapshot.mode": "never", "exactly.once": "true"})
	spec := tasks.Spec{Connector: cfg, DB: e.db, Coll: "fenced", Shard: 0, Shards: 1}
	a := e.run(cfg, "fenced", 0, 1, "A")
	time.Sleep(time.Second)
	insertInts(t, coll, 0, 50)
	e.consume(a.topic, 50)

	// A second owner initialises the ids: every transaction of A's from now on fails.
	owner := tasks.Transactional{ClientOpts: []kgo.Opt{kgo.SeedBrokers(e.brokers...)}}
	if err := owner.Fence(ctx, e.txnID(spec.Name())); err != nil {
		t.Fatal(err)
	}
	stream, err := coll.Watch(ctx, mongo.Pipeline{})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close(ctx)
	insertInts(t, coll, 50, 100)
	if !stream.Next(ctx) {
		t.Fatalf("no change event: %v", stream.Err())
	}
	fenced, err := resumetoken.Decode(stream.Current.Lookup("_id", "_data").StringValue())
	if err != nil {
		t.Fatal(err)
	}
	if errA, ok := a.exited(20 * time.Second); !ok || errA == nil {
		t.Fatalf("fenced owner: Run() = %v (stopped by itself: %v), want a failure", errA, ok)
	}

	// Neither the topic, read_committed, nor A's own store holds a position past the fence.
	key := offsets.ShardKey(cfg.Name, e.db, "fenced", 0, 1)
	fresh := e.takeover()
	for name, store := range map[string]tasks.OffsetStore{"the offsets topic": fresh, "the fenced task's store": e.offsets} {
		v, err := store.Get(key)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		pos, err := v.Position()
		if err != nil {
			t.Fatal(err)
		}
		if resumetoken.Compare(pos, fenced) >= 0 {
			t.Fatalf("%s holds position %s, at or past the first change after the fence (%s)", name, pos, fenced)
		}
	}

	e.store = fresh
	b := e.run(cfg, "fenced", 0, 1, "B")
	defer b.stop()
	deliveredOnce(t, e.consumeSettled(a.topic, 100, 3*time.Second), 100)
}

func TestExactlyOnceTasksOfANewShardCountFenceTheHangingTransactionOfARetiredShard(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	coll := e.mongo.Database(e.db).Collection("retired")
	cfg2 := e.connector(map[string]string{"shards": "2", "snapshot.mode": "never", "exactly.once": "true"})
	topic, stop := e.startShards(cfg2, "retired", 2)
	time.Sleep(time.Second)
	insertInts(t, coll, 0, 100)
	e.consume(topic, 100)
	stop()

	// Shard 0 of 2 dies mid-transaction on the offsets topic: the transaction hangs, and
	// nothing would run that id again to abort it.
	offsetsTopic := e.db + "-offsets"
	killer := &cutter{}
	old, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.Dialer(killer.dial),
		kgo.TransactionalID(e.txnID(taskid.ShardName(e.db, "retired", 0, 2))), kgo.TransactionTimeout(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	unrelated := offsets.ShardKey("another-connector", e.db, "x", 0, 1)
	if err := old.ProduceSync(ctx, &kgo.Record{Topic: offsetsTopic, Key: unrelated.Bytes()}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	killer.kill()
	if !e.hanging(offsetsTopic) {
		t.Fatal("no transaction hangs on the offsets topic")
	}

	// The 3 new shards fence the 2 retired ids before reading offsets: no wait for the
	// brokers' timeout, and the offsets topic is readable again.
	e.store = e.takeover()
	cfg3 := e.connector(map[string]string{"shards": "3", "snapshot.mode": "never", "exactly.once": "true"})
	_, stop = e.startShards(cfg3, "retired", 3)
	defer stop()
	insertInts(t, coll, 100, 200)
	deliveredOnce(t, e.consumeSettled(topic, 200, 3*time.Second), 200)
	// The new tasks' own transactions come and go; none stays open.
	for deadline := time.Now().Add(5 * time.Second); e.hanging(offsetsTopic); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a transaction still hangs on the offsets topic")
		}
	}
}
