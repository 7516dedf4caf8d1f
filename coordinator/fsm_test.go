package coordinator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mongorelay/mongorelay/registry"

	"github.com/mongorelay/mongorelay/tasks/taskid"
)

func mustEncode(t *testing.T, payload any) []byte {
	t.Helper()
	data, err := encodeCommand(payload)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// applyAll applies payloads from index 1 on and returns the final state and
// each command's error.
func applyAll(t *testing.T, st *State, payloads ...any) (*State, []error) {
	t.Helper()
	var errs []error
	for _, p := range payloads {
		var res applyResult
		st, res = applyCommand(st, st.index+1, mustEncode(t, p))
		errs = append(errs, res.err)
	}
	return st, errs
}

func snapshotBytes(t *testing.T, st *State) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := st.marshal(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func specs(coll string, shards int) []taskid.Spec {
	out := make([]taskid.Spec, shards)
	for i := range out {
		out[i] = taskid.Spec{DB: "db", Coll: coll, Shard: i, Shards: shards}
	}
	return out
}

// history is a command sequence touching every part of the state.
func history() []any {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	return []any{
		&setClusterIDV1{ID: "blue"},
		&putNodeV1{Node: NodeInfo{ID: "n1", RaftAddr: "r1", HTTPAddr: "h1", Voter: true}},
		&putNodeV1{Node: NodeInfo{ID: "n2", RaftAddr: "r2", HTTPAddr: "h2", Voter: true}},
		&putNodeV1{Node: NodeInfo{ID: "n3", RaftAddr: "r3", HTTPAddr: "h3"}},
		&putConnectorV1{Name: "a", Config: map[string]string{"k": "v", "x": "y", "z": "w"}},
		&putConnectorV1{Name: "b", Config: map[string]string{"k": "v"}, InitialState: StatePaused},
		&setTasksV1{Connector: "a", Generation: 1, Tasks: append(specs("c1", 3), specs("c2", 2)...)},
		&setTasksV1{Connector: "b", Generation: 1, Tasks: specs("c", 4)},
		&assignV1{Moves: []moveV1{
			{Connector: "a", Task: "db.c1#0-of-3", Node: "n1"}, {Connector: "a", Task: "db.c1#1-of-3", Node: "n2"},
			{Connector: "a", Task: "db.c1#2-of-3", Node: "n3"}, {Connector: "b", Task: "db.c#0-of-4", Node: "n1"},
		}},
		&restartV1{Connector: "a", Tasks: []int{0, 2}},
		&restartV1{Connector: "b"},
		&requestSnapshotV1{Connector: "a", Collections: []string{"db.c1"}},
		&requestSnapshotV1{Connector: "a", Collections: []string{"db.c2"}, Signal: `{"$oid":"6512bd43d9caa6e02c990b0a"}`},
		&registryAppendV1{ExpectSeq: 0, Changes: []registryChangeV1{
			{Kind: "version", Subject: "s", Version: 1, ID: 1, Schema: `"string"`},
			{Kind: "config", Level: registry.Compatibility("FULL")},
		}},
		&registryAppendV1{ExpectSeq: 2, Changes: []registryChangeV1{{Kind: "max_id", ID: 1}}},
		&putConnectorV1{Name: "c", Config: map[string]string{}},
		&setTargetStateV1{Name: "c", State: StateStopped},
		&requestOffsetResetV1{Connector: "c", At: at},
		&removeNodeV1{ID: "n3"},
		&setLogLevelV1{Logger: "root", Level: "DEBUG", AtMs: at.UnixMilli()},
		&setLogLevelV1{Logger: "root", Level: "WARN", AtMs: at.UnixMilli() + 1},
	}
}

// TestLogLevelsSetForTheCluster: the last level set per logger is kept, with when; one
// without a logger or a level is refused.
func TestLogLevelsSetForTheCluster(t *testing.T) {
	st, errs := applyAll(t, emptyState(), &setLogLevelV1{Logger: "root", Level: "DEBUG", AtMs: 1},
		&setLogLevelV1{Logger: "root", Level: "WARN", AtMs: 2}, &setLogLevelV1{Level: "INFO"}, &setLogLevelV1{Logger: "root"})
	want := []LogLevel{{Logger: "root", Level: "WARN", ModifiedMs: 2}}
	if got := st.LogLevels(); !slices.Equal(got, want) || errs[0] != nil || errs[1] != nil ||
		!errors.Is(errs[2], ErrInvalid) || !errors.Is(errs[3], ErrInvalid) {
		t.Errorf("levels %v, errors %v; want %v, the empty ones invalid", got, errs, want)
	}
}

// TestClusterIDStampedOnce: the cluster id is set once; the same id again is harmless, another
// is refused and changes nothing.
func TestClusterIDStampedOnce(t *testing.T) {
	st, errs := applyAll(t, emptyState(), &setClusterIDV1{ID: "blue"}, &setClusterIDV1{ID: "blue"}, &setClusterIDV1{ID: "green"}, &setClusterIDV1{})
	if st.ClusterID() != "blue" || errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], ErrClusterID) || !errors.Is(errs[3], ErrInvalid) {
		t.Errorf("cluster id %q, errors %v; want blue, the same id taken, another refused naming both, an empty one invalid", st.ClusterID(), errs)
	}
}

