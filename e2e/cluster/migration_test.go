//go:build e2e

package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/e2e/internal/clusterapi"
	"github.com/mongorelay/mongorelay/internal/testenv"
)

// TestOffsetsMoveAStream is issue 17's migration acceptance, as a user moving from another
// connector or recovering from lost history does it: batch P is written and streamed, then
// batch A; the connector is stopped, its offset PATCHed to a cluster time after P and before A
// (the one GET showed once P had arrived), and resumed: A arrives again, and P does not.
func TestOffsetsMoveAStream(t *testing.T) {
	kafka, mongoURI := testenv.Kafka(t), testenv.Mongo(t)
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	db, prefix := "e2emig_"+run, "e2emig"+run
	topic := prefix + "." + db + ".orders"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	logDir := filepath.Join("..", "..", ".cache", "test-logs", "e2e-cluster-migration")
	_ = os.RemoveAll(logDir)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	n := newNode(t, "m1", logDir)
	n.args = nodeArgs(n, "e2emig-"+run, kafka, "--bootstrap")
	all := []*node{n}
	cleanUpNodes(t, logDir, &all)
	n.start(t)
	waitLeader(t, n)

	mc, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Disconnect(context.Background())
	coll := mc.Database(db).Collection("orders")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "seed"}}); err != nil {
		t.Fatal(err)
	}
	config := clusterapi.ConnectorConfig(mongoURI, db, prefix, 1)
	if status, err := clusterapi.Call(ctx, http.MethodPost, n.http, "/connectors", map[string]any{"name": "mig", "config": config}, nil); status != http.StatusCreated {
		t.Fatalf("POST /connectors = %d, %v", status, err)
	}
	state := func(want string) {
		t.Helper()
		clusterapi.WaitFor(t, 60*time.Second, "connector mig and its task "+want, func() (bool, string) {
			var st struct {
				Connector struct{ State string }   `json:"connector"`
				Tasks     []struct{ State string } `json:"tasks"`
			}
			status, err := clusterapi.Call(ctx, http.MethodGet, n.http, "/connectors/mig/status", nil, &st)
			ok := status == http.StatusOK && st.Connector.State == want && (want == "STOPPED" || len(st.Tasks) == 1 && st.Tasks[0].State == want)
			return ok, fmt.Sprint(status, st, err)
		})
	}
	state("RUNNING")

	cons := newConsumer(t, []string{kafka}, []string{topic})
	consCtx, stopCons := context.WithCancel(ctx)
	defer stopCons()
	go cons.Run(consCtx)
	insert := func(batch string) map[string]string {
		ids := map[string]string{}
		var docs []any
		for i := range 20 {
			id := fmt.Sprintf("%s%02d", batch, i)
			ids[id] = topic
			docs = append(docs, bson.D{{Key: "_id", Value: id}, {Key: "batch", Value: batch}})
		}
		if _, err := coll.InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	arrived := func(what string, ids map[string]string, times int) {
		t.Helper()
		clusterapi.WaitFor(t, 60*time.Second, what, func() (bool, string) {
			got := cons.Arrivals(ids)
			return got == times*len(ids), fmt.Sprintf("%d of %d records", got, times*len(ids))
		})
	}

	p := insert("p")
	arrived("batch P on Kafka", p, 1)
	// The offset committed once P arrived: a position after P, before A.
	type offset struct {
		Partition json.RawMessage `json:"partition"`
		Offset    struct {
			ClusterTime *struct{ T, I uint32 } `json:"cluster_time"`
		} `json:"offset"`
	}
	var afterP offset
	clusterapi.WaitFor(t, 30*time.Second, "an offset committed after batch P", func() (bool, string) {
		var got struct {
			Offsets []offset `json:"offsets"`
		}
		status, err := clusterapi.Call(ctx, http.MethodGet, n.http, "/connectors/mig/offsets", nil, &got)
		if status != http.StatusOK || len(got.Offsets) != 1 || got.Offsets[0].Offset.ClusterTime == nil {
			return false, fmt.Sprint(status, got, err)
		}
		afterP = got.Offsets[0]
		return true, ""
	})
	t.Logf("after P: partition %s, cluster time %+v", afterP.Partition, *afterP.Offset.ClusterTime)
	a := insert("a")
	arrived("batch A on Kafka", a, 1)

	if status, err := clusterapi.Call(ctx, http.MethodPut, n.http, "/connectors/mig/stop", nil, nil); status != http.StatusNoContent {
		t.Fatalf("PUT /connectors/mig/stop = %d, %v", status, err)
	}
	state("STOPPED")
	patch := map[string]any{"offsets": []map[string]any{{
		"partition": afterP.Partition,
		"offset":    map[string]any{"cluster_time": map[string]uint32{"t": afterP.Offset.ClusterTime.T, "i": afterP.Offset.ClusterTime.I}},
	}}}
	var msg struct{ Message string }
	if status, err := clusterapi.Call(ctx, http.MethodPatch, n.http, "/connectors/mig/offsets", patch, &msg); status != http.StatusOK {
		t.Fatalf("PATCH /connectors/mig/offsets = %d %+v, %v", status, msg, err)
	}
	if status, err := clusterapi.Call(ctx, http.MethodPut, n.http, "/connectors/mig/resume", nil, nil); status != http.StatusAccepted {
		t.Fatalf("PUT /connectors/mig/resume = %d, %v", status, err)
	}
	state("RUNNING")
	arrived("batch A on Kafka again", a, 2)
	// Anything streamed again from before the cluster time arrives before A does: P has had
	// its chance. A batch written now marks the end of what the resumed stream reads.
	z := insert("z")
	arrived("batch Z on Kafka", z, 1)
	if got := cons.Arrivals(p); got != len(p) {
		t.Errorf("batch P, written before the cluster time, arrived %d times in all, want %d (once)", got, len(p))
	}
	if got := cons.Arrivals(map[string]string{`"seed"`: topic, "seed": topic}); got != 0 {
		t.Errorf("the seed document, inserted before the connector, arrived %d times", got)
	}
	if lines := n.logLines("level=ERROR"); len(lines) > 0 {
		t.Logf("errors logged: %s", strings.Join(lines, "\n"))
	}
}
