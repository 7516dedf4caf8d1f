package coordinator

import (
	"context"
	"fmt"
	"sync"

	"github.com/mongorelay/mongorelay/registry"
)

// RegistryStore is a registry.Store in the cluster state: a cluster's schema
// registry lives in Raft (DESIGN.md section 3). Give each registry.Registry
// its own, from Node.RegistryStore.
//
// Append is a Raft command, so it works on the leader only and returns a
// *forward.NotLeaderError elsewhere: registry writes are forwarded to the leader like
// any other. It also carries the registry sequence number this store last
// read or wrote, and the command is refused with ErrRegistryConflict if
// another writer (this node's registry in an earlier term, another node's
// registry) changed the registry since: ids are allocated from the writer's
// state, and this check is what keeps one id from going to two schemas. The
// registry then reloads through Replay and the request can be retried.
//
// Replay first catches up with the leader's commit index (CatchUp), so a
// follower that misses a schema id can reload and find it.
type RegistryStore struct {
	n  *Node
	mu sync.Mutex // serialises Append and Replay, which both move seen
	// seen is the registry sequence number this store's reader is at.
	seen uint64
}

// RegistryStore returns a new registry.Store backed by this node.
func (n *Node) RegistryStore() *RegistryStore { return &RegistryStore{n: n} }

var _ registry.Store = (*RegistryStore)(nil)

// Append records changes through Raft, if nobody else wrote since this store
// last read.
func (s *RegistryStore) Append(ctx context.Context, changes ...registry.Change) error {
	if len(changes) == 0 {
		return nil
	}
	cmd := &registryAppendV1{Changes: make([]registryChangeV1, len(changes))}
	for i, c := range changes {
		var err error
		if cmd.Changes[i], err = toChangeV1(c); err != nil {
			return fmt.Errorf("append schema registry changes: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd.ExpectSeq = s.seen
	res, err := s.n.apply(ctx, cmd)
	if err != nil {
		return fmt.Errorf("append %d schema registry changes: %w", len(changes), err)
	}
	s.seen = res.value
	return nil
}

// Replay calls apply with the last change of every registry key, in the order
// they were written, after catching up with the leader.
func (s *RegistryStore) Replay(ctx context.Context, apply func(registry.Change) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.n.CatchUp(ctx); err != nil {
		return fmt.Errorf("replay schema registry: %w", err)
	}
	st := s.n.State()
	for _, r := range st.registryChanges() {
		if err := apply(r.Change.change()); err != nil {
			return fmt.Errorf("replay schema registry change %d: %w", r.Seq, err)
		}
	}
	s.seen = st.registrySeq
	return nil
}
