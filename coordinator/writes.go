package coordinator

import (
	"context"
	"fmt"
	"time"
)

// The writes a client may make. Each applies through Raft on the leader and
// returns once this node has applied it, so a read of State right after sees
// it; on another node each returns a *forward.NotLeaderError (errors.Is(err,
// ErrNotLeader)) for the api layer to forward. Configs are stored as given:
// validate them (tasks/config.Parse) before.

// CreateConnector creates a connector in target state initial ("" is
// RUNNING), or returns ErrConnectorExists (POST /connectors). The leader
// refuses a name its state holds before proposing anything, so that a refused
// create leaves the Raft log, and the state's index, as they were; a create
// racing another of the same name is refused by Apply instead.
func (n *Node) CreateConnector(ctx context.Context, name string, config map[string]string, initial TargetState) error {
	if _, exists := n.State().Connector(name); exists && n.IsLeader() {
		return fmt.Errorf("create connector %q: %w: %q", name, ErrConnectorExists, name)
	}
	_, err := n.apply(ctx, &putConnectorV1{Name: name, Config: config, CreateOnly: true, InitialState: initial})
	if err != nil {
		return fmt.Errorf("create connector %q: %w", name, err)
	}
	return nil
}

// PutConnector creates a RUNNING connector or replaces its config (PUT
// /connectors/{name}/config). A different config bumps the generation, which
// makes the leader list its tasks again and every owner restart them; the
// same config changes nothing.
func (n *Node) PutConnector(ctx context.Context, name string, config map[string]string) (created bool, err error) {
	res, err := n.apply(ctx, &putConnectorV1{Name: name, Config: config})
	if err != nil {
		return false, fmt.Errorf("put connector %q: %w", name, err)
	}
	return res.created, nil
}

// DeleteConnector deletes a connector, its tasks and any pending offset
// reset; its tasks stop everywhere.
func (n *Node) DeleteConnector(ctx context.Context, name string) error {
	if _, err := n.apply(ctx, &deleteConnectorV1{Name: name}); err != nil {
		return fmt.Errorf("delete connector %q: %w", name, err)
	}
	return nil
}

// SetTargetState pauses, resumes or stops a connector (PUT .../pause,
// .../resume, .../stop). Stopping unassigns its tasks at once.
func (n *Node) SetTargetState(ctx context.Context, name string, state TargetState) error {
	if _, err := n.apply(ctx, &setTargetStateV1{Name: name, State: state}); err != nil {
		return fmt.Errorf("set connector %q to %s: %w", name, state, err)
	}
	return nil
}

// RestartConnector restarts a connector (POST .../restart): the leader lists
// its tasks again. To restart tasks too (includeTasks, onlyFailed), call
// RestartTasks with the ids chosen from their status.
func (n *Node) RestartConnector(ctx context.Context, name string) error {
	if _, err := n.apply(ctx, &restartV1{Connector: name}); err != nil {
		return fmt.Errorf("restart connector %q: %w", name, err)
	}
	return nil
}

// RestartTasks restarts tasks of a connector by id (POST
// .../tasks/{id}/restart): each one's Restarts counter grows, and its owner
// restarts it. An unknown id refuses the whole request with ErrTaskNotFound.
func (n *Node) RestartTasks(ctx context.Context, name string, ids ...int) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := n.apply(ctx, &restartV1{Connector: name, Tasks: ids}); err != nil {
		return fmt.Errorf("restart tasks %v of connector %q: %w", ids, name, err)
	}
	return nil
}

// RequestSnapshot asks for collections ("<db>.<collection>") of a connector
// to be copied again while they stream (POST /connectors/{name}/snapshot):
// each task of a named collection polls the connector's requests and copies
// it once. It returns the request's id; ErrStopped for a STOPPED connector.
// signal, when not "", identifies the execute-snapshot signal that asks: a
// signal recorded already returns its request's id.
func (n *Node) RequestSnapshot(ctx context.Context, name string, collections []string, signal string) (uint64, error) {
	res, err := n.apply(ctx, &requestSnapshotV1{Connector: name, Collections: collections, Signal: signal})
	if err != nil {
		return 0, fmt.Errorf("request a snapshot of %v for connector %q: %w", collections, name, err)
	}
	return res.value, nil
}

// RequestOffsetReset asks for a STOPPED connector's offsets to be reset
// (DELETE .../offsets), or returns ErrNotStopped. The request stays in the
// state until CompleteOffsetReset; a newer request replaces it.
func (n *Node) RequestOffsetReset(ctx context.Context, name string) (OffsetReset, error) {
	at := time.Now().UTC().Round(0) // as it reads back from the log: no monotonic clock
	res, err := n.apply(ctx, &requestOffsetResetV1{Connector: name, At: at})
	if err != nil {
		return OffsetReset{}, fmt.Errorf("request offset reset of connector %q: %w", name, err)
	}
	return OffsetReset{Connector: name, ID: res.value, RequestedAt: at}, nil
}

// CompleteOffsetReset marks request id of a connector done; it does nothing
// if a newer request replaced it.
func (n *Node) CompleteOffsetReset(ctx context.Context, name string, id uint64) error {
	if _, err := n.apply(ctx, &completeOffsetResetV1{Connector: name, ID: id}); err != nil {
		return fmt.Errorf("complete offset reset %d of connector %q: %w", id, name, err)
	}
	return nil
}

// SetLogLevel sets logger's level on every node (PUT /admin/loggers/{logger}?scope=cluster):
// each node applies the change as its state reaches it. Leader only.
func (n *Node) SetLogLevel(ctx context.Context, logger, level string) error {
	if _, err := n.apply(ctx, &setLogLevelV1{Logger: logger, Level: level, AtMs: time.Now().UnixMilli()}); err != nil {
		return fmt.Errorf("set the level of logger %q on every node: %w", logger, err)
	}
	return nil
}
