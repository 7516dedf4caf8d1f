package worker

import (
	"sync"

	"github.com/mongorelay/mongorelay/api"
	"github.com/mongorelay/mongorelay/api/peer"
	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/tasks/connector"
)

// taskReports is the leader's memory of how every node's tasks are doing, as their heartbeats
// said (RUNNING, RESTARTING, FAILED and why, or why a RUNNING task is stalled). Like heartbeat
// times it is not in the Raft state: a new leader knows it again after one heartbeat interval.
type taskReports struct {
	mu     sync.Mutex
	byNode map[string]map[string]peer.TaskReport // node → taskKey → report
}

func newTaskReports() *taskReports {
	return &taskReports{byNode: map[string]map[string]peer.TaskReport{}}
}

// put replaces what node reported last.
func (r *taskReports) put(node string, reports []peer.TaskReport) {
	m := make(map[string]peer.TaskReport, len(reports))
	for _, t := range reports {
		m[taskKey(t.Connector, t.Task)] = t
	}
	r.mu.Lock()
	r.byNode[node] = m
	r.mu.Unlock()
}

func (r *taskReports) get(node, connector, task string) (peer.TaskReport, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.byNode[node][taskKey(connector, task)]
	return t, ok
}

// connectorStatus is GET /connectors/{name}/status from the cluster state and the reports: a
// task is in the state its owner reported for its current epoch; without such a report (not
// started yet, or its owner silent) it is UNASSIGNED, as is a task no node owns. The
// connector itself runs on the leader, which lists its tasks.
func connectorStatus(c coordinator.Connector, leader string, reports *taskReports, typ connector.Type) api.ConnectorStatus {
	st := api.ConnectorStatus{
		Name:      c.Name,
		Connector: api.StateInfo{State: string(c.State), WorkerID: leader},
		Tasks:     []api.TaskStatus{},
		Type:      string(typ),
	}
	for _, t := range c.Tasks {
		ts := api.TaskStatus{ID: t.ID, State: api.StateUnassigned, WorkerID: t.Node}
		switch {
		case t.Node == "":
		case c.State == coordinator.StatePaused:
			ts.State = api.StatePaused
		default:
			if rep, ok := reports.get(t.Node, c.Name, t.Name()); ok && rep.Epoch == t.Epoch {
				ts.State, ts.Trace, ts.Degraded = apiState(taskState(rep.State)), rep.Trace, rep.Degraded
				ts.EventsSeen, ts.BehindSourceMs = rep.EventsSeen, rep.BehindSourceMs
			}
		}
		st.Tasks = append(st.Tasks, ts)
	}
	return st
}

// apiState is how the REST API shows a task run's state.
func apiState(s taskState) string {
	switch s {
	case taskRunning:
		return api.StateRunning
	case taskRestarting:
		return api.StateRestarting
	case taskFailed:
		return api.StateFailed
	}
	return api.StateUnassigned
}