func TestApplyDeterministic(t *testing.T) {
	want, errs := applyAll(t, emptyState(), history()...)
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("history refused: %v", err)
	}
	wantBytes := snapshotBytes(t, want)
	for range 20 { // map iteration order differs from run to run
		got, _ := applyAll(t, emptyState(), history()...)
		if b := snapshotBytes(t, got); !bytes.Equal(b, wantBytes) {
			t.Fatalf("same commands, different snapshots:\n%s\n%s", b, wantBytes)
		}
	}
}

func TestApplyDoesNotModifyPublishedState(t *testing.T) {
	var states []*State
	var snaps [][]byte
	st := emptyState()
	for _, p := range history() {
		st, _ = applyAll(t, st, p)
		states = append(states, st)
		snaps = append(snaps, snapshotBytes(t, st))
	}
	for i, st := range states {
		if b := snapshotBytes(t, st); !bytes.Equal(b, snaps[i]) {
			t.Fatalf("state after command %d changed later:\n%s\n%s", i, snaps[i], b)
		}
	}
}

// memorySink is a raft.SnapshotSink in memory.
type memorySink struct{ bytes.Buffer }

func (*memorySink) ID() string    { return "test" }
func (*memorySink) Cancel() error { return nil }
func (*memorySink) Close() error  { return nil }

func TestSnapshotRestore(t *testing.T) {
	src := newFSM(slog.New(slog.DiscardHandler))
	for i, p := range history() {
		src.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: mustEncode(t, p)})
	}
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memorySink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	dst := newFSM(slog.New(slog.DiscardHandler))
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	want, got := src.cur.Load().st, dst.cur.Load().st
	if a, b := snapshotBytes(t, want), snapshotBytes(t, got); !bytes.Equal(a, b) {
		t.Fatalf("restored state differs:\n%s\n%s", a, b)
	}
	if got.Index() != uint64(len(history())) || got.Epoch() != want.Epoch() {
		t.Fatalf("restored index %d epoch %d, want %d %d", got.Index(), got.Epoch(), len(history()), want.Epoch())
	}
	if got.ClusterID() != "blue" {
		t.Errorf("restored cluster id %q, want blue", got.ClusterID())
	}
	if a, b := want.LogLevels(), got.LogLevels(); len(a) != 1 || !slices.Equal(a, b) {
		t.Errorf("restored log levels %v, want %v", b, a)
	}
	if a, b := want.Assignments(), got.Assignments(); len(a) != 3 || !slices.EqualFunc(a, b, sameAssignment) {
		t.Fatalf("restored assignments %v, want %v", b, a)
	}
	// Both go on identically from there.
	next := &putConnectorV1{Name: "d", Config: map[string]string{"k": "v"}}
	a, _ := applyAll(t, want, next)
	b, _ := applyAll(t, got, next)
	if !bytes.Equal(snapshotBytes(t, a), snapshotBytes(t, b)) {
		t.Fatal("restored state diverges on the next command")
	}
}

