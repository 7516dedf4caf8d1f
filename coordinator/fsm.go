package coordinator

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// fsm is the Raft state machine. Apply computes a new State from the current
// one (copy on write) and publishes it; readers load the published pointer,
// so the read path takes no lock and never waits for Apply.
type fsm struct {
	log *slog.Logger
	cur atomic.Pointer[published]
	// refused is the first committed command this build could not read, nil while there is
	// none: from then on this node's state lacks what the command changed, until a newer
	// build replays the log.
	refused atomic.Pointer[unsupportedCommandError]
	// refusedCh is closed when refused is set: the node must stop (Node.Refused).
	refusedCh chan struct{}
}

// published is a State and a channel closed when a newer one replaces it.
type published struct {
	st      *State
	changed chan struct{}
}

func newFSM(log *slog.Logger) *fsm {
	f := &fsm{log: log, refusedCh: make(chan struct{})}
	f.cur.Store(&published{st: emptyState(), changed: make(chan struct{})})
	return f
}

func (f *fsm) publish(st *State) {
	old := f.cur.Swap(&published{st: st, changed: make(chan struct{})})
	close(old.changed)
}

// applyResult is what Apply returns to the leader's Raft.Apply future.
type applyResult struct {
	err     error
	created bool   // put_connector: a new connector
	value   uint64 // registry_append: the new sequence; request_offset_reset, request_snapshot: the request id
}

// Apply applies one committed command. It only computes and publishes state:
// no clock, no randomness, no I/O (DESIGN.md section 3).
func (f *fsm) Apply(l *raft.Log) any {
	cur := f.cur.Load().st
	next, res := applyCommand(cur, l.Index, l.Data)
	var unsupported *unsupportedCommandError
	switch {
	case errors.As(res.err, &unsupported):
		// Every other node applied what this one cannot read: say so as loudly as we can,
		// since the node's view of the cluster is now behind theirs.
		if f.refused.CompareAndSwap(nil, unsupported) {
			close(f.refusedCh)
		}
		f.log.Error("this node refused a Raft command newer than its build: upgrade this node to the build the other nodes run",
			"index", l.Index, "command", string(unsupported.Type), "version", unsupported.Version)
	case res.err != nil:
		f.log.Debug("command refused", "index", l.Index, "err", res.err)
	}
	f.publish(next)
	return res
}

// applyCommand returns the state after the command at index; a refused
// command yields res.err and a state differing only in its index.
func applyCommand(cur *State, index uint64, data []byte) (*State, applyResult) {
	next := *cur
	next.index = index
	payload, err := decodeCommand(data)
	if err != nil {
		return &next, applyResult{err: err}
	}
	res := next.apply(index, payload)
	if res.err != nil {
		unchanged := *cur
		unchanged.index = index
		return &unchanged, res
	}
	return &next, res
}

