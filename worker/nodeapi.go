package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mongorelay/mongorelay/api"
	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/internal/forward"
)

// nodeAPI is the node as the REST API sees it (api.Cluster): the coordinator's state and
// writes, the leader's task reports and this node's runner, with the coordinator's errors
// turned into the api's. A standalone process answers the same, as the leader of its own
// one-node cluster, and refuses to remove itself.
type nodeAPI struct{ c *Node }

var _ api.Cluster = nodeAPI{}

func (a nodeAPI) Info() api.Info {
	c := a.c
	return api.Info{Version: c.version, Commit: c.commit, ClusterID: c.cfg.ClusterID, NodeID: c.id, KafkaClusterID: c.kafkaClusterID}
}

func toAPIConnector(cn coordinator.Connector) api.Connector {
	out := api.Connector{Name: cn.Name, Config: cn.Config, State: string(cn.State)}
	for _, t := range cn.Tasks {
		out.Tasks = append(out.Tasks, api.Task{ID: t.ID, Name: t.Name(), Config: t.Spec.Config(), Node: t.Node, Epoch: t.Epoch, Spec: t.Spec})
	}
	return out
}

func (a nodeAPI) Connectors() []api.Connector {
	conns := a.c.node.State().Connectors()
	out := make([]api.Connector, 0, len(conns))
	for _, cn := range conns {
		out = append(out, toAPIConnector(cn))
	}
	return out
}

func (a nodeAPI) Connector(name string) (api.Connector, bool) {
	cn, ok := a.c.node.State().Connector(name)
	if !ok {
		return api.Connector{}, false
	}
	return toAPIConnector(cn), true
}

func (a nodeAPI) CreateConnector(ctx context.Context, name string, config map[string]string, initial string) error {
	err := a.c.node.CreateConnector(ctx, name, config, coordinator.TargetState(initial))
	if err == nil {
		a.c.log.Info("connector created", "connector", name)
	}
	return apiError(err)
}

func (a nodeAPI) PutConnectorConfig(ctx context.Context, name string, config map[string]string) (bool, error) {
	created, err := a.c.node.PutConnector(ctx, name, config)
	return created, apiError(err)
}

func (a nodeAPI) DeleteConnector(ctx context.Context, name string) error {
	deleted, _ := a.c.node.State().Connector(name)
	err := a.c.node.DeleteConnector(ctx, name)
	if err == nil {
		a.c.log.Info("connector deleted", "connector", name)
		a.c.fenceTasks(ctx, deleted, "deleted")
	}
	return apiError(err)
}

// offsetsChangeWait is how long a pending change of a connector's offsets keeps it STOPPED: a
// change takes seconds; one older was left by a leader that stopped during it.
const offsetsChangeWait = 2 * time.Minute

func (a nodeAPI) SetTargetState(ctx context.Context, name, state string) error {
	// Tasks started while the leader writes new offsets could read the old ones.
	if r, ok := a.c.node.State().OffsetReset(name); ok && state != string(coordinator.StateStopped) && time.Since(r.RequestedAt) < offsetsChangeWait {
		return fmt.Errorf("%w: the offsets of connector %q are being changed (since %s): try again in a few seconds",
			api.ErrConflict, name, r.RequestedAt.Format(time.RFC3339))
	}
	return apiError(a.c.node.SetTargetState(ctx, name, coordinator.TargetState(state)))
}

func (a nodeAPI) RestartConnector(ctx context.Context, name string) error {
	return apiError(a.c.node.RestartConnector(ctx, name))
}

func (a nodeAPI) RestartTasks(ctx context.Context, name string, ids []int) error {
	return apiError(a.c.node.RestartTasks(ctx, name, ids...))
}

func (a nodeAPI) RequestSnapshot(ctx context.Context, name string, collections []string) (uint64, error) {
	return a.c.requestSnapshot(ctx, name, collections, "")
}

// ConnectorStatus needs the task reports, which only the leader has.
func (a nodeAPI) ConnectorStatus(_ context.Context, name string) (api.ConnectorStatus, error) {
	n := a.c.node
	if !n.IsLeader() {
		return api.ConnectorStatus{}, notLeader(n)
	}
	cn, ok := n.State().Connector(name)
	if !ok {
		return api.ConnectorStatus{}, fmt.Errorf("%w: connector %q", api.ErrNotFound, name)
	}
	return connectorStatus(cn, n.ID(), a.c.reports, a.c.catalog.Type(cn.Config)), nil
}

