//go:build e2e

package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/e2e/internal/clusterapi"
	"github.com/mongorelay/mongorelay/internal/proc"
	"github.com/mongorelay/mongorelay/internal/testservers"
	"github.com/mongorelay/mongorelay/tasks/offsets"
)

// TestTwoClustersOnOneKafka runs clusters a and b, one node each, on one private Kafka (DESIGN.md
// 5): b given a's offsets topic refuses to start, naming both ids; with a topic of its own it
// starts, and a connector of the same name in each, on the same collection, streams in both,
// neither fencing the other, each offsets topic holding its own cluster's stamp and keys only.
func TestTwoClustersOnOneKafka(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	work := filepath.Join(root, ".cache", "e2e-cluster-stamp")
	_ = os.RemoveAll(work)
	logDir := filepath.Join(work, "nodes")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg := proc.NewRegistry(filepath.Join(work, "pids"))
	t.Cleanup(func() { reg.StopAll(5 * time.Second) })
	srv, err := testservers.Start(ctx, testservers.Config{Root: root, Work: work,
		KafkaHeap: "1g", StandinHeap: "1g", OplogEntries: 100_000, Logf: t.Logf}, reg)
	if err != nil {
		t.Fatal(err)
	}
	const db, coll, name = "stamp", "orders", "same-name"
	mc, err := mongo.Connect(options.Client().ApplyURI(srv.MongoURI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	orders := mc.Database(db).Collection(coll)
	if _, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: "seed"}}); err != nil {
		t.Fatal(err)
	}

	args := func(n *node, id, offsetsTopic string) []string {
		return []string{"--node-id", n.id, "--data-dir", n.dataDir, "--cluster-id", id,
			"--http-listen", n.http, "--raft-listen", n.raft, "--registry-listen", n.registry,
			"--kafka", srv.KafkaAddr, "--offsets-topic", offsetsTopic, "--bootstrap"}
	}
	a, b := newNode(t, "a1", logDir), newNode(t, "b1", logDir)
	t.Cleanup(func() {
		a.cleanup()
		b.cleanup()
		if t.Failed() {
			t.Logf("logs kept in %s", work)
		}
	})
	a.args = args(a, "a", "a-offsets")
	a.start(t)
	waitLeader(t, a)

	// b on a's offsets topic: refused, both ids named.
	b.args = args(b, "b", "a-offsets")
	b.start(t)
	b.wait(t, 30*time.Second)
	refusal := strings.Join(b.logLines("stamped by cluster"), "\n")
	for _, want := range []string{`worker config "offsets.topic"`, `cluster "a"`, `cluster.id "b"`, "a-offsets-b"} {
		if !strings.Contains(refusal, want) {
			t.Fatalf("b's refusal does not say %s: %q", want, refusal)
		}
	}

	// b on its own topic starts; a connector of the same name in each cluster.
	b.args = args(b, "b", "b-offsets")
	b.start(t)
	waitLeader(t, b)
	for _, n := range []*node{a, b} {
		body := map[string]any{"name": name, "config": clusterapi.ConnectorConfig(srv.MongoURI, db, "p"+n.id, 1)}
		if _, err := clusterapi.Call(ctx, http.MethodPost, n.http, "/connectors", body, nil); err != nil {
			t.Fatal(err)
		}
	}
	cons := newConsumer(t, []string{srv.KafkaAddr}, []string{"pa1." + db + "." + coll, "pb1." + db + "." + coll})
	go cons.Run(ctx)
	// Both streams deliver: a new document until one arrives on each cluster's topic.
	ids := map[string]string{}
	clusterapi.WaitFor(t, 30*time.Second, "records from both clusters", func() (bool, string) {
		id := fmt.Sprintf("doc-%d", len(ids))
		if _, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
			t.Fatal(err)
		}
		ids[id] = coll
		seen := cons.TopicsOf(ids)
		return len(seen) == 2, fmt.Sprintf("%d inserted, topics seen: %v", len(ids), seen)
	})
	// Some more: both keep streaming, so neither was fenced.
	more := map[string]string{}
	for i := range 5 {
		id := fmt.Sprintf("more-%d", i)
		if _, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
			t.Fatal(err)
		}
		more[id] = coll
	}
	clusterapi.WaitFor(t, 30*time.Second, "the later records in both clusters' topics", func() (bool, string) {
		n := cons.Arrivals(more)
		return n == 2*len(more), fmt.Sprintf("%d of %d", n, 2*len(more))
	})
	for _, n := range []*node{a, b} {
		clusterapi.WaitFor(t, 10*time.Second, n.id+"'s task RUNNING", func() (bool, string) {
			st, err := clusterapi.GetStatus(n.http, name)
			return err == nil && len(st.Tasks) == 1 && st.Tasks[0].State == "RUNNING", fmt.Sprintf("%+v %v", st.Tasks, err)
		})
	}

	// Each offsets topic: its cluster's stamp and its connector's keys only (a heartbeat has
	// committed a position by now: heartbeat.interval.ms=1000).
	time.Sleep(1500 * time.Millisecond)
	for _, c := range []struct{ topic, id string }{{"a-offsets", "a"}, {"b-offsets", "b"}} {
		stamps, keys := readOffsetsTopic(t, ctx, srv.KafkaAddr, c.topic)
		if !slices.Equal(stamps, []string{c.id}) {
			t.Errorf("%s: stamps %q, want [%q]", c.topic, stamps, c.id)
		}
		if len(keys) == 0 {
			t.Errorf("%s: no offsets", c.topic)
		}
		for _, k := range keys {
			if k.Connector != name || k.DB != db || k.Coll != coll {
				t.Errorf("%s: key %s is not connector %s's", c.topic, k, name)
			}
		}
	}
}

func waitLeader(t *testing.T, n *node) {
	t.Helper()
	clusterapi.WaitFor(t, 30*time.Second, n.id+" leading its cluster", func() (bool, string) {
		if !n.running() {
			t.Fatalf("%s exited: %s", n.id, strings.Join(n.logLines("error"), "\n"))
		}
		ov, err := clusterapi.GetOverview(n.http)
		return err == nil && ov.Leader == n.id, fmt.Sprint(ov.Leader, err)
	})
}

// readOffsetsTopic reads an offsets topic up to the ends its partitions had when called: the
// cluster ids of its stamps, and the offset keys it holds.
func readOffsetsTopic(t *testing.T, ctx context.Context, kafka, topic string) (stamps []string, keys []offsets.Key) {
	t.Helper()
	parts := map[int32]kgo.Offset{}
	for p := range int32(25) { // the offsets topic's partitions (offsets.Partitions' default)
		parts[p] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	left := map[int32]int64{} // partition → its end, while not read to it
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	seen := map[string]bool{}
	for len(left) > 0 {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		fs := cl.PollFetches(pctx)
		idle := pctx.Err() != nil && fs.NumRecords() == 0
		cancel()
		if idle {
			t.Fatalf("read %s: nothing more within 10 s, partitions %v not read to their ends", topic, left)
		}
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) {
				t.Fatalf("read %s: %v", topic, e.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			if id, ok := offsets.StampCluster(r.Key); ok {
				stamps = append(stamps, id)
				return
			}
			k, err := offsets.ParseKey(r.Key)
			if err != nil {
				t.Errorf("%s: record %q is neither a stamp nor an offset: %v", topic, r.Key, err)
				return
			}
			if !seen[k.String()] {
				seen[k.String()] = true
				keys = append(keys, k)
			}
		})
	}
	return stamps, keys
}
