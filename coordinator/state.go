package coordinator

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// TargetState is what the user asked a connector to do (Kafka Connect's
// target state).
type TargetState string

// The target states. A PAUSED connector keeps its tasks assigned but not
// running, so resuming is immediate; a STOPPED one has no assignments at all
// and its offsets may be reset.
const (
	StateRunning TargetState = "RUNNING"
	StatePaused  TargetState = "PAUSED"
	StateStopped TargetState = "STOPPED"
)

func (s TargetState) valid() bool {
	return s == StateRunning || s == StatePaused || s == StateStopped
}

// Task is one of a connector's tasks and where it runs.
type Task struct {
	// ID is the task's Connect-style id. A connector's n tasks have ids
	// 0..n-1, and a task keeps its id while its collection and shard exist;
	// only when tasks disappear does a task whose id is n or more take one
	// they freed, which keeps the ids dense.
	ID   int         `json:"id"`
	Spec taskid.Spec `json:"spec"`
	// Node runs the task; "" while unassigned (STOPPED connector, or no
	// live node yet).
	Node string `json:"node,omitempty"`
	// Epoch changes whenever the task changes owner; it only grows.
	Epoch uint64 `json:"epoch"`
	// Restarts counts restart requests (RestartTasks); the owner restarts
	// the task when it changes.
	Restarts uint64 `json:"restarts"`
}

// Name is the task's name (taskid.Spec.Name).
func (t Task) Name() string { return t.Spec.Name() }

// same reports whether t and o are equal; a task's name says all of its spec.
func (t Task) same(o Task) bool {
	return t.ID == o.ID && t.Node == o.Node && t.Epoch == o.Epoch && t.Restarts == o.Restarts && t.Name() == o.Name()
}

// Connector is a connector in the cluster state.
type Connector struct {
	Name   string            `json:"name"`
	Config map[string]string `json:"config"`
	State  TargetState       `json:"state"`
	// Created is the Raft index of the command that created the connector:
	// it tells a deleted and recreated connector from the old one.
	Created uint64 `json:"created"`
	// Generation counts config changes: 1 when created.
	Generation uint64 `json:"generation"`
	// Restarts counts RestartConnector requests.
	Restarts uint64 `json:"restarts"`
	// TasksGeneration is the Generation Tasks were listed for; 0 until the
	// leader lists them the first time.
	TasksGeneration uint64 `json:"tasks_generation"`
	// Tasks, by ID.
	Tasks []Task `json:"tasks"`
	// Snapshots are the newest ad-hoc snapshot requests (RequestSnapshot),
	// oldest first, at most maxSnapshotRequests.
	Snapshots []SnapshotRequest `json:"snapshots,omitempty"`
}

// SnapshotRequest asks for collections of a connector to be copied again
// while they stream. Each task of a named collection copies it once.
type SnapshotRequest struct {
	// ID is the request's Raft index: later requests have greater ids.
	ID uint64 `json:"id"`
	// Collections are "<db>.<collection>" names.
	Collections []string `json:"collections"`
	// Signal identifies the execute-snapshot signal that asked; "" for a
	// REST request.
	Signal string `json:"signal,omitempty"`
}

// maxSnapshotRequests bounds a connector's kept snapshot requests: a task
// polls them every second, so one that has not seen the oldest of that many
// has missed a burst of requests, not one.
const maxSnapshotRequests = 32

func (c *Connector) clone() *Connector {
	d := *c
	d.Tasks = slices.Clone(c.Tasks)
	d.Snapshots = slices.Clone(c.Snapshots)
	return &d
}

// NodeInfo is a member of the cluster.
type NodeInfo struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	// Voter is true for a Raft voter, false for a non-voter.
	Voter bool `json:"voter"`
}

// OffsetReset is a pending request to reset a STOPPED connector's offsets.
type OffsetReset struct {
	Connector string `json:"connector"`
	// ID identifies the request (its Raft index); CompleteOffsetReset names
	// it, so a newer request is not marked done by an older reset.
	ID          uint64    `json:"id"`
	RequestedAt time.Time `json:"requested_at"`
}

// Assignment is a task assigned to a node, with what the node needs to run
// it. A node runs a task while the connector is RUNNING and stops it the
// moment any of Node, Epoch, Generation or Restarts changes (restarting it
// if it is still its own).
type Assignment struct {
	Connector string
	Task      string // the task's name
	TaskID    int
	Spec      taskid.Spec
	Node      string
	Epoch     uint64
	// Generation is the connector config's generation.
	Generation uint64
	// Restarts counts the task's restart requests.
	Restarts uint64
	// State is the connector's target state: run the task only if RUNNING.
	State TargetState
	// Config is the connector's config. It is shared: do not modify it.
	Config map[string]string
}

