package tasks

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/taskmetrics"
)

func TestExactlyOnceTaskWritesEveryOffsetInsideATransaction(t *testing.T) {
	cfg := testConfig(t, map[string]string{"snapshot.mode": "never", "exactly.once": "true"})
	m := &fakeMongo{batches: []fakeBatch{
		{events: []bson.Raw{changeInsert(100, 1), changeInsert(101, 2)}, token: tokenAt(101, 1)},
		{events: []bson.Raw{changeInsert(102, 3)}, token: tokenAt(102, 1)},
	}}
	brokers, store, _, stop := runTask(t, cfg, m)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	key := offsets.ShardKey(cfg.Name, "db", "coll", 0, 1)
	awaitOffset(ctx, t, store, key, 102)
	// Idle positions follow every heartbeat.interval.ms (100ms here), in transactions too.
	time.Sleep(300 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatalf("clean stop: %v", err)
	}

	// Read uncommitted: every offset record of the task, idle ones included, was written in
	// a transaction, and none outside one.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("offsets"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var mine, transactional int
	for n := -1; n != 0 && ctx.Err() == nil; {
		pollCtx, stopPoll := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := cl.PollFetches(pollCtx)
		stopPoll()
		n = fs.NumRecords()
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) == string(key.Bytes()) {
				mine++
				if r.Attrs.IsTransactional() {
					transactional++
				}
			}
		})
	}
	if mine < 2 || transactional != mine {
		t.Fatalf("%d offset records of the task, %d of them transactional; want at least 2, all transactional", mine, transactional)
	}
	// The position is what a read_committed reader of the topic finds.
	fresh, err := offsets.Open(ctx, brokers, "offsets", offsets.Logger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if v, err := fresh.Get(key); err != nil || v.ClusterTime.T < 102 {
		t.Fatalf("offset read committed = %+v (%v), want at least the last batch's position", v, err)
	}
}

// commitOnly is an offsets store that cannot write offsets in a transaction.
type commitOnly struct{ OffsetStore }

func TestExactlyOnceTaskRefusesAnOffsetsStoreThatCannotWriteInItsTransaction(t *testing.T) {
	spec := Spec{Connector: testConfig(t, map[string]string{"exactly.once": "true"}), DB: "db", Coll: "coll", Shards: 1}
	task := newTask(spec, Deps{Logger: quietLogger(), Offsets: commitOnly{},
		Transactional: &Transactional{ID: "unused", ClientOpts: []kgo.Opt{kgo.SeedBrokers("127.0.0.1:1")}}}, &fakeMongo{})
	if err := task.Run(context.Background()); !errors.Is(err, ErrNoTxnOffsets) {
		t.Fatalf("Run() = %v, want ErrNoTxnOffsets", err)
	}
}

// The offset records go in the transaction, the newest of each key only, and the store learns
// them only once the transaction commits; the commit loop is left nothing to write.
func TestExactlyOnceStoreLearnsTheNewestOffsetOfEachKeyOnlyOnceItsTransactionCommits(t *testing.T) {
	tests := []struct {
		name   string
		commit bool
	}{
		{"commit", true},
		{"abort", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			brokers, store := testKafka(t, "records")
			w := &kafkaWriter{cfg: &config.Config{MaxBatchSize: 1000, ExactlyOnce: true, HeartbeatInterval: time.Hour}, metrics: new(taskmetrics.Unit),
				acks: newAckTracker[checkpoint](nil), shutdownTimeout: 10 * time.Second, txnOffsets: store, log: quietLogger()}
			if err := w.openTxn(ctx, &Transactional{ID: "eos-" + tt.name, ClientOpts: []kgo.Opt{kgo.SeedBrokers(brokers...)}}); err != nil {
				t.Fatal(err)
			}
			defer w.txn.close()
			a, b := offsets.ShardKey("c", "db", "coll", 0, 2), offsets.ShardKey("c", "db", "coll", 1, 2)
			for _, cp := range []checkpoint{{key: a, value: at(t, 100)}, {key: a, value: at(t, 101)}, {key: b, value: at(t, 102)}} {
				g := w.acks.Open()
				if err := w.beforeProduce(ctx); err != nil {
					t.Fatal(err)
				}
				g.Add()
				w.txn.cl.Produce(ctx, &kgo.Record{Topic: "records", Value: []byte("v")}, g.Promise())
				if err := w.seal(ctx, g, cp, true, false); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := store.Get(a); !errors.Is(err, offsets.ErrNotFound) {
				t.Fatalf("the store knows an offset of the open transaction: %v", err)
			}
			if err := w.endTxn(ctx, tt.commit); err != nil {
				t.Fatal(err)
			}
			if err := w.drain(ctx); err != nil {
				t.Fatal(err)
			}
			fresh, err := offsets.Open(ctx, brokers, "offsets", offsets.Logger(quietLogger()))
			if err != nil {
				t.Fatal(err)
			}
			defer fresh.Close()
			for name, s := range map[string]OffsetStore{"the writer's store": store, "the topic read committed": fresh} {
				for key, want := range map[offsets.Key]uint32{a: 101, b: 102} {
					v, err := s.Get(key)
					switch {
					case !tt.commit && !errors.Is(err, offsets.ErrNotFound):
						t.Errorf("%s: %s = %+v (%v) after an abort, want none", name, key, v, err)
					case tt.commit && (err != nil || v.ClusterTime.T != want):
						t.Errorf("%s: %s = %+v (%v), want the position at %d", name, key, v, err, want)
					}
				}
			}
			if _, ok, err := w.acks.Committable(); ok || err != nil {
				t.Errorf("the commit loop got a checkpoint (err %v): it was committed in the transaction", err)
			}
		})
	}
}
