// Package metrics serves a node's Prometheus metrics (DESIGN.md 15) from a registry of its
// own: the tasks it runs under Debezium's MongoDB connector names (tasks/taskmetrics), its Raft
// state and task count, its Kafka clients' (franz-go's kprom), the Go runtime's and the
// process's. docs/metrics.md lists every name.
package metrics

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"

	"github.com/mongorelay/mongorelay/tasks/taskmetrics"
)

// Node is what the metrics read of a node when they are scraped.
type Node interface {
	// ID is the node's id.
	ID() string
	// Raft returns the node's Raft state (Leader, Follower, Candidate, Shutdown), its current
	// term, and the last time it knew itself in touch with the leader (zero: never).
	Raft() (state string, term uint64, contact time.Time)
	// Tasks returns the tasks assigned to this node, whatever their connector's target state,
	// and how many of them run now.
	Tasks() (assigned []AssignedTask, running int)
}

// AssignedTask is a task assigned to the node and its state there, in Kafka Connect's words:
// one of taskStates (UNASSIGNED, RUNNING, PAUSED, RESTARTING, FAILED).
type AssignedTask struct {
	taskmetrics.Key
	State string
}

// taskStates are the states mongorelay_task_state reports, Kafka Connect's: UNASSIGNED until
// the node starts the task (or while it is fenced), PAUSED with its connector.
var taskStates = []string{"UNASSIGNED", "RUNNING", "PAUSED", "RESTARTING", "FAILED"}

// Registry is a node's metrics.
type Registry struct {
	reg *prometheus.Registry
	log *slog.Logger
}

// New returns the registry of node, whose tasks count into tasks.
func New(node Node, tasks *taskmetrics.Set, log *slog.Logger) *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&taskCollector{node: node, tasks: tasks, now: time.Now},
		&nodeCollector{node: node, now: time.Now},
	)
	return &Registry{reg: reg, log: log}
}

// Handler serves the metrics in Prometheus' text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// Gatherer is the registry, for tests and tools that read it without HTTP.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// KafkaClient returns the options that name a Kafka client clientID and count its requests,
// bytes and errors under mongorelay_kafka_*, labelled client_id=clientID: each client of the
// node needs an id of its own. The client's metrics leave the registry when it closes.
func (r *Registry) KafkaClient(clientID string) []kgo.Opt {
	reg := &clientRegisterer{reg: r.reg, log: r.log.With("client_id", clientID), mine: map[prometheus.Collector]bool{}}
	m := kprom.NewMetrics("mongorelay_kafka", kprom.Registerer(reg), kprom.WithClientLabel())
	return []kgo.Opt{kgo.ClientID(clientID), kgo.WithHooks(m)}
}

// clientRegisterer registers one client's kprom collectors. A client whose id another client
// has at the same time (one closing while the next opens) goes without metrics, logged: it
// neither panics in its constructor, as kprom's MustRegister would, nor unregisters the other
// client's collectors when it closes, since it unregisters only what it registered.
type clientRegisterer struct {
	reg *prometheus.Registry
	log *slog.Logger

	mu   sync.Mutex
	mine map[prometheus.Collector]bool
}

func (c *clientRegisterer) Register(col prometheus.Collector) error {
	if err := c.reg.Register(col); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mine[col] = true
	return nil
}

func (c *clientRegisterer) MustRegister(cols ...prometheus.Collector) {
	for _, col := range cols {
		if err := c.Register(col); err != nil {
			c.log.Warn("a Kafka client goes without metrics: another client has its id", "err", err)
			return
		}
	}
}

func (c *clientRegisterer) Unregister(col prometheus.Collector) bool {
	c.mu.Lock()
	mine := c.mine[col]
	delete(c.mine, col)
	c.mu.Unlock()
	return mine && c.reg.Unregister(col)
}
