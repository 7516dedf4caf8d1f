package coordinator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mongorelay/mongorelay/registry"

	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// A Raft command is one JSON object:
//
//	{"type":"put_connector","version":1,"payload":{...}}
//
// Payloads are decoded strictly (an unknown field is an error) and a type or
// version this build does not know is refused without touching the state,
// so any change to a payload's fields needs a new version, and a cluster
// must run a build that knows a version before any node writes it.
type commandType string

// The command types; each is at version 1.
const (
	cmdPutConnector        commandType = "put_connector"
	cmdDeleteConnector     commandType = "delete_connector"
	cmdSetTargetState      commandType = "set_target_state"
	cmdRestart             commandType = "restart"
	cmdSetTasks            commandType = "set_tasks"
	cmdAssign              commandType = "assign"
	cmdPutNode             commandType = "put_node"
	cmdRemoveNode          commandType = "remove_node"
	cmdRegistryAppend      commandType = "registry_append"
	cmdRequestOffsetReset  commandType = "request_offset_reset"
	cmdCompleteOffsetReset commandType = "complete_offset_reset"
	cmdSetClusterID        commandType = "set_cluster_id"
	cmdSetLogLevel         commandType = "set_log_level"
	cmdRequestSnapshot     commandType = "request_snapshot"
)

type envelope struct {
	Type    commandType     `json:"type"`
	Version int             `json:"version"`
	Payload json.RawMessage `json:"payload"`
}

// putConnectorV1 creates a connector or replaces its config.
type putConnectorV1 struct {
	Name   string            `json:"name"`
	Config map[string]string `json:"config"`
	// CreateOnly refuses an existing name (POST /connectors).
	CreateOnly bool `json:"create_only,omitempty"`
	// InitialState is the target state of a new connector; "" is RUNNING.
	InitialState TargetState `json:"initial_state,omitempty"`
}

type deleteConnectorV1 struct {
	Name string `json:"name"`
}

type setTargetStateV1 struct {
	Name  string      `json:"name"`
	State TargetState `json:"state"`
}

// restartV1 restarts a connector (no Tasks) or some of its tasks.
type restartV1 struct {
	Connector string `json:"connector"`
	Tasks     []int  `json:"tasks,omitempty"`
}

// setTasksV1 is the leader's listing of a connector's tasks for the config
// at Generation.
type setTasksV1 struct {
	Connector  string        `json:"connector"`
	Generation uint64        `json:"generation"`
	Tasks      []taskid.Spec `json:"tasks"`
}

// assignV1 moves tasks; every task that changes node gets one new epoch.
type assignV1 struct {
	Moves []moveV1 `json:"moves"`
}

type moveV1 struct {
	Connector string `json:"connector"`
	Task      string `json:"task"`
	Node      string `json:"node"` // "": unassign
}

type putNodeV1 struct {
	Node NodeInfo `json:"node"`
}

type removeNodeV1 struct {
	ID string `json:"id"`
}

// registryAppendV1 appends schema registry changes if the registry is still
// at ExpectSeq, the state its writer read.
type registryAppendV1 struct {
	ExpectSeq uint64             `json:"expect_seq"`
	Changes   []registryChangeV1 `json:"changes"`
}

// registryChangeV1 is a registry.Change.
type registryChangeV1 struct {
	Kind    string                 `json:"kind"` // version, config or max_id
	Subject string                 `json:"subject,omitempty"`
	Version int                    `json:"version,omitempty"`
	ID      int                    `json:"id,omitempty"`
	Schema  string                 `json:"schema,omitempty"`
	Deleted bool                   `json:"deleted,omitempty"`
	Level   registry.Compatibility `json:"level,omitempty"`
	Remove  bool                   `json:"remove,omitempty"`
}

type requestOffsetResetV1 struct {
	Connector string    `json:"connector"`
	At        time.Time `json:"at"` // stamped by the leader
}

type completeOffsetResetV1 struct {
	Connector string `json:"connector"`
	ID        uint64 `json:"id"`
}

// setClusterIDV1 stamps the cluster's id (worker's cluster.id), once: the first leader
// applies it, and it never changes after.
type setClusterIDV1 struct {
	ID string `json:"id"`
}

// setLogLevelV1 sets a logger's level on every node (PUT /admin/loggers/{logger}?scope=cluster);
// AtMs is when the leader took the request, in Unix milliseconds.
type setLogLevelV1 struct {
	Logger string `json:"logger"`
	Level  string `json:"level"`
	AtMs   int64  `json:"at_ms"`
}

// requestSnapshotV1 asks for collections of a connector to be copied again while they stream
// (POST /connectors/{name}/snapshot).
type requestSnapshotV1 struct {
	Connector   string   `json:"connector"`
	Collections []string `json:"collections"`
	// Signal, when set, identifies the execute-snapshot signal that asked: a signal already
	// among the connector's requests is not recorded again.
	Signal string `json:"signal,omitempty"`
}