// apply mutates s, a fresh shallow copy of the published state: every map
// or connector it changes must be cloned first.
func (s *State) apply(index uint64, payload any) applyResult {
	switch p := payload.(type) {
	case *putConnectorV1:
		return s.putConnector(p, index)
	case *deleteConnectorV1:
		if _, ok := s.connectors[p.Name]; !ok {
			return applyResult{err: fmt.Errorf("%w: %q", ErrConnectorNotFound, p.Name)}
		}
		s.connectors = maps.Clone(s.connectors)
		delete(s.connectors, p.Name)
		if _, ok := s.resets[p.Name]; ok {
			s.resets = maps.Clone(s.resets)
			delete(s.resets, p.Name)
		}
	case *setTargetStateV1:
		return s.setTargetState(p)
	case *restartV1:
		return s.restart(p)
	case *setTasksV1:
		return s.setTasks(p)
	case *assignV1:
		s.assign(p)
	case *putNodeV1:
		if p.Node.ID == "" {
			return applyResult{err: fmt.Errorf("%w: node without id", ErrInvalid)}
		}
		s.nodes = maps.Clone(s.nodes)
		s.nodes[p.Node.ID] = p.Node
	case *removeNodeV1:
		s.removeNode(p.ID)
	case *registryAppendV1:
		return s.registryAppend(p)
	case *requestOffsetResetV1:
		c, ok := s.connectors[p.Connector]
		if !ok {
			return applyResult{err: fmt.Errorf("%w: %q", ErrConnectorNotFound, p.Connector)}
		}
		if c.State != StateStopped {
			return applyResult{err: fmt.Errorf("%w: %q is %s", ErrNotStopped, p.Connector, c.State)}
		}
		s.resets = maps.Clone(s.resets)
		s.resets[p.Connector] = OffsetReset{Connector: p.Connector, ID: index, RequestedAt: p.At}
		return applyResult{value: index}
	case *setClusterIDV1:
		switch {
		case p.ID == "":
			return applyResult{err: fmt.Errorf("%w: empty cluster id", ErrInvalid)}
		case s.clusterID != "" && s.clusterID != p.ID:
			return applyResult{err: fmt.Errorf("%w: this cluster is %q, not %q", ErrClusterID, s.clusterID, p.ID)}
		}
		s.clusterID = p.ID
	case *setLogLevelV1:
		if p.Logger == "" || p.Level == "" {
			return applyResult{err: fmt.Errorf("%w: a log level needs a logger and a level", ErrInvalid)}
		}
		s.logLevels = maps.Clone(s.logLevels)
		s.logLevels[p.Logger] = LogLevel{Logger: p.Logger, Level: p.Level, ModifiedMs: p.AtMs}
	case *requestSnapshotV1:
		return s.requestSnapshot(p, index)
	case *completeOffsetResetV1:
		if r, ok := s.resets[p.Connector]; ok && r.ID == p.ID {
			s.resets = maps.Clone(s.resets)
			delete(s.resets, p.Connector)
		}
	default:
		return applyResult{err: fmt.Errorf("%w: payload %T", ErrUnsupportedCommand, payload)}
	}
	return applyResult{}
}

func (s *State) putConnector(p *putConnectorV1, index uint64) applyResult {
	if p.Name == "" {
		return applyResult{err: fmt.Errorf("%w: connector without a name", ErrInvalid)}
	}
	if p.InitialState != "" && !p.InitialState.valid() {
		return applyResult{err: fmt.Errorf("%w: initial state %q", ErrInvalid, p.InitialState)}
	}
	config := maps.Clone(p.Config)
	if config == nil {
		config = map[string]string{} // one encoding for "no entries"
	}
	old, exists := s.connectors[p.Name]
	switch {
	case exists && p.CreateOnly:
		return applyResult{err: fmt.Errorf("%w: %q", ErrConnectorExists, p.Name)}
	case exists && maps.Equal(old.Config, p.Config):
		return applyResult{}
	}
	s.connectors = maps.Clone(s.connectors)
	if exists {
		c := old.clone()
		c.Config = config
		c.Generation++
		s.connectors[p.Name] = c
		return applyResult{}
	}
	state := p.InitialState
	if state == "" {
		state = StateRunning
	}
	s.connectors[p.Name] = &Connector{Name: p.Name, Config: config, State: state, Created: index, Generation: 1}
	return applyResult{created: true}
}

func (s *State) requestSnapshot(p *requestSnapshotV1, index uint64) applyResult {
	old, ok := s.connectors[p.Connector]
	switch {
	case !ok:
		return applyResult{err: fmt.Errorf("%w: %q", ErrConnectorNotFound, p.Connector)}
	case len(p.Collections) == 0:
		return applyResult{err: fmt.Errorf("%w: a snapshot request names no collection", ErrInvalid)}
	case old.State == StateStopped:
		return applyResult{err: fmt.Errorf("%w: %q", ErrStopped, p.Connector)}
	}
	if p.Signal != "" {
		if i := slices.IndexFunc(old.Snapshots, func(r SnapshotRequest) bool { return r.Signal == p.Signal }); i >= 0 {
			return applyResult{value: old.Snapshots[i].ID}
		}
	}
	c := old.clone()
	c.Snapshots = append(c.Snapshots, SnapshotRequest{ID: index, Collections: slices.Clone(p.Collections), Signal: p.Signal})
	if n := len(c.Snapshots); n > maxSnapshotRequests {
		c.Snapshots = slices.Delete(c.Snapshots, 0, n-maxSnapshotRequests)
	}
	s.connectors = maps.Clone(s.connectors)
	s.connectors[p.Connector] = c
	return applyResult{value: index}
}

