package metrics

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/tasks/taskmetrics"
)

type fakeNode struct {
	state    string
	term     uint64
	contact  time.Time
	assigned []AssignedTask
	running  int
}

func (f *fakeNode) ID() string { return "n1" }
func (f *fakeNode) Raft() (string, uint64, time.Time) {
	return f.state, f.term, f.contact
}
func (f *fakeNode) Tasks() ([]AssignedTask, int) { return f.assigned, f.running }

// gather returns the registry's series as "name{label=value,...}" → value.
func gather(t *testing.T, r *Registry) map[string]float64 {
	t.Helper()
	mfs, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

func TestTaskMetricsCarryDebeziumNamesAndLabels(t *testing.T) {
	tasks := taskmetrics.NewSet()
	node := &fakeNode{state: "Follower", term: 7, contact: time.Now().Add(-2 * time.Second),
		assigned: []AssignedTask{{Key: taskmetrics.Key{Connector: "orders", Task: 1}, State: "RUNNING"}}, running: 1}
	r := New(node, tasks, slog.New(slog.DiscardHandler))
	u := tasks.Task(taskmetrics.Key{Connector: "orders", Task: 1}, "shop").Unit("shop.orders#0-of-1")
	u.Streaming(time.Now(), true)
	u.Batch(time.Now(), 4, 1, time.Now().Add(-300*time.Millisecond).UnixMilli(), false)
	u.Records.Add(5)
	u.Bytes.Add(640)
	u.TxnCommits.Add(2)
	u.TxnAborts.Add(1)
	u.Oversize.Add(1)
	u.DeadLettered.Add(1)
	u.SetQueue(100, func() int { return 10 })
	u.SnapshotStarted(time.Now())
	u.RowsScanned.Add(12)

	got := gather(t, r)
	streaming := "{collection_shard=shop.orders#0-of-1,connector=orders,context=streaming,name=shop,plugin=mongodb,task=1}"
	snapshot := strings.Replace(streaming, "context=streaming", "context=snapshot", 1)
	own := "{collection_shard=shop.orders#0-of-1,connector=orders,task=1}"
	for series, want := range map[string]float64{
		"debezium_metrics_TotalNumberOfEventsSeen" + streaming:                                                           4,
		"debezium_metrics_NumberOfEventsFiltered" + streaming:                                                            1,
		"debezium_metrics_Connected" + streaming:                                                                         1,
		"debezium_metrics_QueueTotalCapacity" + streaming:                                                                100,
		"debezium_metrics_QueueRemainingCapacity" + streaming:                                                            90,
		"debezium_metrics_SnapshotRunning" + snapshot:                                                                    1,
		"debezium_metrics_SnapshotCompleted" + snapshot:                                                                  0,
		"debezium_metrics_RowsScanned" + snapshot:                                                                        12,
		"mongorelay_task_records_total" + own:                                                                            5,
		"mongorelay_task_bytes_total" + own:                                                                              640,
		"mongorelay_task_transactions_total{collection_shard=shop.orders#0-of-1,connector=orders,outcome=commit,task=1}": 2,
		"mongorelay_task_transactions_total{collection_shard=shop.orders#0-of-1,connector=orders,outcome=abort,task=1}":  1,
		"mongorelay_task_records_oversize_total" + own:                                                                   1,
		"mongorelay_task_records_failed_total" + own:                                                                     0,
		"mongorelay_task_dead_letter_records_total" + own:                                                                1,
		"mongorelay_node_tasks{node=n1,state=assigned}":                                                                  1,
		"mongorelay_node_tasks{node=n1,state=running}":                                                                   1,
		"mongorelay_raft_state{node=n1,state=Follower}":                                                                  1,
		"mongorelay_raft_state{node=n1,state=Leader}":                                                                    0,
		"mongorelay_raft_leader{node=n1}":                                                                                0,
		"mongorelay_raft_term{node=n1}":                                                                                  7,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (exported: %v), want %v", series, v, ok, want)
		}
	}
	if v := got["debezium_metrics_MilliSecondsBehindSource"+streaming]; v < 300 || v > 5000 {
		t.Errorf("MilliSecondsBehindSource %v, want about 300", v)
	}
	if v := got["mongorelay_raft_last_contact_seconds{node=n1}"]; v < 2 || v > 10 {
		t.Errorf("last contact %v s, want about 2", v)
	}
	if _, ok := got["mongorelay_task_offset_commit_age_seconds"+own]; ok {
		t.Error("an offset commit age before any commit")
	}
	if _, ok := got["go_goroutines{}"]; !ok {
		t.Error("no Go runtime metrics")
	}
}

