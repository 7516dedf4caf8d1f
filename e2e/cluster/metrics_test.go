//go:build e2e

package cluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/e2e/internal/clusterapi"
	"github.com/mongorelay/mongorelay/e2e/internal/promnames"
	"github.com/mongorelay/mongorelay/internal/testenv"
)

// TestMetricsCountAndLag runs a node with a connector on one collection and reads its GET
// /metrics: the snapshot's documents are RowsScanned, N operations are exactly N
// TotalNumberOfEventsSeen, MilliSecondsBehindSource grows while the connector is paused under
// writes and falls back once it is resumed, every query of the Grafana dashboard names a
// metric the node exports, and a deleted connector's task leaves the metrics.
func TestMetricsCountAndLag(t *testing.T) {
	kafka, mongoURI := testenv.Kafka(t), testenv.Mongo(t)
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	db, prefix, name := "e2em_"+run, "e2em"+run, "watched"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	mc, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	coll := mc.Database(db).Collection("orders")
	const seeded = 3
	for i := range seeded {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("seed-%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = mc.Database(db).Drop(context.Background()) })

	logDir := filepath.Join("..", "..", ".cache", "test-logs", "e2e-cluster-metrics")
	_ = os.RemoveAll(logDir)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	n := newNode(t, "n1", logDir)
	n.args = nodeArgs(n, "e2em-"+run, kafka, "--bootstrap")
	nodes := []*node{n}
	cleanUpNodes(t, logDir, &nodes)
	n.start(t)
	clusterapi.WaitFor(t, 30*time.Second, "n1 leading its cluster", func() (bool, string) {
		ov, err := clusterapi.GetOverview(n.http)
		return err == nil && ov.Leader == n.id, fmt.Sprint(ov.Leader, err)
	})
	config := clusterapi.ConnectorConfig(mongoURI, db, prefix, 1)
	config["snapshot.mode"] = "initial"
	if _, err := clusterapi.Call(ctx, http.MethodPost, n.http, "/connectors", map[string]any{"name": name, "config": config}, nil); err != nil {
		t.Fatal(err)
	}

	unit := db + ".orders#0-of-1"
	streaming := series{"plugin": "mongodb", "name": prefix, "task": "0", "context": "streaming", "connector": name, "collection_shard": unit}
	snapshot := streaming.with("context", "snapshot")
	own := series{"connector": name, "task": "0", "collection_shard": unit}
	read := func(name string, s series) (float64, bool) { return scrape(t, n.http).value(name, s) }
	waitValue := func(what, metric string, s series, ok func(float64) bool) float64 {
		t.Helper()
		var v float64
		clusterapi.WaitFor(t, 60*time.Second, what, func() (bool, string) {
			var found bool
			v, found = read(metric, s)
			return found && ok(v), fmt.Sprintf("%s %v (exported: %v)", metric, v, found)
		})
		return v
	}
	waitValue("the snapshot copied", "debezium_metrics_SnapshotCompleted", snapshot, func(v float64) bool { return v == 1 })
	if v, _ := read("debezium_metrics_RowsScanned", snapshot); v != seeded {
		t.Errorf("RowsScanned %v, want %d", v, seeded)
	}
	waitValue("the change stream open", "debezium_metrics_Connected", streaming, func(v float64) bool { return v == 1 })

	// N operations: inserts, updates and deletes; each delete also writes a tombstone.
	const inserts, updates, deletes = 20, 10, 5
	for i := range inserts {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("doc-%d", i)}, {Key: "v", Value: 0}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range updates {
		if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("doc-%d", i)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 1}}}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range deletes {
		if _, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("doc-%d", inserts-1-i)}}); err != nil {
			t.Fatal(err)
		}
	}
	const ops = inserts + updates + deletes
	waitValue(fmt.Sprintf("%d events seen", ops), "debezium_metrics_TotalNumberOfEventsSeen", streaming, func(v float64) bool { return v >= ops })
	waitValue("every record produced", "mongorelay_task_records_total", own, func(v float64) bool { return v >= seeded+ops+deletes })
	time.Sleep(time.Second) // nothing more may come
	m := scrape(t, n.http)
	for _, c := range []struct {
		metric string
		s      series
		want   float64
	}{
		{"debezium_metrics_TotalNumberOfEventsSeen", streaming, ops},
		{"debezium_metrics_NumberOfEventsFiltered", streaming, 0},
		{"mongorelay_task_records_total", own, seeded + ops + deletes},
		{"mongorelay_node_tasks", series{"node": "n1", "state": "running"}, 1},
		{"mongorelay_raft_leader", series{"node": "n1"}, 1},
		{"mongorelay_task_state", series{"connector": name, "task": "0", "state": "RUNNING"}, 1},
	} {
		if v, ok := m.value(c.metric, c.s); !ok || v != c.want {
			t.Errorf("%s%v = %v (exported: %v), want %v", c.metric, c.s, v, ok, c.want)
		}
	}
	for _, metric := range []string{"mongorelay_task_offset_commit_age_seconds", "mongorelay_task_bytes_total"} {
		if v, ok := m.value(metric, own); !ok || v <= 0 && metric == "mongorelay_task_bytes_total" {
			t.Errorf("%s = %v (exported: %v)", metric, v, ok)
		}
	}
	if v, ok := m.value("mongorelay_kafka_produce_bytes_total", series{"topic": prefix + "." + db + ".orders"}); !ok || v <= 0 {
		t.Errorf("the task producer's Kafka metrics: produce bytes %v (exported: %v)", v, ok)
	}

	// Every query of the dashboard reads metrics the node exports, with the connector running.
	dashboard, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "mongorelay-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	queries, err := promnames.Dashboard(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	if len(queries) == 0 {
		t.Fatal("the dashboard has no query")
	}
	for q, names := range queries {
		if len(names) == 0 {
			t.Errorf("dashboard query %s names no metric", q)
		}
		for _, metric := range names {
			if !m.has(metric) {
				t.Errorf("dashboard query %s reads %s, which the node does not export", q, metric)
			}
		}
	}

	// Paused under writes, the task falls behind; resumed, it catches up.
	writes := make(chan int, 1)
	writeCtx, stopWriting := context.WithCancel(ctx)
	go func() {
		written := 0
		defer func() { writes <- written }()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-writeCtx.Done():
				return
			case <-tick.C:
			}
			if _, err := coll.InsertOne(writeCtx, bson.D{{Key: "_id", Value: fmt.Sprintf("w-%d", written)}}); err == nil {
				written++
			}
		}
	}()
	defer stopWriting()
	if _, err := clusterapi.Call(ctx, http.MethodPut, n.http, "/connectors/"+name+"/pause", nil, nil); err != nil {
		t.Fatal(err)
	}
	waitValue("the paused task's stream closed", "debezium_metrics_Connected", streaming, func(v float64) bool { return v == 0 })
	seenAtPause, _ := read("debezium_metrics_TotalNumberOfEventsSeen", streaming)
	if v, ok := read("mongorelay_task_state", series{"connector": name, "task": "0", "state": "PAUSED"}); v != 1 {
		t.Errorf("the paused task's state PAUSED = %v (exported: %v), want 1", v, ok)
	}
	before, _ := read("debezium_metrics_MilliSecondsBehindSource", streaming)
	time.Sleep(3 * time.Second)
	paused, _ := read("debezium_metrics_MilliSecondsBehindSource", streaming)
	t.Logf("MilliSecondsBehindSource while paused under writes: %v, 3 s later %v", before, paused)
	if paused < before+2000 || paused < 2500 {
		t.Errorf("MilliSecondsBehindSource while paused: %v then %v 3 s later, want it to grow by the time paused", before, paused)
	}
	if _, err := clusterapi.Call(ctx, http.MethodPut, n.http, "/connectors/"+name+"/resume", nil, nil); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	caughtUp := waitValue("the resumed task caught up", "debezium_metrics_MilliSecondsBehindSource", streaming, func(v float64) bool {
		m := scrape(t, n.http)
		connected, _ := m.value("debezium_metrics_Connected", streaming)
		seen, _ := m.value("debezium_metrics_TotalNumberOfEventsSeen", streaming)
		return connected == 1 && seen > seenAtPause && v < 1500
	})
	t.Logf("MilliSecondsBehindSource %v, %s after the resume", caughtUp, time.Since(resumed).Round(100*time.Millisecond))
	stopWriting()
	written := <-writes
	waitValue(fmt.Sprintf("%d events seen", ops+written), "debezium_metrics_TotalNumberOfEventsSeen", streaming,
		func(v float64) bool { return v >= float64(ops+written) })
	time.Sleep(time.Second)
	if v, _ := read("debezium_metrics_TotalNumberOfEventsSeen", streaming); v != float64(ops+written) {
		t.Errorf("TotalNumberOfEventsSeen %v after %d more inserts, want %d", v, written, ops+written)
	}

	// A deleted connector's task leaves the node's metrics.
	if _, err := clusterapi.Call(ctx, http.MethodDelete, n.http, "/connectors/"+name, nil, nil); err != nil {
		t.Fatal(err)
	}
	clusterapi.WaitFor(t, 30*time.Second, "the deleted connector's metrics gone", func() (bool, string) {
		got := scrape(t, n.http).matching(series{"connector": name})
		return got == 0, fmt.Sprintf("%d series still name connector %s", got, name)
	})
}