func (s *State) setTargetState(p *setTargetStateV1) applyResult {
	old, ok := s.connectors[p.Name]
	if !ok {
		return applyResult{err: fmt.Errorf("%w: %q", ErrConnectorNotFound, p.Name)}
	}
	if !p.State.valid() {
		return applyResult{err: fmt.Errorf("%w: target state %q", ErrInvalid, p.State)}
	}
	if old.State == p.State {
		return applyResult{}
	}
	c := old.clone()
	c.State = p.State
	if p.State == StateStopped {
		// Connect's STOPPED: no task runs anywhere. Unassigning here, not in
		// the leader's next round, stops them at once.
		for i := range c.Tasks {
			c.Tasks[i].Node = ""
		}
	}
	s.connectors = maps.Clone(s.connectors)
	s.connectors[p.Name] = c
	return applyResult{}
}

func (s *State) restart(p *restartV1) applyResult {
	old, ok := s.connectors[p.Connector]
	if !ok {
		return applyResult{err: fmt.Errorf("%w: %q", ErrConnectorNotFound, p.Connector)}
	}
	c := old.clone()
	if len(p.Tasks) == 0 {
		c.Restarts++
	}
	for _, id := range p.Tasks {
		i := slices.IndexFunc(c.Tasks, func(t Task) bool { return t.ID == id })
		if i < 0 {
			return applyResult{err: fmt.Errorf("%w: connector %q task %d", ErrTaskNotFound, p.Connector, id)}
		}
		c.Tasks[i].Restarts++
	}
	s.connectors = maps.Clone(s.connectors)
	s.connectors[p.Connector] = c
	return applyResult{}
}

func (s *State) setTasks(p *setTasksV1) applyResult {
	old, ok := s.connectors[p.Connector]
	if !ok {
		return applyResult{err: fmt.Errorf("%w: %q", ErrConnectorNotFound, p.Connector)}
	}
	if p.Generation != old.Generation {
		return applyResult{err: fmt.Errorf("%w: %q tasks listed for generation %d, config is at %d", ErrStaleGeneration, p.Connector, p.Generation, old.Generation)}
	}
	names := make(map[string]bool, len(p.Tasks))
	units := make(map[string]bool, len(p.Tasks))
	for _, spec := range p.Tasks {
		if err := spec.Validate(); err != nil {
			return applyResult{err: fmt.Errorf("%w: connector %q %v", ErrInvalid, p.Connector, err)}
		}
		for _, u := range spec.Units() {
			if units[u.Name()] {
				return applyResult{err: fmt.Errorf("%w: connector %q lists collection shard %s twice", ErrInvalid, p.Connector, u.Name())}
			}
			units[u.Name()] = true
		}
		names[spec.Name()] = true
	}

	// Surviving tasks keep id, owner, epoch and restarts. Ids stay 0..n-1:
	// a survivor whose id is now out of range, then each new task (by
	// name), takes the lowest free id.
	n := len(p.Tasks)
	kept := make([]Task, 0, n)
	var moved, fresh []Task
	for _, t := range old.Tasks {
		if !names[t.Name()] {
			continue
		}
		if t.ID < n {
			kept = append(kept, t)
		} else {
			moved = append(moved, t)
		}
		delete(names, t.Name())
	}
	for _, spec := range p.Tasks {
		if names[spec.Name()] {
			fresh = append(fresh, Task{Spec: spec})
		}
	}
	slices.SortFunc(fresh, func(a, b Task) int { return cmp.Compare(a.Name(), b.Name()) })
	used := make([]bool, n)
	for _, t := range kept {
		used[t.ID] = true
	}
	next := 0
	for _, t := range append(moved, fresh...) {
		for used[next] {
			next++
		}
		t.ID = next
		used[next] = true
		kept = append(kept, t)
	}
	slices.SortFunc(kept, func(a, b Task) int { return a.ID - b.ID })

	if old.TasksGeneration == p.Generation && slices.EqualFunc(kept, old.Tasks, Task.same) {
		return applyResult{}
	}
	c := old.clone()
	c.Tasks = kept
	c.TasksGeneration = p.Generation
	s.connectors = maps.Clone(s.connectors)
	s.connectors[p.Connector] = c
	return applyResult{}
}

