//go:build e2e

package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/e2e/internal/clusterapi"
	"github.com/mongorelay/mongorelay/e2e/internal/traffic"
	"github.com/mongorelay/mongorelay/internal/testenv"
)

// TestTasksMaxSharesCollectionShards runs a connector of 3 collections × 2 shards with
// tasks.max=2 on a one-node cluster: the connector has 2 tasks, which between them run all 6
// collection shards (each with its own stream and producer), and every write made once they
// all stream reaches Kafka from the shard its _id hashes to.
func TestTasksMaxSharesCollectionShards(t *testing.T) {
	const colls, shardsPer, tasksMax = 3, 2, 2
	kafka, mongoURI := testenv.Kafka(t), testenv.Mongo(t)
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	db, prefix, name := "e2et_"+run, "e2et"+run, "capped"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	mc, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	var collections []*mongo.Collection
	var topics []string
	for i := range colls {
		c := mc.Database(db).Collection(fmt.Sprintf("c%d", i))
		if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "seed"}}); err != nil {
			t.Fatalf("seed %s: %v", c.Name(), err)
		}
		collections = append(collections, c)
		topics = append(topics, fmt.Sprintf("%s.%s.c%d", prefix, db, i))
	}
	t.Cleanup(func() { _ = mc.Database(db).Drop(context.Background()) })

	logDir := filepath.Join("..", "..", ".cache", "test-logs", "e2e-cluster-tasksmax")
	_ = os.RemoveAll(logDir)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	n := newNode(t, "n1", logDir)
	n.args = nodeArgs(n, "e2et-"+run, kafka, "--bootstrap")
	t.Cleanup(func() {
		n.cleanup()
		if t.Failed() {
			t.Logf("node log kept in %s", logDir)
		}
	})
	n.start(t)
	clusterapi.WaitFor(t, 30*time.Second, "n1 leading its cluster", func() (bool, string) {
		ov, err := clusterapi.GetOverview(n.http)
		return err == nil && ov.Leader == n.id, fmt.Sprint(ov.Leader, err)
	})

	config := clusterapi.ConnectorConfig(mongoURI, db, prefix, shardsPer)
	config["tasks.max"] = fmt.Sprint(tasksMax)
	body := map[string]any{"name": name, "config": config}
	if _, err := clusterapi.Call(ctx, http.MethodPost, n.http, "/connectors", body, nil); err != nil {
		t.Fatal(err)
	}
	clusterapi.WaitFor(t, 60*time.Second, fmt.Sprintf("%d tasks RUNNING", tasksMax), func() (bool, string) {
		st, err := clusterapi.GetStatus(n.http, name)
		running := 0
		for _, task := range st.Tasks {
			if task.State == "RUNNING" {
				running++
			}
		}
		return err == nil && len(st.Tasks) == tasksMax && running == tasksMax, fmt.Sprintf("%+v %v", st.Tasks, err)
	})

	var configs []struct {
		Config map[string]string `json:"config"`
	}
	if _, err := clusterapi.Call(ctx, http.MethodGet, n.http, "/connectors/"+name+"/tasks", nil, &configs); err != nil {
		t.Fatal(err)
	}
	var shared, want []string
	for _, c := range configs {
		shared = append(shared, strings.Split(c.Config["task.collection.shards"], ",")...)
	}
	for i := range colls {
		for s := range shardsPer {
			want = append(want, fmt.Sprintf("%s.c%d#%d-of-%d", db, i, s, shardsPer))
		}
	}
	slices.Sort(shared)
	if !slices.Equal(shared, want) {
		t.Fatalf("the %d tasks run collection shards %q, want each of %q once", len(configs), shared, want)
	}

	cons := newConsumer(t, strings.Split(kafka, ","), topics)
	go cons.Run(ctx)
	w := traffic.NewWriter(collections, topics, 300)
	writeCtx, stopWriting := context.WithCancel(ctx)
	defer stopWriting()
	go w.Run(writeCtx)
	units := colls * shardsPer
	clusterapi.WaitFor(t, 30*time.Second, "a record from every collection shard", func() (bool, string) {
		seen := cons.TasksSeen()
		return len(seen) >= units, fmt.Sprintf("%d of %d seen: %v", len(seen), units, seen)
	})
	time.Sleep(time.Second) // every shard has committed a position past its first records
	counted := w.Mark()
	time.Sleep(2 * time.Second)
	stopWriting()
	written := w.Since(counted)
	clusterapi.WaitFor(t, 30*time.Second, "every write on Kafka", func() (bool, string) {
		missing := cons.Missing(written)
		return len(missing) == 0, fmt.Sprintf("%d of %d writes missing, e.g. %v", len(missing), len(written), missing[:min(5, len(missing))])
	})
	if failed := n.logLines("task FAILED"); len(failed) > 0 {
		t.Errorf("tasks failed: %v", failed)
	}
	t.Logf("%d tasks ran %d collection shards; all %d writes made once they streamed are on Kafka (%d records consumed)",
		tasksMax, units, len(written), cons.Count())
}
