package tasks

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/internal/testenv"
	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/taskmetrics"
)

// After an abort, successful or not, no checkpoint of the aborted records may be committed;
// after a commit, every one is. A commit decided as the task is being stopped is carried out:
// cancelled halfway, its outcome would be unknown, and committed records whose checkpoint was
// dropped are delivered again.
func TestEndTxnSealsCheckpointsOnlyAfterACommit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	brokers, topic := txnTestTopic(ctx, t, "txntest")

	tests := []struct {
		name     string
		commit   bool
		stopping bool // the task's context is cancelled when the transaction ends
	}{
		{"abort", false, false},
		{"commit", true, false},
		{"abort while stopping", false, true},
		{"commit while stopping", true, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			commit := tt.commit
			task := newTxnTestTask(ctx, t, brokers, fmt.Sprintf("%s-%d", topic, i))
			g := task.acks.Open()
			if err := task.beforeProduce(ctx); err != nil {
				t.Fatal(err)
			}
			g.Add()
			task.txn.cl.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}, g.Promise())
			if err := task.seal(ctx, g, checkpoint{}, true, false); err != nil {
				t.Fatal(err)
			}
			endCtx, stop := context.WithCancel(ctx)
			if tt.stopping {
				stop()
			}
			err := task.endTxn(endCtx, commit)
			stop()
			if err != nil {
				t.Fatal(err)
			}
			if err := task.drain(ctx); err != nil {
				t.Fatal(err)
			}
			_, ok, err := task.acks.Committable()
			if err != nil || ok != commit {
				t.Fatalf("after endTxn(commit=%v): checkpoint committable = %v (err %v), want %v", commit, ok, err, commit)
			}
		})
	}
}

// A stop fails the records still buffered (they are produced with the task's context). They
// belong to the open transaction: it must abort rather than commit without them, the stop is
// no task failure, and the checkpoints of earlier transactions stay committable.
func TestStopAbortsTheTransactionItCutShort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	brokers, topic := txnTestTopic(ctx, t, "txnstop")

	task := newTxnTestTask(ctx, t, brokers, topic)
	task.acks.stopDrops = true
	batch := func(ctx context.Context, shard int) error {
		g := task.acks.Open()
		if err := task.beforeProduce(ctx); err != nil {
			return err
		}
		g.Add()
		task.txn.cl.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}, g.Promise())
		cp := checkpoint{key: offsets.ShardKey("c", "db", "coll", shard, 2)}
		return task.seal(ctx, g, cp, true, true) // caught up: commit now
	}
	if err := batch(ctx, 0); err != nil {
		t.Fatalf("first transaction: %v", err)
	}
	stopped, stop := context.WithCancel(ctx)
	stop()
	if err := batch(stopped, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("transaction cut short by the stop: %v, want an error wrapping context.Canceled", err)
	}
	if err := task.drain(ctx); err != nil {
		t.Fatalf("drain after the stop: %v (a stop is not a produce failure)", err)
	}
	cp, ok, err := task.acks.Committable()
	if err != nil || !ok || cp.key.Index != 0 {
		t.Fatalf("committable after the stop: %+v %v %v, want the first transaction's checkpoint only", cp.key, ok, err)
	}
}

// A task's transactions alternate between its two transactional ids, so that one never waits
// for the commit markers of the one before (Transactional). Fencing the task's id fences both:
// a paused owner that wakes up can write under neither.
func TestTransactionsAlternateIDsAndAFenceStopsBoth(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	brokers, topic := txnTestTopic(ctx, t, "txnalt")
	task := newTxnTestTask(ctx, t, brokers, topic)
	transaction := func(cl *kgo.Client) error {
		if err := cl.BeginTransaction(); err != nil {
			return err
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr(); err != nil {
			_ = cl.EndTransaction(ctx, kgo.TryAbort)
			return err
		}
		return cl.EndTransaction(ctx, kgo.TryCommit)
	}

	ids := TransactionalIDs(topic)
	for i := range 4 {
		want := ids[i%2]
		if got := task.txn.cl.OptValue(kgo.TransactionalID); got != want {
			t.Fatalf("transaction %d runs under %v, want %s", i, got, want)
		}
		g := task.acks.Open()
		if err := task.beforeProduce(ctx); err != nil {
			t.Fatal(err)
		}
		g.Add()
		task.txn.cl.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}, g.Promise())
		if err := task.seal(ctx, g, checkpoint{key: offsets.ShardKey("c", "db", "coll", 0, 1)}, true, true); err != nil {
			t.Fatalf("transaction %d: %v", i, err)
		}
	}

	if err := (&Transactional{ClientOpts: []kgo.Opt{kgo.SeedBrokers(brokers)}}).Fence(ctx, topic); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*kgo.Client{task.txn.cl, task.txn.rested} {
		if err := transaction(cl); err == nil {
			t.Fatalf("%v committed a transaction after the fence", cl.OptValue(kgo.TransactionalID))
		}
	}
}

// txnTestTopic creates a one-partition topic named after prefix, removed after the test.
func txnTestTopic(ctx context.Context, t *testing.T, prefix string) (brokers, topic string) {
	t.Helper()
	brokers = testenv.Kafka(t)
	topic = fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	admin, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	adm := kadm.NewClient(admin)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), topic) })
	return brokers, topic
}

// newTxnTestTask is a Kafka writer with just what its transactions need, its producer
// initialised as id.
func newTxnTestTask(ctx context.Context, t *testing.T, brokers, id string) *kafkaWriter {
	t.Helper()
	task := &kafkaWriter{cfg: &config.Config{MaxBatchSize: 1000}, acks: newAckTracker[checkpoint](nil), metrics: new(taskmetrics.Unit),
		shutdownTimeout: 30 * time.Second}
	if err := task.openTxn(ctx, &Transactional{ID: id, ClientOpts: []kgo.Opt{kgo.SeedBrokers(brokers)}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(task.txn.close)
	return task
}

// A produce answered with CONCURRENT_TRANSACTIONS is retried after a metadata refresh: the
// transactional producers must not keep franz-go's 5 s between refreshes, which stalled a
// task's records (and its clean stop) for seconds.
func TestTransactionalProducersRetrySoon(t *testing.T) {
	tr := &Transactional{ClientOpts: []kgo.Opt{kgo.SeedBrokers("127.0.0.1:1")}}
	cl, err := kgo.NewClient(tr.clientOpts("id")...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if got := cl.OptValue(kgo.MetadataMinAge); got != txnRetryBackoff {
		t.Errorf("metadata min age %v, want %v", got, txnRetryBackoff)
	}
}