// typeOf names a payload's command type; the version is 1 for all.
func typeOf(payload any) (commandType, error) {
	switch payload.(type) {
	case *putConnectorV1:
		return cmdPutConnector, nil
	case *deleteConnectorV1:
		return cmdDeleteConnector, nil
	case *setTargetStateV1:
		return cmdSetTargetState, nil
	case *restartV1:
		return cmdRestart, nil
	case *setTasksV1:
		return cmdSetTasks, nil
	case *assignV1:
		return cmdAssign, nil
	case *putNodeV1:
		return cmdPutNode, nil
	case *removeNodeV1:
		return cmdRemoveNode, nil
	case *registryAppendV1:
		return cmdRegistryAppend, nil
	case *requestOffsetResetV1:
		return cmdRequestOffsetReset, nil
	case *completeOffsetResetV1:
		return cmdCompleteOffsetReset, nil
	case *setClusterIDV1:
		return cmdSetClusterID, nil
	case *setLogLevelV1:
		return cmdSetLogLevel, nil
	case *requestSnapshotV1:
		return cmdRequestSnapshot, nil
	}
	return "", fmt.Errorf("%w: payload %T", ErrUnsupportedCommand, payload)
}

// encodeCommand wraps payload, a pointer to one of the payload types, in its
// envelope.
func encodeCommand(payload any) ([]byte, error) {
	t, err := typeOf(payload)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s command: %w", t, err)
	}
	data, err := json.Marshal(envelope{Type: t, Version: 1, Payload: raw})
	if err != nil {
		return nil, fmt.Errorf("encode %s command: %w", t, err)
	}
	return data, nil
}

// decodeCommand returns the payload of a command, as a pointer to its type.
func decodeCommand(data []byte) (any, error) {
	var env envelope
	if err := strictUnmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("decode command: %w", err)
	}
	if env.Version != 1 {
		return nil, &unsupportedCommandError{Type: env.Type, Version: env.Version}
	}
	var p any
	switch env.Type {
	case cmdPutConnector:
		p = new(putConnectorV1)
	case cmdDeleteConnector:
		p = new(deleteConnectorV1)
	case cmdSetTargetState:
		p = new(setTargetStateV1)
	case cmdRestart:
		p = new(restartV1)
	case cmdSetTasks:
		p = new(setTasksV1)
	case cmdAssign:
		p = new(assignV1)
	case cmdPutNode:
		p = new(putNodeV1)
	case cmdRemoveNode:
		p = new(removeNodeV1)
	case cmdRegistryAppend:
		p = new(registryAppendV1)
	case cmdRequestOffsetReset:
		p = new(requestOffsetResetV1)
	case cmdCompleteOffsetReset:
		p = new(completeOffsetResetV1)
	case cmdSetClusterID:
		p = new(setClusterIDV1)
	case cmdSetLogLevel:
		p = new(setLogLevelV1)
	case cmdRequestSnapshot:
		p = new(requestSnapshotV1)
	default:
		return nil, &unsupportedCommandError{Type: env.Type, Version: env.Version}
	}
	if err := strictUnmarshal(env.Payload, p); err != nil {
		return nil, fmt.Errorf("decode %s command: %w", env.Type, err)
	}
	return p, nil
}

// unsupportedCommandError is a command whose type or version this build does not know: a
// newer build wrote it.
type unsupportedCommandError struct {
	Type    commandType
	Version int
}

func (e *unsupportedCommandError) Error() string {
	return fmt.Sprintf("%v: %q version %d (this build knows version 1 of its command types)", ErrUnsupportedCommand, e.Type, e.Version)
}

func (e *unsupportedCommandError) Unwrap() error { return ErrUnsupportedCommand }

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after %T", v)
	}
	return nil
}

func toChangeV1(c registry.Change) (registryChangeV1, error) {
	out := registryChangeV1{Subject: c.Subject, Version: c.Version, ID: c.ID, Schema: c.Schema, Deleted: c.Deleted, Level: c.Level, Remove: c.Remove}
	switch c.Kind {
	case registry.ChangeVersion:
		out.Kind = "version"
	case registry.ChangeConfig:
		out.Kind = "config"
	case registry.ChangeMaxID:
		out.Kind = "max_id"
	default:
		return out, fmt.Errorf("%w: schema registry change kind %d", ErrInvalid, c.Kind)
	}
	return out, nil
}

func (c registryChangeV1) change() registry.Change {
	out := registry.Change{Subject: c.Subject, Version: c.Version, ID: c.ID, Schema: c.Schema, Deleted: c.Deleted, Level: c.Level, Remove: c.Remove}
	switch c.Kind {
	case "version":
		out.Kind = registry.ChangeVersion
	case "config":
		out.Kind = registry.ChangeConfig
	case "max_id":
		out.Kind = registry.ChangeMaxID
	}
	return out
}

// key is the change's compaction key: only the last change per key matters.
func (c registryChangeV1) key() string {
	switch c.Kind {
	case "version":
		return fmt.Sprintf("version\x00%s\x00%d", c.Subject, c.Version)
	case "config":
		return "config\x00" + c.Subject
	}
	return "max_id"
}
