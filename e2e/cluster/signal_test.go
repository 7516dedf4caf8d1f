//go:build e2e

package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/e2e/internal/clusterapi"
	"github.com/mongorelay/mongorelay/internal/testenv"
	"github.com/mongorelay/mongorelay/tasks/shard"
)

// TestASignalReadOnAFollowerIsRecordedByTheLeader runs a 2-node cluster whose connector has a
// signal collection (signal.data.collection) in 2 shards, one task on each node, and inserts
// an execute-snapshot signal that the follower's task reads: the follower sends it to the
// leader, which records the request once, and both shards of the collection it names copy it
// while they stream.
func TestASignalReadOnAFollowerIsRecordedByTheLeader(t *testing.T) {
	const shards = 2
	kafka, mongoURI := testenv.Kafka(t), testenv.Mongo(t)
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	db, prefix, name := "e2es_"+run, "e2es"+run, "signalled"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	mc, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	target, signals := mc.Database(db).Collection("target"), mc.Database(db).Collection("signals")
	for i := range 200 {
		if _, err := target.InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: i}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := mc.Database(db).CreateCollection(ctx, "signals"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Database(db).Drop(context.Background()) })

	logDir := filepath.Join("..", "..", ".cache", "test-logs", "e2e-cluster-signal")
	_ = os.RemoveAll(logDir)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	nodes := []*node{newNode(t, "n1", logDir), newNode(t, "n2", logDir)}
	var peers []string
	for _, n := range nodes {
		peers = append(peers, n.id+"="+n.raft+"="+n.http)
	}
	for i, n := range nodes {
		n.args = nodeArgs(n, "e2es-"+run, kafka, "--peers", strings.Join(peers, ","))
		if i == 0 {
			n.args = append(n.args, "--bootstrap")
		}
	}
	cleanUpNodes(t, logDir, &nodes)
	for _, n := range nodes {
		n.start(t)
	}
	var leader *node
	clusterapi.WaitFor(t, 60*time.Second, "a leader", func() (bool, string) {
		ov, err := clusterapi.GetOverview(nodes[0].http)
		for _, n := range nodes {
			if err == nil && ov.Leader == n.id {
				leader = n
			}
		}
		return leader != nil, fmt.Sprint(ov.Leader, err)
	})

	config := clusterapi.ConnectorConfig(mongoURI, db, prefix, shards)
	config["signal.data.collection"] = db + ".signals"
	config["max.batch.size"] = "50"
	if _, err := clusterapi.Call(ctx, http.MethodPost, leader.http, "/connectors", map[string]any{"name": name, "config": config}, nil); err != nil {
		t.Fatal(err)
	}
	var owners map[string]string
	clusterapi.WaitFor(t, 90*time.Second, "4 tasks RUNNING, on both nodes", func() (bool, string) {
		st, err := clusterapi.GetStatus(leader.http, name)
		running := 0
		for _, task := range st.Tasks {
			if task.State == "RUNNING" {
				running++
			}
		}
		ov, ovErr := clusterapi.GetOverview(leader.http)
		owners = ov.Owners()
		return err == nil && ovErr == nil && running == 4 && len(ov.PerNode()) == 2, fmt.Sprintf("%+v %v %v", st.Tasks, owners, err)
	})
	// A signal _id of the shard whose task runs on the follower.
	var signalID string
	for i := 0; signalID == ""; i++ {
		id := fmt.Sprintf("ad-hoc-%d", i)
		raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}})
		s, err := shard.ForID(bson.Raw(raw).Lookup("_id"), shards)
		if err != nil {
			t.Fatal(err)
		}
		if owner := owners[fmt.Sprintf("%s/%s.signals#%d-of-%d", name, db, s, shards)]; owner != "" && owner != leader.id {
			signalID = id
		}
	}
	// Every task streams before the signal: a task that starts streaming after a request was
	// recorded takes it as done (its own start covered it).
	clusterapi.WaitFor(t, 60*time.Second, "every task streaming", func() (bool, string) {
		streaming := 0
		for _, line := range strings.Split(logsOf(nodes...), "\n") {
			if strings.Contains(line, `msg=streaming`) && strings.Contains(line, "connector="+name) {
				streaming++
			}
		}
		return streaming >= 4, fmt.Sprintf("%d of 4 tasks streaming", streaming)
	})
	if _, err := signals.InsertOne(ctx, bson.D{{Key: "_id", Value: signalID}, {Key: "type", Value: "execute-snapshot"},
		{Key: "data", Value: bson.D{{Key: "data-collections", Value: bson.A{db + ".target"}}, {Key: "type", Value: "incremental"}}}}); err != nil {
		t.Fatal(err)
	}

	documents := regexp.MustCompile(`documents=(\d+)`)
	clusterapi.WaitFor(t, 60*time.Second, "both shards of target copied, its 200 documents between them", func() (bool, string) {
		copied, docs := 0, 0
		for _, line := range strings.Split(logsOf(nodes...), "\n") {
			if strings.Contains(line, "incremental snapshot copied") && strings.Contains(line, db+".target#") {
				copied++
				if m := documents.FindStringSubmatch(line); m != nil {
					n, _ := strconv.Atoi(m[1])
					docs += n
				}
			}
		}
		return copied == shards && docs == 200, fmt.Sprintf("%d shards copied, %d documents", copied, docs)
	})
	follower := nodes[0]
	if follower == leader {
		follower = nodes[1]
	}
	if !strings.Contains(logsOf(follower), "execute-snapshot signal read") {
		t.Errorf("the follower %s did not read the signal", follower.id)
	}
	if n := strings.Count(logsOf(leader), "ad-hoc snapshot requested"); n != 1 {
		t.Errorf("the leader %s recorded %d snapshot requests, want the signal's once", leader.id, n)
	}
}

// logsOf is what the nodes have logged so far.
func logsOf(nodes ...*node) string {
	var all []string
	for _, n := range nodes {
		b, _ := os.ReadFile(n.logPath)
		all = append(all, string(b))
	}
	return strings.Join(all, "\n")
}
