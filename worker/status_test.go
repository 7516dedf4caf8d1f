package worker

import (
	"testing"

	"github.com/mongorelay/mongorelay/api"
	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/tasks/connector"

	"github.com/mongorelay/mongorelay/api/peer"
	"github.com/mongorelay/mongorelay/tasks/taskid"
)

func TestConnectorStatus(t *testing.T) {
	spec := func(i int) taskid.Spec {
		return taskid.Spec{DB: "db", Coll: "c", Shard: i, Shards: 4}
	}
	c := coordinator.Connector{Name: "cdc", State: coordinator.StateRunning, Tasks: []coordinator.Task{
		{ID: 0, Spec: spec(0), Node: "n1", Epoch: 5},
		{ID: 1, Spec: spec(1), Node: "n2", Epoch: 6},
		{ID: 2, Spec: spec(2), Node: "n2", Epoch: 7},
		{ID: 3, Spec: spec(3)},
	}}
	reports := newTaskReports()
	events, behind := int64(35), int64(12)
	reports.put("n1", []peer.TaskReport{{Connector: "cdc", Task: "db.c#0-of-4", Epoch: 5, State: string(taskRunning), Degraded: "waiting 7s for Kafka",
		EventsSeen: &events, BehindSourceMs: &behind}})
	reports.put("n2", []peer.TaskReport{
		{Connector: "cdc", Task: "db.c#1-of-4", Epoch: 6, State: string(taskFailed), Trace: "history lost"},
		{Connector: "cdc", Task: "db.c#2-of-4", Epoch: 4, State: string(taskRunning)}, // an older assignment
	})
	st := connectorStatus(c, "n1", reports, connector.Source)
	want := []api.TaskStatus{
		{ID: 0, State: api.StateRunning, WorkerID: "n1", Degraded: "waiting 7s for Kafka"},
		{ID: 1, State: api.StateFailed, WorkerID: "n2", Trace: "history lost"},
		{ID: 2, State: api.StateUnassigned, WorkerID: "n2"},
		{ID: 3, State: api.StateUnassigned},
	}
	if st.Name != "cdc" || st.Connector.State != "RUNNING" || st.Connector.WorkerID != "n1" || len(st.Tasks) != len(want) {
		t.Fatalf("status %+v", st)
	}
	if f := st.Tasks[0]; f.EventsSeen == nil || *f.EventsSeen != 35 || f.BehindSourceMs == nil || *f.BehindSourceMs != 12 {
		t.Errorf("task 0's figures: events seen %v, behind source %v; want 35, 12", f.EventsSeen, f.BehindSourceMs)
	}
	st.Tasks[0].EventsSeen, st.Tasks[0].BehindSourceMs = nil, nil
	for i, w := range want {
		if st.Tasks[i] != w {
			t.Errorf("task %d = %+v, want %+v", i, st.Tasks[i], w)
		}
	}

	c.State = coordinator.StatePaused
	if got := connectorStatus(c, "n1", reports, connector.Source).Tasks[0].State; got != api.StatePaused {
		t.Errorf("task of a paused connector is %s, want PAUSED", got)
	}
}
