package api

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// This file declares what the Connect-compatible REST API needs of the node it runs on
// (Cluster), implemented by the worker over the coordinator, and the values it passes.
// Keeping it here, in the api's own terms, keeps api from depending on the coordinator and
// lets the handlers be tested with a fake.

// Cluster is the node the REST API serves. Writes, and reads of what only the leader knows
// (task status), return a *NotLeaderError on any other node: the API then forwards the
// request to the leader (forward.go).
type Cluster interface {
	// Info names the node and its cluster.
	Info() Info
	// Connectors returns every connector, by name, as this node has applied the cluster
	// state; Connector returns one.
	Connectors() []Connector
	Connector(name string) (Connector, bool)

	// CreateConnector creates a connector in target state initial ("" is RUNNING), or returns
	// ErrExists. The config is validated by the API first.
	CreateConnector(ctx context.Context, name string, config map[string]string, initial string) error
	// PutConnectorConfig creates a RUNNING connector or replaces its config.
	PutConnectorConfig(ctx context.Context, name string, config map[string]string) (created bool, err error)
	// DeleteConnector deletes a connector, or returns ErrNotFound.
	DeleteConnector(ctx context.Context, name string) error
	// SetTargetState pauses (PAUSED), resumes (RUNNING) or stops (STOPPED) a connector.
	SetTargetState(ctx context.Context, name, state string) error
	// RestartConnector lists the connector's tasks again.
	RestartConnector(ctx context.Context, name string) error
	// RestartTasks restarts the connector's tasks with ids, wherever they run.
	RestartTasks(ctx context.Context, name string, ids []int) error
	// ConnectorStatus returns the connector's and its tasks' states; on the leader only,
	// which hears every node's task states in their heartbeats.
	ConnectorStatus(ctx context.Context, name string) (ConnectorStatus, error)

	// Overview returns this node's view of the cluster (GET /cluster).
	Overview(ctx context.Context) (Overview, error)
	// Health returns this node's health (GET /health, /readyz).
	Health() Health

	// Heartbeat records a node's heartbeat, on the leader only. It is never forwarded: the
	// sender must reach the leader itself. ErrUnknownNode means the sender is not a member.
	Heartbeat(ctx context.Context, hb Heartbeat) (HeartbeatAck, error)
	// Join adds a node to the cluster, on the leader.
	Join(ctx context.Context, req JoinRequest) (JoinResponse, error)
	// RemoveNode removes a node from the cluster, on the leader.
	RemoveNode(ctx context.Context, id string) error
	// RegistryWrite applies a schema registry write, on the leader: a follower's registry
	// sends its writes here (registry_rpc.go).
	RegistryWrite(ctx context.Context, call RegistryCall) (RegistryResult, error)
}

// Errors a Cluster returns, wrapped with details, for the API to answer with Kafka Connect's
// status codes.
var (
	// ErrNotFound: no connector, task or node of that name (404).
	ErrNotFound = errors.New("not found")
	// ErrExists: the connector exists already (409).
	ErrExists = errors.New("already exists")
	// ErrBadRequest: the request cannot be applied as it is (400).
	ErrBadRequest = errors.New("bad request")
	// ErrUnknownNode: a heartbeat from a node that is not a member (410): it must join.
	ErrUnknownNode = errors.New("unknown node")
)

// NotLeaderError means only the leader can answer; LeaderHTTP is where it is, empty while an
// election is under way.
type NotLeaderError struct {
	LeaderID   string `json:"leader_id"`
	LeaderHTTP string `json:"leader_http"`
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "not the leader, and no leader is known (election under way)"
	}
	return fmt.Sprintf("not the leader: leader is %s at %s", e.LeaderID, e.LeaderHTTP)
}

// Info names a node and its cluster (GET /).
type Info struct {
	Version        string
	Commit         string
	ClusterID      string
	NodeID         string
	KafkaClusterID string
}

// Connector is a connector as the cluster state holds it.
type Connector struct {
	Name string
	// Config is as stored, secrets included: the API redacts it before showing it.
	Config map[string]string
	// State is the target state: RUNNING, PAUSED or STOPPED.
	State string
	Tasks []Task
}

// Task is one of a connector's tasks and where it runs.
type Task struct {
	ID   int
	Name string
	// Config holds the task's own entries (task.name and what its work is), shown over the
	// connector's config in GET /connectors/{name}/tasks.
	Config map[string]string
	Node   string // "": unassigned
	Epoch  uint64
}