// series are the labels that select a metric's series (a subset of its labels).
type series map[string]string

func (s series) with(k, v string) series {
	out := series{k: v}
	for key, val := range s {
		if key != k {
			out[key] = val
		}
	}
	return out
}

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

type scraped []sample

// scrape reads GET /metrics of the node at addr.
func scrape(t *testing.T, addr string) scraped {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	var out scraped
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			t.Fatalf("GET /metrics: %v", err)
		}
		out = append(out, s)
	}
	return out
}

// parseSample reads `name{k="v",...} value`; label values hold no quote or comma here.
func parseSample(line string) (sample, error) {
	sp := strings.LastIndexByte(line, ' ')
	if sp < 0 {
		return sample{}, fmt.Errorf("line %q has no value", line)
	}
	v, err := strconv.ParseFloat(line[sp+1:], 64)
	if err != nil {
		return sample{}, fmt.Errorf("line %q: %w", line, err)
	}
	s := sample{name: line[:sp], labels: map[string]string{}, value: v}
	if i := strings.IndexByte(s.name, '{'); i >= 0 {
		for pair := range strings.SplitSeq(strings.TrimSuffix(s.name[i+1:], "}"), ",") {
			if k, val, ok := strings.Cut(pair, "="); ok {
				s.labels[k] = strings.Trim(val, `"`)
			}
		}
		s.name = s.name[:i]
	}
	return s, nil
}

func (m scraped) find(name string, sel series) (sample, bool) {
	for _, s := range m {
		if s.name == name && s.matches(sel) {
			return s, true
		}
	}
	return sample{}, false
}

func (s sample) matches(sel series) bool {
	for k, v := range sel {
		if s.labels[k] != v {
			return false
		}
	}
	return true
}

// value is the first series of name that sel selects, and false when there is none.
func (m scraped) value(name string, sel series) (float64, bool) {
	s, ok := m.find(name, sel)
	return s.value, ok
}

func (m scraped) has(name string) bool {
	_, ok := m.find(name, nil)
	return ok
}

// matching counts the series of any name that sel selects.
func (m scraped) matching(sel series) int {
	n := 0
	for _, s := range m {
		if s.matches(sel) {
			n++
		}
	}
	return n
}