// State is an immutable view of the cluster state at one Raft index. Get
// one from Node.State or Node.Watch; it never changes, so readers need no
// lock. Its methods return copies.
type State struct {
	index      uint64 // Raft index of the last command applied
	clusterID  string // the cluster.id the first leader stamped; "" before
	epoch      uint64 // the highest epoch given to a task
	connectors map[string]*Connector
	nodes      map[string]NodeInfo
	resets     map[string]OffsetReset
	logLevels  map[string]LogLevel // by logger: the levels set for every node
	// registry holds the last change per key of the schema registry, with
	// the sequence number it was written at.
	registry    map[string]registryRecord
	registrySeq uint64 // registry changes applied so far
	// registryDropped is the last sequence number whose change dropped a key
	// from registry (or, after a restore, the snapshot's sequence number): a
	// reader behind it cannot catch up from the records and must replay.
	registryDropped uint64
}

func emptyState() *State {
	return &State{
		connectors: map[string]*Connector{},
		nodes:      map[string]NodeInfo{},
		resets:     map[string]OffsetReset{},
		logLevels:  map[string]LogLevel{},
		registry:   map[string]registryRecord{},
	}
}

// LogLevel is a logger's level as set for every node (PUT /admin/loggers/{logger}?scope=cluster):
// each node applies it when it changes, and when it starts or joins.
type LogLevel struct {
	Logger string `json:"logger"`
	Level  string `json:"level"` // as the request named it (log4j's names)
	// ModifiedMs is when the leader took the request, in Unix milliseconds.
	ModifiedMs int64 `json:"modified_ms"`
}

// LogLevels lists the levels set for every node, by logger name.
func (s *State) LogLevels() []LogLevel {
	return slices.SortedFunc(maps.Values(s.logLevels), func(a, b LogLevel) int { return cmp.Compare(a.Logger, b.Logger) })
}

// Index is the Raft index of the last command applied to this state.
func (s *State) Index() uint64 { return s.index }

// ClusterID is the cluster's id (worker's cluster.id), stamped by its first leader; "" until
// then.
func (s *State) ClusterID() string { return s.clusterID }

// Epoch is the highest epoch given to any task so far.
func (s *State) Epoch() uint64 { return s.epoch }

// Connector returns the connector called name.
func (s *State) Connector(name string) (Connector, bool) {
	c, ok := s.connectors[name]
	if !ok {
		return Connector{}, false
	}
	return copyConnector(c), true
}

// Connectors returns every connector, by name.
func (s *State) Connectors() []Connector {
	out := make([]Connector, 0, len(s.connectors))
	for _, name := range slices.Sorted(maps.Keys(s.connectors)) {
		out = append(out, copyConnector(s.connectors[name]))
	}
	return out
}

func copyConnector(c *Connector) Connector {
	d := *c
	d.Config = maps.Clone(c.Config)
	d.Tasks = slices.Clone(c.Tasks)
	return d
}

// Nodes returns the members, by id.
func (s *State) Nodes() []NodeInfo {
	return slices.SortedFunc(maps.Values(s.nodes), func(a, b NodeInfo) int { return cmp.Compare(a.ID, b.ID) })
}

// Node returns the member with id.
func (s *State) Node(id string) (NodeInfo, bool) {
	n, ok := s.nodes[id]
	return n, ok
}

// Assigned returns the tasks assigned to node, by connector then task id,
// including those of PAUSED connectors (see Assignment.State).
func (s *State) Assigned(node string) []Assignment {
	return s.assignments(func(t Task) bool { return t.Node == node })
}

// Assignments returns every assigned task, by connector then task id.
func (s *State) Assignments() []Assignment {
	return s.assignments(func(t Task) bool { return t.Node != "" })
}

func (s *State) assignments(keep func(Task) bool) []Assignment {
	var out []Assignment
	for _, name := range slices.Sorted(maps.Keys(s.connectors)) {
		c := s.connectors[name]
		for _, t := range c.Tasks {
			if !keep(t) {
				continue
			}
			out = append(out, Assignment{
				Connector: c.Name, Task: t.Name(), TaskID: t.ID, Spec: t.Spec, Node: t.Node,
				Epoch: t.Epoch, Generation: c.Generation, Restarts: t.Restarts, State: c.State, Config: c.Config,
			})
		}
	}
	return out
}

// OffsetReset returns the pending offset reset of connector.
func (s *State) OffsetReset(connector string) (OffsetReset, bool) {
	r, ok := s.resets[connector]
	return r, ok
}

// OffsetResets returns every pending offset reset, by connector.
func (s *State) OffsetResets() []OffsetReset {
	return slices.SortedFunc(maps.Values(s.resets), func(a, b OffsetReset) int { return cmp.Compare(a.Connector, b.Connector) })
}
