package worker

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// A task of a deleted connector whose node died mid-transaction left it open; the leader's
// fence aborts it, so it no longer holds back the offsets topic, and its writer can no longer
// commit it.
func TestDeletingAConnectorFencesTheTransactionalIDsOfItsTasks(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "offsets"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	shard := taskid.Spec{DB: "db", Coll: "coll", Shard: 1, Shards: 2}
	grouped := taskid.Spec{Members: []taskid.Spec{{DB: "db", Coll: "other", Shard: 0, Shards: 1}, shard}}

	dead, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.TransactionalID(taskid.TransactionalID("cl", "conn", shard.Name())))
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	if err := dead.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := dead.ProduceSync(ctx, &kgo.Record{Topic: "offsets", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	n := &Node{cfg: Config{ClusterID: "cl", TransactionTimeout: time.Minute},
		kafkaOpts: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	n.fenceTasks(ctx, coordinator.Connector{Name: "conn", Tasks: []coordinator.Task{{ID: 0, Spec: grouped}}}, "deleted")

	if err := dead.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("the dead task's transaction committed after the connector's deletion fenced its id")
	}
}