func (s *State) assign(p *assignV1) {
	epoch := s.epoch + 1
	changed := map[string]*Connector{}
	index := map[string]map[string]int{} // connector → task name → position
	for _, m := range p.Moves {
		c, ok := changed[m.Connector]
		if !ok {
			if c, ok = s.connectors[m.Connector]; !ok {
				continue // deleted since the leader computed the move
			}
		}
		byName, ok := index[m.Connector]
		if !ok {
			byName = make(map[string]int, len(c.Tasks))
			for i, t := range c.Tasks {
				byName[t.Name()] = i
			}
			index[m.Connector] = byName
		}
		i, ok := byName[m.Task]
		if !ok || c.Tasks[i].Node == m.Node {
			continue
		}
		if m.Node != "" {
			if _, member := s.nodes[m.Node]; !member || c.State == StateStopped {
				continue
			}
		}
		if _, cloned := changed[m.Connector]; !cloned {
			c = c.clone()
			changed[m.Connector] = c
		}
		c.Tasks[i].Node = m.Node
		if m.Node != "" {
			c.Tasks[i].Epoch = epoch
		}
	}
	if len(changed) == 0 {
		return
	}
	s.epoch = epoch
	s.connectors = maps.Clone(s.connectors)
	maps.Copy(s.connectors, changed)
}

// removeNode forgets a member and unassigns its tasks, so that no task is
// owned by a node that can no longer be reached; the leader reassigns them.
func (s *State) removeNode(id string) {
	if _, ok := s.nodes[id]; !ok {
		return
	}
	s.nodes = maps.Clone(s.nodes)
	delete(s.nodes, id)
	var changed []*Connector
	for _, old := range s.connectors {
		if !slices.ContainsFunc(old.Tasks, func(t Task) bool { return t.Node == id }) {
			continue
		}
		c := old.clone()
		for i := range c.Tasks {
			if c.Tasks[i].Node == id {
				c.Tasks[i].Node = ""
			}
		}
		changed = append(changed, c)
	}
	if len(changed) > 0 {
		s.connectors = maps.Clone(s.connectors)
		for _, c := range changed {
			s.connectors[c.Name] = c
		}
	}
}

// registryRecord is the last change of one registry key and the sequence
// number it was applied at, which orders Replay.
type registryRecord struct {
	Seq    uint64           `json:"seq"`
	Change registryChangeV1 `json:"change"`
}

func (s *State) registryAppend(p *registryAppendV1) applyResult {
	if p.ExpectSeq != s.registrySeq {
		return applyResult{err: fmt.Errorf("%w: registry at change %d, writer read up to %d", ErrRegistryConflict, s.registrySeq, p.ExpectSeq)}
	}
	for _, c := range p.Changes {
		if c.Kind != "version" && c.Kind != "config" && c.Kind != "max_id" {
			return applyResult{err: fmt.Errorf("%w: schema registry change kind %q", ErrInvalid, c.Kind)}
		}
	}
	s.registry = maps.Clone(s.registry)
	for _, c := range p.Changes {
		s.registrySeq++
		switch {
		case c.Remove && c.Kind == "max_id":
			// The high-water mark is what keeps ids from being reused: never
			// drop it.
		case c.Remove:
			delete(s.registry, c.key())
			s.registryDropped = s.registrySeq
		default:
			s.registry[c.key()] = registryRecord{Seq: s.registrySeq, Change: c}
		}
	}
	return applyResult{value: s.registrySeq}
}