func TestTasksNoLongerAssignedLeaveTheMetrics(t *testing.T) {
	tasks := taskmetrics.NewSet()
	kept, gone := taskmetrics.Key{Connector: "kept", Task: 0}, taskmetrics.Key{Connector: "deleted", Task: 0}
	node := &fakeNode{state: "Leader", assigned: []AssignedTask{{Key: kept, State: "RUNNING"}, {Key: gone, State: "PAUSED"}}}
	r := New(node, tasks, slog.New(slog.DiscardHandler))
	tasks.Task(kept, "p").Unit("db.a#0-of-1")
	tasks.Task(gone, "p").Unit("db.b#0-of-1")
	count := func() (keptN, goneN int) {
		for series := range gather(t, r) {
			switch {
			case strings.Contains(series, "connector=kept"):
				keptN++
			case strings.Contains(series, "connector=deleted"):
				goneN++
			}
		}
		return keptN, goneN
	}
	if k, g := count(); k == 0 || g == 0 {
		t.Fatalf("series of the assigned tasks: %d and %d, want both", k, g)
	}
	node.assigned = node.assigned[:1] // the connector "deleted" was deleted
	if k, g := count(); k == 0 || g != 0 {
		t.Fatalf("after the delete: %d series of the kept task, %d of the deleted one, want some and none", k, g)
	}
	if len(tasks.Tasks()) != 1 {
		t.Fatal("the deleted task's metrics are still held")
	}
}

func TestKafkaClientsAreLabelledAndLeaveWhenClosed(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	r := New(&fakeNode{state: "Leader"}, taskmetrics.NewSet(), slog.New(slog.DiscardHandler))
	var clients []*kgo.Client
	for _, id := range []string{"first", "second"} {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}, r.KafkaClient(id)...)...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		cancel()
		clients = append(clients, cl)
	}
	has := func(id string) bool {
		for series, v := range gather(t, r) {
			if strings.HasPrefix(series, "mongorelay_kafka_produce_bytes_total{") && strings.Contains(series, "client_id="+id) && v > 0 {
				return true
			}
		}
		return false
	}
	if !has("first") || !has("second") {
		t.Fatalf("produce counts of both clients not found: first %v, second %v", has("first"), has("second"))
	}
	// A client opened with the id of one still open goes without metrics, and its close
	// leaves the other's.
	twin, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}, r.KafkaClient("second")...)...)
	if err != nil {
		t.Fatal(err)
	}
	twin.Close()
	clients[0].Close()
	if has("first") || !has("second") {
		t.Fatalf("after closing the first client and the second's twin: first %v, second %v; want only the second", has("first"), has("second"))
	}
}

func TestHandlerServesPrometheusText(t *testing.T) {
	tasks := taskmetrics.NewSet()
	k := taskmetrics.Key{Connector: "orders", Task: 0}
	tasks.Task(k, "shop").Unit("shop.orders#0-of-1").EventsSeen.Add(3)
	r := New(&fakeNode{state: "Leader", assigned: []AssignedTask{{Key: k, State: "RUNNING"}}}, tasks, slog.New(slog.DiscardHandler))
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	want := `debezium_metrics_TotalNumberOfEventsSeen{collection_shard="shop.orders#0-of-1",connector="orders",context="streaming",name="shop",plugin="mongodb",task="0"} 3`
	if !strings.Contains(string(body), want) {
		t.Fatalf("no line %s in\n%s", want, body)
	}
}
