// Package peer is what the nodes of a cluster say to each other over HTTP, under /internal/ on
// the REST listener: the wire types, the sender (Client) and the receiver (Mount). A node
// heartbeats to the leader with its tasks' states, asks any member to be added (which forwards
// to the leader), a follower's schema registry sends its writes to the leader, and a task that
// reads an execute-snapshot signal has the leader record it.
package peer

import "errors"

// ErrUnknownNode answers a heartbeat from a node that is not a member (410): it must join.
var ErrUnknownNode = errors.New("unknown node")

// ErrRefused means the node called refused the call for good (403, or 401): a wrong or missing
// cluster.secret, or a join of a node of another cluster.id. Trying again will not help.
var ErrRefused = errors.New("refused by the cluster")

// Heartbeat is what a node sends the leader every worker.heartbeat.interval: that it is
// alive, where its REST API is, and how its tasks are doing (so that the leader can answer
// GET /connectors/{name}/status for every node).
type Heartbeat struct {
	NodeID   string       `json:"node_id"`
	HTTPAddr string       `json:"http_addr"`
	Tasks    []TaskReport `json:"tasks"`
	// Stopping is the last heartbeat of a node stopping cleanly, sent once its tasks have
	// stopped and committed: the leader moves them at once instead of after the session
	// timeout, or, with RestartWithinMs, once that long has passed without the node back.
	Stopping bool `json:"stopping,omitempty"`
	// RestartWithinMs, on a Stopping heartbeat, is how long the node expects to be away
	// (worker.rebalance.delay), in milliseconds: its tasks wait for it that long.
	RestartWithinMs int64 `json:"restart_within_ms,omitempty"`
}

// HeartbeatAck is the leader's answer to a heartbeat. Index is the Raft index of the leader's
// cluster state when it answered: the sender renews its lease only once it has applied that
// index itself, so a node that wakes up (SIGSTOP, a long GC pause) with an old state never runs
// tasks that moved away while it slept.
type HeartbeatAck struct {
	Index uint64 `json:"index"`
}

// TaskReport is one task's state on the node that runs it, at the epoch it runs it at, in the
// runner's words (RUNNING, RESTARTING, FAILED), with why it failed or waits to retry (Trace),
// or why a RUNNING task is stalled (Degraded).
type TaskReport struct {
	Connector string `json:"connector"`
	Task      string `json:"task"`
	Epoch     uint64 `json:"epoch"`
	State     string `json:"state"`
	Trace     string `json:"trace,omitempty"`
	Degraded  string `json:"degraded,omitempty"`
	// EventsSeen and BehindSourceMs sum up the task's metrics (taskmetrics.Figures), when
	// it has any yet.
	EventsSeen     *int64 `json:"events_seen,omitempty"`
	BehindSourceMs *int64 `json:"behind_source_ms,omitempty"`
}

// JoinRequest asks the leader to add a node.
type JoinRequest struct {
	// ClusterID is the joining node's cluster.id: a cluster takes only nodes of its own.
	ClusterID string `json:"cluster_id"`
	NodeID    string `json:"node_id"`
	RaftAddr  string `json:"raft_addr"`
	HTTPAddr  string `json:"http_addr"`
}

// JoinResponse says how the node was added.
type JoinResponse struct {
	NodeID string `json:"node_id"`
	Voter  bool   `json:"voter"`
}

// SnapshotSignal is an execute-snapshot signal a task read from its connector's signal
// collection (signal.data.collection), for the leader to record as a snapshot request.
type SnapshotSignal struct {
	Connector   string   `json:"connector"`
	Collections []string `json:"collections"`
	// Signal identifies the signal (its document's _id): the leader records each once.
	Signal string `json:"signal"`
}

// SnapshotSignalAnswer is the leader's answer: the request's id, or why the cluster refuses
// the signal for good (Refused: a collection the connector does not stream, a STOPPED
// connector), which the sender logs rather than trying again.
type SnapshotSignalAnswer struct {
	ID      uint64 `json:"id,omitempty"`
	Refused string `json:"refused,omitempty"`
}
