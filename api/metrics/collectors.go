package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mongorelay/mongorelay/tasks/taskmetrics"
)

// Debezium's MongoDB connector publishes its metrics as JMX beans
// debezium.mongodb:type=connector-metrics,context=<snapshot|streaming>,server=<topic.prefix>,task=<id>,
// which the JMX exporter rules of Debezium's monitoring example turn into
// debezium_metrics_<Attribute>{plugin="mongodb",name=<topic.prefix>,task=<id>,context=<context>}.
// The task metrics below carry the same names and labels, so that dashboards and alerts
// written for Debezium read them, plus connector (the connector's name) and collection_shard
// (a task may stream several collection shards when tasks.max groups them).
const debeziumPrefix = "debezium_metrics_"

var debeziumLabels = []string{"plugin", "name", "task", "context", "connector", "collection_shard"}

// mongorelay's own task metrics are labelled as Kafka Connect's task metrics are.
var taskLabels = []string{"connector", "task", "collection_shard"}

func debezium(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(debeziumPrefix+name, help, debeziumLabels, nil)
}

func task(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, append(append([]string(nil), taskLabels...), extra...), nil)
}

var (
	descBehind = debezium("MilliSecondsBehindSource",
		"Milliseconds between MongoDB's change and its processing by the task, 0 once caught up; while the stream is closed (paused, restarting), the time since the task had read every change.")
	descSeen     = debezium("TotalNumberOfEventsSeen", "Change events of the task's collection shard read from the change stream.")
	descFiltered = debezium("NumberOfEventsFiltered",
		"Change events read that made no record: other shards' (shard.filter=client), those an earlier shard generation delivered, those without a document.")
	descSinceLast  = debezium("MilliSecondsSinceLastEvent", "Milliseconds since the task processed its last change event.")
	descConnected  = debezium("Connected", "1 while the task's change stream is open.")
	descQueueTotal = debezium("QueueTotalCapacity", "Records the task's producer may hold before Kafka acknowledges them.")
	descQueueLeft  = debezium("QueueRemainingCapacity", "Records the task's producer may still take before it blocks the task.")

	descSnapRunning   = debezium("SnapshotRunning", "1 while the task copies its collection's snapshot.")
	descSnapCompleted = debezium("SnapshotCompleted", "1 once the task's last snapshot completed.")
	descSnapDuration  = debezium("SnapshotDurationInSeconds", "Seconds the task's last snapshot took, or has taken so far.")
	descRowsScanned   = debezium("RowsScanned", "Documents the task's snapshots copied.")

	descRecords     = task("mongorelay_task_records_total", "Records the task produced to its topic, tombstones included (Connect's source-record-write-total).")
	descBytes       = task("mongorelay_task_bytes_total", "Key and value bytes of the records the task produced.")
	descTxns        = task("mongorelay_task_transactions_total", "Kafka transactions the task ended, by outcome (commit, abort).", "outcome")
	descCommitAge   = task("mongorelay_task_offset_commit_age_seconds", "Seconds since the task last committed its offset.")
	descFailed      = task("mongorelay_task_records_failed_total", "Records skipped because they could not be converted (errors.tolerance=all).")
	descOversize    = task("mongorelay_task_records_oversize_total", "Records skipped because they exceed the topic's max.message.bytes (oversize.handling=skip).")
	descDeadLetters = task("mongorelay_task_dead_letter_records_total", "Records written to the dead letter topic (Connect's deadletterqueue-produce-requests).")
	descTaskState   = prometheus.NewDesc("mongorelay_task_state", "1 for the task's state on this node (Connect's task status), 0 for the others.",
		[]string{"connector", "task", "state"}, nil)
)

// taskCollector reads the metrics of the tasks assigned to the node when scraped. It drops
// those of tasks no longer assigned here first (a deleted connector's, a moved task's), so
// that a node shows only its own tasks, as Connect's and Debezium's JMX beans do.
type taskCollector struct {
	node  Node
	tasks *taskmetrics.Set
	now   func() time.Time
}

func (c *taskCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBehind, descSeen, descFiltered, descSinceLast, descConnected, descQueueTotal,
		descQueueLeft, descSnapRunning, descSnapCompleted, descSnapDuration, descRowsScanned, descRecords, descBytes,
		descTxns, descCommitAge, descFailed, descOversize, descDeadLetters, descTaskState} {
		ch <- d
	}
}

func (c *taskCollector) Collect(ch chan<- prometheus.Metric) {
	assigned, _ := c.node.Tasks()
	mine := make(map[taskmetrics.Key]bool, len(assigned))
	for _, a := range assigned {
		mine[a.Key] = true
		id := strconv.Itoa(a.Task)
		for _, s := range taskStates {
			ch <- prometheus.MustNewConstMetric(descTaskState, prometheus.GaugeValue, boolValue(s == a.State), a.Connector, id, s)
		}
	}
	c.tasks.Retain(func(k taskmetrics.Key) bool { return mine[k] })
	now := c.now()
	for _, t := range c.tasks.Tasks() {
		id := strconv.Itoa(t.Task)
		for _, u := range t.Units() {
			collectUnit(ch, t, id, u, now)
		}
	}
}