// Task and connector states, Kafka Connect's.
const (
	StateRunning    = "RUNNING"
	StatePaused     = "PAUSED"
	StateStopped    = "STOPPED"
	StateFailed     = "FAILED"
	StateUnassigned = "UNASSIGNED"
	StateRestarting = "RESTARTING"
)

// ConnectorStatus is GET /connectors/{name}/status.
type ConnectorStatus struct {
	Name      string       `json:"name"`
	Connector StateInfo    `json:"connector"`
	Tasks     []TaskStatus `json:"tasks"`
	Type      string       `json:"type"`
}

// StateInfo is a connector's state and the node that runs it (the leader lists its tasks).
type StateInfo struct {
	State    string `json:"state"`
	WorkerID string `json:"worker_id"`
	Trace    string `json:"trace,omitempty"`
}

// TaskStatus is one task's state, the node that runs it and, when it failed, why.
type TaskStatus struct {
	ID       int    `json:"id"`
	State    string `json:"state"`
	WorkerID string `json:"worker_id"`
	Trace    string `json:"trace,omitempty"`
}

// Overview is GET /cluster: this node's view of the cluster.
type Overview struct {
	ClusterID string `json:"cluster_id"`
	NodeID    string `json:"node_id"`
	// Leader is the leader's id, "" while none is known.
	Leader     string `json:"leader"`
	LeaderHTTP string `json:"leader_http"`
	// RaftState is this node's: Leader, Follower, Candidate or Shutdown.
	RaftState string `json:"raft_state"`
	Term      uint64 `json:"term"`
	// Index is the Raft index of the cluster state this view is of; Epoch the highest task
	// epoch in it.
	Index uint64 `json:"index"`
	Epoch uint64 `json:"epoch"`
	// Fenced is true while this node runs no task because it has not reached the leader
	// for worker.lease.
	Fenced      bool         `json:"fenced"`
	Nodes       []Member     `json:"nodes"`
	Assignments []Assignment `json:"assignments"`
}

// Member is a node of the cluster.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Voter    bool   `json:"voter"`
	Leader   bool   `json:"leader"`
	// LastHeartbeat is known on the leader only.
	LastHeartbeat time.Time `json:"last_heartbeat,omitzero"`
}

// Assignment is a task and the node that owns it.
type Assignment struct {
	Connector string `json:"connector"`
	Task      string `json:"task"`
	TaskID    int    `json:"task_id"`
	Node      string `json:"node"`
	Epoch     uint64 `json:"epoch"`
}

// Health is GET /health.
type Health struct {
	Status    string `json:"status"` // UP
	NodeID    string `json:"node_id"`
	RaftState string `json:"raft_state"`
	Leader    string `json:"leader"`
	Fenced    bool   `json:"fenced"`
	// Tasks counts the tasks this node runs.
	Tasks int `json:"tasks"`
}

// Heartbeat is what a node sends the leader every worker.heartbeat.interval: that it is
// alive, where its REST API is, and how its tasks are doing (so that the leader can answer
// GET /connectors/{name}/status for every node).
type Heartbeat struct {
	NodeID   string       `json:"node_id"`
	HTTPAddr string       `json:"http_addr"`
	Tasks    []TaskReport `json:"tasks"`
}

// HeartbeatAck is the leader's answer to a heartbeat. Index is the Raft index of the leader's
// cluster state when it answered: the sender renews its lease only once it has applied that
// index itself, so a node that wakes up (SIGSTOP, a long GC pause) with an old state never runs
// tasks that moved away while it slept.
type HeartbeatAck struct {
	Index uint64 `json:"index"`
}

// TaskReport is one task's state on the node that runs it, at the epoch it runs it at.
type TaskReport struct {
	Connector string `json:"connector"`
	Task      string `json:"task"`
	Epoch     uint64 `json:"epoch"`
	State     string `json:"state"`
	Trace     string `json:"trace,omitempty"`
}

// JoinRequest asks the leader to add a node.
type JoinRequest struct {
	NodeID   string `json:"node_id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
}

// JoinResponse says how the node was added.
type JoinResponse struct {
	NodeID string `json:"node_id"`
	Voter  bool   `json:"voter"`
}
