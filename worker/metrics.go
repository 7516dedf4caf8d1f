package worker

import (
	"time"

	"github.com/mongorelay/mongorelay/api/metrics"
	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/tasks/taskmetrics"
)

// initMetrics makes the node's metrics registry, which its REST API serves on /metrics.
func (n *Node) initMetrics() {
	n.taskMetrics = taskmetrics.NewSet()
	n.metrics = metrics.New(nodeMetrics{n}, n.taskMetrics, n.log)
}

// nodeMetrics is what the node's /metrics read of it (metrics.Node).
type nodeMetrics struct{ n *Node }

func (m nodeMetrics) ID() string { return m.n.id }

func (m nodeMetrics) Raft() (state string, term uint64, contact time.Time) {
	node := m.n.node
	if contact = node.LeaderContact(); contact.UnixNano() <= 0 {
		contact = time.Time{} // never in touch
	}
	return node.RaftState(), node.Term(), contact
}

func (m nodeMetrics) Tasks() (assigned []metrics.AssignedTask, running int) {
	states := map[string]string{} // by taskKey, the runner's
	for _, r := range m.n.runner.Reports() {
		states[taskKey(r.Connector, r.Task)] = r.State
	}
	for _, a := range m.n.node.Assigned(m.n.id) {
		state := states[taskKey(a.Connector, a.Task)]
		switch {
		case a.State == coordinator.StatePaused:
			state = string(coordinator.StatePaused)
		case state == "":
			state = "UNASSIGNED" // not started yet, or stopped while the node is fenced
		}
		assigned = append(assigned, metrics.AssignedTask{Key: taskmetrics.Key{Connector: a.Connector, Task: a.TaskID}, State: state})
	}
	return assigned, m.n.runner.Running()
}