func notLeader(n *coordinator.Node) error {
	id, addr := n.Leader()
	if id == n.ID() {
		id, addr = "", "" // leadership is changing
	}
	return &forward.NotLeaderError{LeaderID: id, LeaderHTTP: addr}
}

func (a nodeAPI) Overview(ctx context.Context) (api.Overview, error) {
	n := a.c.node
	members, err := n.Members(ctx)
	if err != nil {
		return api.Overview{}, fmt.Errorf("list the cluster's members: %w", err)
	}
	// The term is read around the state so that a sample taken across an election is not
	// reported under the wrong term.
	term := n.Term()
	raftState := n.RaftState()
	if t := n.Term(); t != term {
		term, raftState = t, n.RaftState()
	}
	leader, leaderHTTP := n.Leader()
	st := n.State()
	ov := api.Overview{
		ClusterID: a.c.cfg.ClusterID, NodeID: n.ID(), Leader: leader, LeaderHTTP: leaderHTTP,
		RaftState: raftState, Term: term, Index: st.Index(), Epoch: st.Epoch(), Fenced: a.c.runner.Fenced(),
		Nodes: make([]api.Member, 0, len(members)), Assignments: []api.Assignment{},
	}
	for _, m := range members {
		ov.Nodes = append(ov.Nodes, api.Member{ID: m.ID, RaftAddr: m.RaftAddr, HTTPAddr: m.HTTPAddr, Voter: m.Voter, Leader: m.Leader, LastHeartbeat: m.LastHeartbeat})
	}
	for _, as := range st.Assignments() {
		ov.Assignments = append(ov.Assignments, api.Assignment{Connector: as.Connector, Task: as.Task, TaskID: as.TaskID, Node: as.Node, Epoch: as.Epoch})
	}
	return ov, nil
}

func (a nodeAPI) AppliedIndex() uint64 { return a.c.node.State().Index() }

func (a nodeAPI) WaitApplied(ctx context.Context, index uint64) error {
	return a.c.node.WaitIndex(ctx, index)
}

func (a nodeAPI) Health() api.Health {
	n := a.c.node
	leader, _ := n.Leader()
	return api.Health{NodeID: n.ID(), RaftState: n.RaftState(), Leader: leader,
		Fenced: n.Fenced(time.Now()), RefusedCommand: n.RefusedCommand(), Tasks: a.c.runner.Running()}
}

func (a nodeAPI) RemoveNode(ctx context.Context, id string) error {
	if a.c.standalone() {
		return fmt.Errorf("%w: %w", api.ErrBadRequest, errStandalone)
	}
	if _, member := a.c.node.State().Node(id); !member {
		return fmt.Errorf("%w: node %q is not a member", api.ErrNotFound, id)
	}
	return apiError(a.c.node.RemoveNode(ctx, id))
}

// apiError turns the coordinator's errors into the api's, keeping the message; others pass
// through unchanged (a *forward.NotLeaderError, which the api forwards; a schema registry
// error, which keeps its sentinel).
func apiError(err error) error {
	if err == nil {
		return nil
	}
	for _, m := range []struct{ from, to error }{
		{coordinator.ErrConnectorNotFound, api.ErrNotFound},
		{coordinator.ErrTaskNotFound, api.ErrNotFound},
		{coordinator.ErrConnectorExists, api.ErrExists},
		{coordinator.ErrInvalid, api.ErrBadRequest},
		{coordinator.ErrNotStopped, api.ErrNotStopped},
		{coordinator.ErrStopped, api.ErrConflict},
	} {
		if errors.Is(err, m.from) {
			return fmt.Errorf("%w: %v", m.to, err)
		}
	}
	return err
}

// SetClusterLogLevel sets a logger's level on every node, through the cluster state, which
// each node follows (followLogLevels).
func (a nodeAPI) SetClusterLogLevel(ctx context.Context, logger, level string) error {
	n := a.c.node
	if !n.IsLeader() {
		return notLeader(n)
	}
	return apiError(n.SetLogLevel(ctx, logger, level))
}
