package api

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// This file declares what the Connect-compatible REST API needs of the node it runs on
// (Cluster), implemented by the worker over the coordinator, and the values it passes.
// Keeping it here, in the api's own terms, keeps api from depending on the coordinator and
// lets the handlers be tested with a fake.

// Cluster is the node the REST API serves. Writes, and reads of what only the leader knows
// (task status), return a *forward.NotLeaderError on any other node: the API then forwards
// the request to the leader (forward.go).
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
	// RequestSnapshot asks for collections ("<db>.<collection>") of a connector to be copied
	// again while they stream, and returns the request's id: ErrNotFound when there is no
	// such connector, ErrBadRequest for a collection it does not capture, ErrConflict while
	// it is STOPPED. On the leader only.
	RequestSnapshot(ctx context.Context, name string, collections []string) (uint64, error)
	// ConnectorStatus returns the connector's and its tasks' states; on the leader only,
	// which hears every node's task states in their heartbeats.
	ConnectorStatus(ctx context.Context, name string) (ConnectorStatus, error)

	// ConnectorOffsets returns the connector's committed offsets as the offsets topic holds
	// them now, in any state (GET /connectors/{name}/offsets), or ErrNotFound.
	ConnectorOffsets(ctx context.Context, name string) ([]Offset, error)
	// ResetOffsets deletes every offset of a STOPPED connector (DELETE .../offsets), so that
	// it starts afresh when resumed; ErrNotStopped in any other state, ErrNotFound when there
	// is no such connector. On the leader only.
	ResetOffsets(ctx context.Context, name string) error
	// AlterOffsets writes offsets of a STOPPED connector (PATCH .../offsets), an Offset
	// whose Offset is null deleting its partition's; errors as ResetOffsets, and ErrBadRequest
	// for an offset the connector cannot have. On the leader only.
	AlterOffsets(ctx context.Context, name string, offsets []Offset) error

	// SetClusterLogLevel sets a logger's level (log4j's name, checked already) on every node
	// of the cluster (PUT /admin/loggers/{logger}?scope=cluster); each node applies it to its
	// Loggers. On the leader only.
	SetClusterLogLevel(ctx context.Context, logger, level string) error

	// AppliedIndex is the index of the cluster state this node has applied; WaitApplied
	// returns once it has applied index (forward.IndexHeader).
	AppliedIndex() uint64
	WaitApplied(ctx context.Context, index uint64) error

	// Overview returns this node's view of the cluster (GET /cluster).
	Overview(ctx context.Context) (Overview, error)
	// Health returns this node's health (GET /health, /readyz).
	Health() Health
	// RemoveNode removes a node from the cluster, on the leader (mongorelay worker leave).
	RemoveNode(ctx context.Context, id string) error
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
	// ErrNotStopped: the connector's offsets change only while it is STOPPED (400).
	ErrNotStopped = errors.New("connector is not stopped")
	// ErrConflict: the request conflicts with a change under way; it may be sent again (409).
	ErrConflict = errors.New("conflict")
)

// Offset is one entry of Kafka Connect's offsets API (KIP-875): a partition, which for a
// source task names a collection shard (DESIGN.md 5: the offsets topic key's object), and its
// offset, the offsets topic value (null: none, or to delete it in a PATCH).
type Offset struct {
	Partition json.RawMessage `json:"partition"`
	Offset    json.RawMessage `json:"offset"`
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
	// Spec is the task's work, as its kind listed it (GET /connectors/{name}/topics).
	Spec taskid.Spec
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

// TaskStatus is one task's state, the node that runs it and, when it failed or waits to
// retry, why. Beyond Kafka Connect's fields: Degraded says why a RUNNING task is stalled
// (waiting on Kafka, MongoDB or the registry), absent while the task is healthy; EventsSeen
// and BehindSourceMs are the task's Debezium figures (TotalNumberOfEventsSeen since it last
// started on its node, MilliSecondsBehindSource), absent until its node reports them.
type TaskStatus struct {
	ID             int    `json:"id"`
	State          string `json:"state"`
	WorkerID       string `json:"worker_id"`
	Trace          string `json:"trace,omitempty"`
	Degraded       string `json:"degraded,omitempty"`
	EventsSeen     *int64 `json:"events_seen,omitempty"`
	BehindSourceMs *int64 `json:"behind_source_ms,omitempty"`
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

// Health is GET /health and /readyz: KIP-1017's status and message, which the API sets from
// the rest (a Cluster leaves them empty), and the node's view of its cluster.
type Health struct {
	// Status is healthy, starting or unhealthy; Message says why, in words.
	Status    string `json:"status"`
	Message   string `json:"message"`
	NodeID    string `json:"node_id"`
	RaftState string `json:"raft_state"`
	Leader    string `json:"leader"`
	Fenced    bool   `json:"fenced"`
	// RefusedCommand is the first Raft command this node's build could not read, absent while
	// there is none: the node must be upgraded to the build the others run.
	RefusedCommand string `json:"refused_command,omitempty"`
	// Tasks counts the tasks this node runs.
	Tasks int `json:"tasks"`
}
