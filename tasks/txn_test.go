package tasks

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/internal/testenv"
	"github.com/mongorelay/mongorelay/tasks/config"
)

// After an abort, successful or not, no checkpoint of the aborted records may be committed;
// after a commit, every one is.
func TestEndTxnSealsCheckpointsOnlyAfterACommit(t *testing.T) {
	brokers := testenv.Kafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topic := fmt.Sprintf("txntest-%d", time.Now().UnixNano())
	admin, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = adm.DeleteTopics(context.Background(), topic) }()

	for _, commit := range []bool{false, true} {
		t.Run(fmt.Sprintf("commit=%v", commit), func(t *testing.T) {
			task := &Task{cfg: &config.Config{MaxBatchSize: 1000}, acks: newAckTracker[checkpoint](nil)}
			if err := task.openTxn(ctx, &Transactional{ID: topic + fmt.Sprint(commit), ClientOpts: []kgo.Opt{kgo.SeedBrokers(brokers)}}); err != nil {
				t.Fatal(err)
			}
			defer task.txn.cl.Close()
			g := task.acks.Open()
			if err := task.beforeProduce(); err != nil {
				t.Fatal(err)
			}
			g.Add()
			task.producer.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}, g.Promise())
			if err := task.seal(ctx, g, checkpoint{}, true, false); err != nil {
				t.Fatal(err)
			}
			if err := task.endTxn(ctx, commit); err != nil {
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