func collectUnit(ch chan<- prometheus.Metric, t *taskmetrics.Task, id string, u taskmetrics.NamedUnit, now time.Time) {
	streaming := []string{"mongodb", t.Prefix, id, "streaming", t.Connector, u.Name}
	gauge := func(d *prometheus.Desc, v float64, labels []string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	// Debezium's counts are untyped, as the JMX exporter publishes them: a counter without
	// the _total suffix would be renamed in the OpenMetrics format.
	count := func(d *prometheus.Desc, v int64, labels []string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.UntypedValue, float64(v), labels...)
	}
	gauge(descBehind, float64(u.BehindSource(now)), streaming)
	count(descSeen, u.EventsSeen.Load(), streaming)
	count(descFiltered, u.EventsFiltered.Load(), streaming)
	gauge(descSinceLast, float64(u.SinceLastEvent(now)), streaming)
	gauge(descConnected, boolValue(u.Connected()), streaming)
	if capacity, left, ok := u.Queue(); ok {
		gauge(descQueueTotal, float64(capacity), streaming)
		gauge(descQueueLeft, float64(left), streaming)
	}
	// Like Debezium's, the snapshot metrics appear once a snapshot has run.
	if running, completed, took := u.Snapshot(now); running || took > 0 || completed {
		snapshot := []string{"mongodb", t.Prefix, id, "snapshot", t.Connector, u.Name}
		gauge(descSnapRunning, boolValue(running), snapshot)
		gauge(descSnapCompleted, boolValue(completed), snapshot)
		gauge(descSnapDuration, took.Seconds(), snapshot)
		count(descRowsScanned, u.RowsScanned.Load(), snapshot)
	}

	labels := []string{t.Connector, id, u.Name}
	counter(descRecords, u.Records.Load(), labels...)
	counter(descBytes, u.Bytes.Load(), labels...)
	counter(descTxns, u.TxnCommits.Load(), append(labels, "commit")...)
	counter(descTxns, u.TxnAborts.Load(), append(labels, "abort")...)
	if age, ok := u.CommittedAge(now); ok {
		gauge(descCommitAge, age.Seconds(), labels)
	}
	counter(descFailed, u.Failed.Load(), labels...)
	counter(descOversize, u.Oversize.Load(), labels...)
	counter(descDeadLetters, u.DeadLettered.Load(), labels...)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// raftStates are the states hashicorp/raft names; mongorelay_raft_state has one series each.
var raftStates = []string{"Follower", "Candidate", "Leader", "Shutdown"}

var (
	descTasks       = prometheus.NewDesc("mongorelay_node_tasks", "Tasks assigned to this node (state=assigned, whatever their connector's target state) and running on it (state=running).", []string{"node", "state"}, nil)
	descRaftState   = prometheus.NewDesc("mongorelay_raft_state", "1 for the node's current Raft state, 0 for the others.", []string{"node", "state"}, nil)
	descRaftLeader  = prometheus.NewDesc("mongorelay_raft_leader", "1 while the node is the Raft leader.", []string{"node"}, nil)
	descRaftTerm    = prometheus.NewDesc("mongorelay_raft_term", "The node's current Raft term.", []string{"node"}, nil)
	descRaftContact = prometheus.NewDesc("mongorelay_raft_last_contact_seconds",
		"Seconds since the node last knew itself in touch with the leader (its last answered heartbeat; a leader, its lease); a node fences itself past worker.lease.", []string{"node"}, nil)
)

// nodeCollector reads the node's Raft state and task count when scraped.
type nodeCollector struct {
	node Node
	now  func() time.Time
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTasks, descRaftState, descRaftLeader, descRaftTerm, descRaftContact} {
		ch <- d
	}
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	id := c.node.ID()
	assigned, running := c.node.Tasks()
	ch <- prometheus.MustNewConstMetric(descTasks, prometheus.GaugeValue, float64(len(assigned)), id, "assigned")
	ch <- prometheus.MustNewConstMetric(descTasks, prometheus.GaugeValue, float64(running), id, "running")
	state, term, contact := c.node.Raft()
	for _, s := range raftStates {
		ch <- prometheus.MustNewConstMetric(descRaftState, prometheus.GaugeValue, boolValue(s == state), id, s)
	}
	ch <- prometheus.MustNewConstMetric(descRaftLeader, prometheus.GaugeValue, boolValue(state == "Leader"), id)
	ch <- prometheus.MustNewConstMetric(descRaftTerm, prometheus.GaugeValue, float64(term), id)
	if !contact.IsZero() {
		ch <- prometheus.MustNewConstMetric(descRaftContact, prometheus.GaugeValue, max(c.now().Sub(contact).Seconds(), 0), id)
	}
}
