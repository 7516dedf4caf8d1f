//go:build e2e

package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/e2e/internal/clusterapi"
	"github.com/mongorelay/mongorelay/e2e/internal/relaybin"
	"github.com/mongorelay/mongorelay/internal/testenv"
)

// panicIDEnv is tasks.PanicIDEnv, which only a testhooks build declares: a task of that binary
// panics converting the document whose string _id it names.
const panicIDEnv = "MONGORELAY_TEST_PANIC_ID"

// testhooksBin builds, once, the mongorelay binary with the testhooks tag, beside the plain one
// (so that TestMain removes it too).
var testhooksBin = sync.OnceValues(func() (string, error) {
	return relaybin.Build(filepath.Dir(mongorelayBin), "testhooks")
})

// TestAPanicFailsItsTaskOnly feeds one task of a node a document that makes it panic (a
// testhooks build): that task goes FAILED with the panic and its stack in its trace, while
// the node stays up, its REST API answers, and its other task goes on streaming.
func TestAPanicFailsItsTaskOnly(t *testing.T) {
	kafka, mongoURI := testenv.Kafka(t), testenv.Mongo(t)
	bin, err := testhooksBin()
	if err != nil {
		t.Fatal(err)
	}
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	db, prefix, name := "e2ep_"+run, "e2ep"+run, "poisoned"
	poison := "poison-" + run
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	mc, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	poisoned, healthy := mc.Database(db).Collection("poisoned"), mc.Database(db).Collection("healthy")
	for _, c := range []*mongo.Collection{poisoned, healthy} {
		if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "seed"}}); err != nil {
			t.Fatalf("seed %s: %v", c.Name(), err)
		}
	}
	t.Cleanup(func() { _ = mc.Database(db).Drop(context.Background()) })

	logDir := filepath.Join("..", "..", ".cache", "test-logs", "e2e-cluster-panic")
	_ = os.RemoveAll(logDir)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	n := newNode(t, "n1", logDir)
	n.bin, n.env = bin, []string{panicIDEnv + "=" + poison}
	n.args = nodeArgs(n, "e2ep-"+run, kafka, "--bootstrap")
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
	body := map[string]any{"name": name, "config": clusterapi.ConnectorConfig(mongoURI, db, prefix, 1)}
	if _, err := clusterapi.Call(ctx, http.MethodPost, n.http, "/connectors", body, nil); err != nil {
		t.Fatal(err)
	}
	clusterapi.WaitFor(t, 30*time.Second, "both tasks RUNNING", func() (bool, string) {
		st, err := clusterapi.GetStatus(n.http, name)
		running := 0
		for _, task := range st.Tasks {
			if task.State == "RUNNING" {
				running++
			}
		}
		return err == nil && len(st.Tasks) == 2 && running == 2, fmt.Sprintf("%+v %v", st.Tasks, err)
	})
	cons := newConsumer(t, strings.Split(kafka, ","), []string{prefix + "." + db + ".poisoned", prefix + "." + db + ".healthy"})
	go cons.Run(ctx)
	// Both streams deliver before the poison, so that what follows is the panic's doing. A
	// task is RUNNING before its stream has opened (snapshot.mode=never streams from then on):
	// each collection gets a new document until one of its arrives.
	var warm [2]map[string]string // per collection, the ids inserted so far
	clusterapi.WaitFor(t, 30*time.Second, "a record from each collection", func() (bool, string) {
		done := true
		for i, c := range []*mongo.Collection{poisoned, healthy} {
			if warm[i] != nil && len(cons.Missing(warm[i])) < len(warm[i]) {
				continue
			}
			done = false
			if warm[i] == nil {
				warm[i] = map[string]string{}
			}
			id := fmt.Sprintf("warm-%d-%d", i, len(warm[i]))
			if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
				t.Fatal(err)
			}
			warm[i][id] = c.Name()
		}
		return done, fmt.Sprintf("%d and %d inserted, none arrived from one of them", len(warm[0]), len(warm[1]))
	})

	if _, err := poisoned.InsertOne(ctx, bson.D{{Key: "_id", Value: poison}}); err != nil {
		t.Fatal(err)
	}
	var trace string
	clusterapi.WaitFor(t, 20*time.Second, "the poisoned task FAILED, the other RUNNING", func() (bool, string) {
		st, err := clusterapi.GetStatus(n.http, name)
		failed, running := 0, 0
		for _, task := range st.Tasks {
			switch task.State {
			case "FAILED":
				failed++
				trace = task.Trace
			case "RUNNING":
				running++
			}
		}
		return err == nil && failed == 1 && running == 1, fmt.Sprintf("%+v %v", st.Tasks, err)
	})
	for _, want := range []string{"task panicked: test hook " + panicIDEnv, poison, "goroutine", "tasks.conversionHook"} {
		if !strings.Contains(trace, want) {
			t.Errorf("the FAILED task's trace lacks %q:\n%s", want, trace)
		}
	}

	probe := map[string]string{"probe-" + run: "healthy"}
	if _, err := healthy.InsertOne(ctx, bson.D{{Key: "_id", Value: "probe-" + run}}); err != nil {
		t.Fatal(err)
	}
	clusterapi.WaitFor(t, 20*time.Second, "the probe record of the healthy collection", func() (bool, string) {
		missing := cons.Missing(probe)
		return len(missing) == 0, fmt.Sprint("missing ", missing)
	})
	if !n.running() {
		t.Fatal("the node exited")
	}
	if _, err := clusterapi.GetOverview(n.http); err != nil {
		t.Fatalf("the node's REST API does not answer: %v", err)
	}
	if got := len(n.logLines("task panicked")); got == 0 {
		t.Error("the node's log does not record the panic")
	}
	// FAILED for good: the same document would panic again, so it is not retried.
	time.Sleep(2 * time.Second)
	if starts := len(n.logLines("task starting")); starts != 2 {
		t.Errorf("%d task starts logged, want 2: the panicking task must not be restarted", starts)
	}
}