// registryChanges returns the registry's changes in the order they were
// last written.
func (s *State) registryChanges() []registryRecord {
	return s.registryChangesAfter(0)
}

// registryChangesAfter returns the changes last written after sequence
// number seq, in the order they were written.
func (s *State) registryChangesAfter(seq uint64) []registryRecord {
	var out []registryRecord
	for _, r := range s.registry {
		if r.Seq > seq {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b registryRecord) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

// snapshotV1 is the whole state as one JSON document; slices are sorted so
// that equal states give equal bytes.
type snapshotV1 struct {
	Version int    `json:"version"`
	Index   uint64 `json:"index"`
	// ClusterID is absent from the snapshots of a cluster whose leader has not stamped it.
	ClusterID    string           `json:"cluster_id,omitempty"`
	Epoch        uint64           `json:"epoch"`
	Connectors   []*Connector     `json:"connectors"`
	Nodes        []NodeInfo       `json:"nodes"`
	OffsetResets []OffsetReset    `json:"offset_resets"`
	RegistrySeq  uint64           `json:"registry_seq"`
	Registry     []registryRecord `json:"registry"`
	// LogLevels is absent from the snapshots of a cluster that never set one.
	LogLevels []LogLevel `json:"log_levels,omitempty"`
}

func (s *State) marshal(w io.Writer) error {
	snap := snapshotV1{
		Version:      1,
		Index:        s.index,
		ClusterID:    s.clusterID,
		Epoch:        s.epoch,
		Connectors:   slices.SortedFunc(maps.Values(s.connectors), func(a, b *Connector) int { return cmp.Compare(a.Name, b.Name) }),
		Nodes:        s.Nodes(),
		OffsetResets: s.OffsetResets(),
		RegistrySeq:  s.registrySeq,
		Registry:     s.registryChanges(),
		LogLevels:    s.LogLevels(),
	}
	return json.NewEncoder(w).Encode(snap)
}

func unmarshalState(r io.Reader) (*State, error) {
	var snap snapshotV1
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&snap); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	if snap.Version != 1 {
		return nil, fmt.Errorf("decode snapshot: version %d, this build reads version 1", snap.Version)
	}
	st := emptyState()
	st.index, st.epoch, st.registrySeq, st.clusterID = snap.Index, snap.Epoch, snap.RegistrySeq, snap.ClusterID
	for _, l := range snap.LogLevels {
		st.logLevels[l.Logger] = l
	}
	// A snapshot keeps no dropped keys: whoever read less of the registry
	// replays it.
	st.registryDropped = snap.RegistrySeq
	for _, c := range snap.Connectors {
		if c == nil || c.Name == "" {
			return nil, errors.New("decode snapshot: connector without a name")
		}
		if c.Config == nil {
			c.Config = map[string]string{}
		}
		st.connectors[c.Name] = c
	}
	for _, n := range snap.Nodes {
		st.nodes[n.ID] = n
	}
	for _, r := range snap.OffsetResets {
		st.resets[r.Connector] = r
	}
	for _, r := range snap.Registry {
		st.registry[r.Change.key()] = r
	}
	return st, nil
}

// Snapshot captures the current state; Persist writes it while Apply goes
// on, which is safe because states are never modified once published.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return fsmSnapshot{st: f.cur.Load().st}, nil
}

// Restore replaces the state with a snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, err := unmarshalState(rc)
	if err != nil {
		return fmt.Errorf("restore coordinator state: %w", err)
	}
	f.publish(st)
	return nil
}

type fsmSnapshot struct{ st *State }

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.st.marshal(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("write coordinator snapshot: %w", err)
	}
	return sink.Close()
}

func (fsmSnapshot) Release() {}
