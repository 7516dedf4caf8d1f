package coordinator

import (
	"errors"

	"github.com/mongorelay/mongorelay/internal/forward"
	"github.com/mongorelay/mongorelay/registry"
)

// Errors to branch on.
var (
	// ErrNotLeader means a write reached a node that does not lead; the
	// error is a *forward.NotLeaderError naming the leader to forward to.
	ErrNotLeader = forward.ErrNotLeader
	// ErrConnectorNotFound means no connector has the name.
	ErrConnectorNotFound = errors.New("connector not found")
	// ErrConnectorExists means CreateConnector found the name taken.
	ErrConnectorExists = errors.New("connector already exists")
	// ErrTaskNotFound means the connector has no task with the id.
	ErrTaskNotFound = errors.New("task not found")
	// ErrStopped means the request needs the connector's tasks, and the
	// connector is STOPPED.
	ErrStopped = errors.New("connector is stopped")
	// ErrNotStopped means the connector's offsets may change only while it
	// is STOPPED (Kafka Connect's rule).
	ErrNotStopped = errors.New("connector is not stopped")
	// ErrStaleGeneration means a task list was computed from a connector
	// config that has changed since.
	ErrStaleGeneration = errors.New("connector config changed")
	// ErrUnknownNode means the node is not a member: it has to join.
	ErrUnknownNode = errors.New("unknown node")
	// ErrRegistryConflict means another writer changed the schema registry
	// since the appending registry last read it (registry.ErrConflict).
	ErrRegistryConflict = registry.ErrConflict
	// ErrUnsupportedCommand means a Raft command of a type or version this
	// build does not know; it is refused without changing the state.
	ErrUnsupportedCommand = errors.New("unsupported command")
	// ErrInvalid means a request was malformed (empty name, bad state).
	ErrInvalid = errors.New("invalid request")
	// ErrClusterID means a node of another cluster.id: the state belongs to
	// another cluster.
	ErrClusterID = errors.New("another cluster")
	// ErrClosed means the node was shut down.
	ErrClosed = errors.New("coordinator closed")
)