func sameAssignment(a, b Assignment) bool {
	return a.Connector == b.Connector && a.Task == b.Task && a.TaskID == b.TaskID && a.Node == b.Node &&
		a.Epoch == b.Epoch && a.Generation == b.Generation && a.Restarts == b.Restarts && a.State == b.State
}

func TestCommandVersioning(t *testing.T) {
	base, _ := applyAll(t, emptyState(), &putConnectorV1{Name: "a", Config: map[string]string{}})
	payload, _ := json.Marshal(deleteConnectorV1{Name: "a"})
	tests := []struct {
		name string
		data []byte
	}{
		{"unknown version", mustJSON(t, envelope{Type: cmdDeleteConnector, Version: 2, Payload: payload})},
		{"version 0", mustJSON(t, envelope{Type: cmdDeleteConnector, Payload: payload})},
		{"unknown type", mustJSON(t, envelope{Type: "drop_everything", Version: 1, Payload: payload})},
		{"unknown payload field", mustJSON(t, envelope{Type: cmdDeleteConnector, Version: 1, Payload: json.RawMessage(`{"name":"a","force":true}`)})},
		{"unknown envelope field", []byte(`{"type":"delete_connector","version":1,"payload":{"name":"a"},"v2":1}`)},
		{"not JSON", []byte("\x00\x01")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, res := applyCommand(base, base.index+1, tt.data)
			if res.err == nil {
				t.Fatal("command applied, want it refused")
			}
			if _, ok := st.Connector("a"); !ok || st.Index() != base.index+1 {
				t.Fatalf("refused command changed the state (index %d)", st.Index())
			}
		})
	}
	if _, res := applyCommand(base, 9, mustJSON(t, envelope{Type: cmdDeleteConnector, Version: 1, Payload: payload})); res.err != nil {
		t.Fatalf("version 1 refused: %v", res.err)
	}
	if _, res := applyCommand(base, 9, mustJSON(t, envelope{Type: cmdDeleteConnector, Version: 2, Payload: payload})); !errors.Is(res.err, ErrUnsupportedCommand) {
		t.Fatalf("version 2: err %v, want ErrUnsupportedCommand", res.err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestApplyRules(t *testing.T) {
	nodes := []any{
		&putNodeV1{Node: NodeInfo{ID: "n1"}},
		&putNodeV1{Node: NodeInfo{ID: "n2"}},
	}
	withTasks := append(slices.Clone(nodes),
		&putConnectorV1{Name: "a", Config: map[string]string{"v": "1"}},
		&setTasksV1{Connector: "a", Generation: 1, Tasks: specs("c", 3)},
		&assignV1{Moves: []moveV1{{Connector: "a", Task: "db.c#0-of-3", Node: "n1"}, {Connector: "a", Task: "db.c#1-of-3", Node: "n2"}}},
	)
	tests := []struct {
		name    string
		prepare []any
		cmd     any
		wantErr error
		check   func(t *testing.T, st *State)
	}{
		{
			name: "create refuses an existing name", prepare: withTasks,
			cmd: &putConnectorV1{Name: "a", Config: map[string]string{}, CreateOnly: true}, wantErr: ErrConnectorExists,
		},
		{
			name: "same config keeps the generation", prepare: withTasks,
			cmd: &putConnectorV1{Name: "a", Config: map[string]string{"v": "1"}},
			check: func(t *testing.T, st *State) {
				if c, _ := st.Connector("a"); c.Generation != 1 {
					t.Fatalf("generation %d, want 1", c.Generation)
				}
			},
		},
		{
			name: "new config bumps the generation and keeps tasks", prepare: withTasks,
			cmd: &putConnectorV1{Name: "a", Config: map[string]string{"v": "2"}},
			check: func(t *testing.T, st *State) {
				if c, _ := st.Connector("a"); c.Generation != 2 || len(c.Tasks) != 3 || c.State != StateRunning {
					t.Fatalf("connector %+v", c)
				}
			},
		},
		{
			name:    "tasks listed for an old generation are refused",
			prepare: append(slices.Clone(withTasks), &putConnectorV1{Name: "a", Config: map[string]string{"v": "2"}}),
			cmd:     &setTasksV1{Connector: "a", Generation: 1, Tasks: specs("c", 1)}, wantErr: ErrStaleGeneration,
		},
		{
			name: "duplicate task refused", prepare: withTasks,
			cmd: &setTasksV1{Connector: "a", Generation: 1, Tasks: append(specs("c", 1), specs("c", 1)...)}, wantErr: ErrInvalid,
		},
		{
			name: "a collection shard in two tasks refused", prepare: withTasks,
			cmd: &setTasksV1{Connector: "a", Generation: 1, Tasks: []taskid.Spec{
				{Members: specs("c", 3)[:2]}, {Members: specs("c", 3)[1:]},
			}}, wantErr: ErrInvalid,
		},
		{
			name: "a task with members and a shard of its own refused", prepare: withTasks,
			cmd: &setTasksV1{Connector: "a", Generation: 1, Tasks: []taskid.Spec{
				{DB: "db", Coll: "d", Shard: 0, Shards: 1, Members: specs("c", 3)},
			}}, wantErr: ErrInvalid,
		},
		{
			name: "nested members refused", prepare: withTasks,
			cmd: &setTasksV1{Connector: "a", Generation: 1, Tasks: []taskid.Spec{
				{Members: []taskid.Spec{{Members: specs("c", 3)}}},
			}}, wantErr: ErrInvalid,
		},
		{
			name: "tasks sharing collection shards are new tasks named by their members", prepare: withTasks,
			// tasks.max=2 over c's three shards: c#0 and c#1 go, their pair is a new
			// task; c#2 stays the task it was, its id moved into range.
			cmd: &setTasksV1{Connector: "a", Generation: 1, Tasks: []taskid.Spec{
				{Members: specs("c", 3)[:2]}, specs("c", 3)[2],
			}},
			check: func(t *testing.T, st *State) {
				c, _ := st.Connector("a")
				got := []string{}
				for _, task := range c.Tasks {
					got = append(got, fmt.Sprintf("%d:%s@%s", task.ID, task.Name(), task.Node))
				}
				want := []string{"0:db.c#2-of-3@", "1:db.c#0-of-3+db.c#1-of-3@"}
				if !slices.Equal(got, want) || len(c.Tasks[1].Spec.Units()) != 2 {
					t.Fatalf("tasks %v, want %v", got, want)
				}
			},
		},
		{
			name: "surviving tasks keep id, owner and epoch; ids stay dense", prepare: withTasks,
			// c#0 (id 0, n1) and c#1 (id 1, n2) survive; c#2 (id 2) goes;
			// d#0 is new and takes id 2.
			cmd: &setTasksV1{Connector: "a", Generation: 1, Tasks: append(specs("d", 1), specs("c", 3)[:2]...)},
			check: func(t *testing.T, st *State) {
				c, _ := st.Connector("a")
				got := []string{}
				for _, task := range c.Tasks {
					got = append(got, task.Name()+"@"+task.Node)
				}
				want := []string{"db.c#0-of-3@n1", "db.c#1-of-3@n2", "db.d#0-of-1@"}
				if !slices.Equal(got, want) || c.Tasks[0].Epoch != 1 || c.Tasks[2].ID != 2 {
					t.Fatalf("tasks %v (%+v), want %v", got, c.Tasks, want)
				}
			},
		},
		{
			name: "a task beyond the new count takes a freed id", prepare: withTasks,
			cmd: &setTasksV1{Connector: "a", Generation: 1, Tasks: specs("c", 3)[2:]},
			check: func(t *testing.T, st *State) {
				if c, _ := st.Connector("a"); len(c.Tasks) != 1 || c.Tasks[0].ID != 0 || c.Tasks[0].Name() != "db.c#2-of-3" {
					t.Fatalf("tasks %+v", c.Tasks)
				}
			},
		},
		{
			name: "moves get one new epoch; unknown nodes and tasks are skipped", prepare: withTasks,
			cmd: &assignV1{Moves: []moveV1{
				{Connector: "a", Task: "db.c#0-of-3", Node: "n2"}, {Connector: "a", Task: "db.c#2-of-3", Node: "n1"},
				{Connector: "a", Task: "db.c#1-of-3", Node: "ghost"}, {Connector: "gone", Task: "x", Node: "n1"},
			}},
			check: func(t *testing.T, st *State) {
				c, _ := st.Connector("a")
				if st.Epoch() != 2 || c.Tasks[0].Node != "n2" || c.Tasks[0].Epoch != 2 || c.Tasks[2].Epoch != 2 ||
					c.Tasks[1].Node != "n2" || c.Tasks[1].Epoch != 1 {
					t.Fatalf("epoch %d tasks %+v", st.Epoch(), c.Tasks)
				}
			},
		},
		{
			name: "stop unassigns every task", prepare: withTasks,
			cmd: &setTargetStateV1{Name: "a", State: StateStopped},
			check: func(t *testing.T, st *State) {
				if a := st.Assignments(); len(a) != 0 {
					t.Fatalf("assignments %+v", a)
				}
			},
		},
		{
			name: "pause keeps assignments", prepare: withTasks,
			cmd: &setTargetStateV1{Name: "a", State: StatePaused},
			check: func(t *testing.T, st *State) {
				if a := st.Assigned("n1"); len(a) != 1 || a[0].State != StatePaused {
					t.Fatalf("assignments %+v", a)
				}
			},
		},
		{
			name:    "stopped connectors are never assigned",
			prepare: append(slices.Clone(withTasks), &setTargetStateV1{Name: "a", State: StateStopped}),
			cmd:     &assignV1{Moves: []moveV1{{Connector: "a", Task: "db.c#0-of-3", Node: "n1"}}},
			check: func(t *testing.T, st *State) {
				if a := st.Assignments(); len(a) != 0 {
					t.Fatalf("assignments %+v", a)
				}
			},
		},
		{
			name: "removing a node unassigns its tasks", prepare: withTasks,
			cmd: &removeNodeV1{ID: "n1"},
			check: func(t *testing.T, st *State) {
				if a := st.Assignments(); len(a) != 1 || a[0].Node != "n2" {
					t.Fatalf("assignments %+v", a)
				}
			},
		},
		{
			name: "restart of an unknown task refused", prepare: withTasks,
			cmd: &restartV1{Connector: "a", Tasks: []int{1, 7}}, wantErr: ErrTaskNotFound,
		},
		{
			name: "a snapshot request is kept with its index as id", prepare: withTasks,
			cmd: &requestSnapshotV1{Connector: "a", Collections: []string{"db.c"}},
			check: func(t *testing.T, st *State) {
				c, _ := st.Connector("a")
				if len(c.Snapshots) != 1 || c.Snapshots[0].ID != st.Index() || !slices.Equal(c.Snapshots[0].Collections, []string{"db.c"}) {
					t.Fatalf("snapshots %+v at index %d", c.Snapshots, st.Index())
				}
			},
		},
		{
			name:    "a signal is recorded once",
			prepare: append(slices.Clone(withTasks), &requestSnapshotV1{Connector: "a", Collections: []string{"db.c"}, Signal: `"s1"`}),
			cmd:     &requestSnapshotV1{Connector: "a", Collections: []string{"db.c"}, Signal: `"s1"`},
			check: func(t *testing.T, st *State) {
				if c, _ := st.Connector("a"); len(c.Snapshots) != 1 {
					t.Fatalf("snapshots %+v, want the signal's one", c.Snapshots)
				}
			},
		},
		{
			name: "a snapshot request for an unknown connector is refused", prepare: withTasks,
			cmd: &requestSnapshotV1{Connector: "zz", Collections: []string{"db.c"}}, wantErr: ErrConnectorNotFound,
		},
		{
			name: "a snapshot request without collections is refused", prepare: withTasks,
			cmd: &requestSnapshotV1{Connector: "a"}, wantErr: ErrInvalid,
		},
		{
			name:    "a snapshot request for a stopped connector is refused",
			prepare: append(slices.Clone(withTasks), &setTargetStateV1{Name: "a", State: StateStopped}),
			cmd:     &requestSnapshotV1{Connector: "a", Collections: []string{"db.c"}}, wantErr: ErrStopped,
		},
		{
			name:    "only the newest snapshot requests are kept",
			prepare: append(slices.Clone(withTasks), slices.Repeat([]any{&requestSnapshotV1{Connector: "a", Collections: []string{"db.c"}}}, maxSnapshotRequests)...),
			cmd:     &requestSnapshotV1{Connector: "a", Collections: []string{"db.d"}},
			check: func(t *testing.T, st *State) {
				c, _ := st.Connector("a")
				if len(c.Snapshots) != maxSnapshotRequests || c.Snapshots[len(c.Snapshots)-1].Collections[0] != "db.d" {
					t.Fatalf("%d snapshots, the last %+v", len(c.Snapshots), c.Snapshots[len(c.Snapshots)-1])
				}
			},
		},
		{
			name: "offset reset needs a stopped connector", prepare: withTasks,
			cmd: &requestOffsetResetV1{Connector: "a"}, wantErr: ErrNotStopped,
		},
		{
			name: "completing an older offset reset keeps the newer",
			prepare: append(slices.Clone(withTasks), &setTargetStateV1{Name: "a", State: StateStopped},
				&requestOffsetResetV1{Connector: "a"}, &requestOffsetResetV1{Connector: "a"}),
			cmd: &completeOffsetResetV1{Connector: "a", ID: 7},
			check: func(t *testing.T, st *State) {
				if r, ok := st.OffsetReset("a"); !ok || r.ID != 8 {
					t.Fatalf("reset %+v %v, want id 8", r, ok)
				}
			},
		},
		{
			name: "delete drops tasks and resets",
			prepare: append(slices.Clone(withTasks), &setTargetStateV1{Name: "a", State: StateStopped},
				&requestOffsetResetV1{Connector: "a"}),
			cmd: &deleteConnectorV1{Name: "a"},
			check: func(t *testing.T, st *State) {
				if len(st.Connectors()) != 0 || len(st.OffsetResets()) != 0 {
					t.Fatalf("left %+v %+v", st.Connectors(), st.OffsetResets())
				}
			},
		},
		{
			name:    "registry append from a stale reader is refused",
			prepare: []any{&registryAppendV1{Changes: []registryChangeV1{{Kind: "version", Subject: "s", Version: 1, ID: 1, Schema: `"int"`}}}},
			cmd:     &registryAppendV1{Changes: []registryChangeV1{{Kind: "version", Subject: "t", Version: 1, ID: 1, Schema: `"long"`}}},
			wantErr: ErrRegistryConflict,
		},
		{
			name: "registry keeps the last change per key and never drops the max id",
			prepare: []any{&registryAppendV1{Changes: []registryChangeV1{
				{Kind: "max_id", ID: 3},
				{Kind: "version", Subject: "s", Version: 1, ID: 1, Schema: `"int"`},
				{Kind: "version", Subject: "s", Version: 2, ID: 2, Schema: `"long"`},
			}}},
			cmd: &registryAppendV1{ExpectSeq: 3, Changes: []registryChangeV1{
				{Kind: "version", Subject: "s", Version: 1, ID: 1, Schema: `"int"`, Deleted: true},
				{Kind: "version", Subject: "s", Version: 2, Remove: true},
				{Kind: "max_id", Remove: true},
			}},
			check: func(t *testing.T, st *State) {
				var got []string
				for _, r := range st.registryChanges() {
					got = append(got, r.Change.key())
				}
				want := []string{"max_id", "version\x00s\x001"}
				if !slices.Equal(got, want) || !st.registry[want[1]].Change.Deleted || st.registrySeq != 6 {
					t.Fatalf("registry %q seq %d, want %q", got, st.registrySeq, want)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, errs := applyAll(t, emptyState(), tt.prepare...)
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("prepare: %v", err)
			}
			before := snapshotBytes(t, st)
			next, errs := applyAll(t, st, tt.cmd)
			if !errors.Is(errs[0], tt.wantErr) || (tt.wantErr == nil) != (errs[0] == nil) {
				t.Fatalf("err %v, want %v", errs[0], tt.wantErr)
			}
			if !bytes.Equal(snapshotBytes(t, st), before) {
				t.Fatal("apply modified the previous state")
			}
			if tt.check != nil {
				tt.check(t, next)
			}
		})
	}
}

// TestNewerCommandRefusedLoudly: a committed command of a type or version this build does not
// know leaves the state as it was, logs an ERROR naming the command and its version and saying
// to upgrade the node, stays reported by RefusedCommand (the node's /health), and tells the
// node to stop (Refused), once however many such commands follow.
func TestNewerCommandRefusedLoudly(t *testing.T) {
	payload, _ := json.Marshal(deleteConnectorV1{Name: "a"})
	tests := []struct {
		name        string
		env         envelope
		wantCommand string
		wantVersion string
	}{
		{"a known type at a newer version", envelope{Type: cmdDeleteConnector, Version: 2, Payload: payload}, "delete_connector", "version=2"},
		{"an unknown type", envelope{Type: "drop_everything", Version: 1, Payload: payload}, "drop_everything", "version=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			f := newFSM(slog.New(slog.NewTextHandler(&logs, nil)))
			f.Apply(&raft.Log{Index: 1, Data: mustEncode(t, &putConnectorV1{Name: "a", Config: map[string]string{}})})
			select {
			case <-f.refusedCh:
				t.Fatal("the node must stop before it refused anything")
			default:
			}
			res := f.Apply(&raft.Log{Index: 2, Data: mustJSON(t, tt.env)}).(applyResult)
			if !errors.Is(res.err, ErrUnsupportedCommand) {
				t.Fatalf("err %v, want ErrUnsupportedCommand", res.err)
			}
			st := f.cur.Load().st
			if _, ok := st.Connector("a"); !ok || st.Index() != 2 {
				t.Fatalf("the refused command changed the state (index %d)", st.Index())
			}
			line := logs.String()
			for _, want := range []string{"level=ERROR", "upgrade this node", "command=" + tt.wantCommand, tt.wantVersion} {
				if !strings.Contains(line, want) {
					t.Errorf("log %q lacks %q", line, want)
				}
			}
			refused := f.refused.Load()
			if refused == nil || string(refused.Type) != tt.wantCommand {
				t.Fatalf("refused = %v, want the %s command", refused, tt.wantCommand)
			}
			select {
			case <-f.refusedCh:
			default:
				t.Fatal("refused a command, but the node is not told to stop")
			}
			f.Apply(&raft.Log{Index: 3, Data: mustJSON(t, envelope{Type: "later", Version: 9, Payload: payload})})
			if f.refused.Load() != refused {
				t.Errorf("a second refused command replaced the first: %v", f.refused.Load())
			}
		})
	}
}
