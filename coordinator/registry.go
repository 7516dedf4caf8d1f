package coordinator

import (
	"context"
	"fmt"

	"github.com/mongorelay/mongorelay/registry"
)

// The schema registry's changes live in the cluster state (DESIGN.md 3), numbered by a
// sequence that counts every change appended. A cluster node's registry (package
// registry/replicated) writes through AppendRegistry and reads through RegistryChanges.

// AppendRegistry appends registry changes through Raft if the registry is still at sequence
// number expect, the last one its writer read, and returns the new sequence number. Ids are
// allocated from what the writer read, so the check is what keeps one id from going to two
// schemas: another writer's changes since are refused with ErrRegistryConflict. It works on
// the leader only and returns a *forward.NotLeaderError elsewhere.
func (n *Node) AppendRegistry(ctx context.Context, expect uint64, changes []registry.Change) (uint64, error) {
	cmd := &registryAppendV1{ExpectSeq: expect, Changes: make([]registryChangeV1, len(changes))}
	for i, c := range changes {
		var err error
		if cmd.Changes[i], err = toChangeV1(c); err != nil {
			return 0, fmt.Errorf("append schema registry changes: %w", err)
		}
	}
	res, err := n.apply(ctx, cmd)
	if err != nil {
		return 0, fmt.Errorf("append %d schema registry changes: %w", len(changes), err)
	}
	return res.value, nil
}

// RegistryChanges returns, from this node's state, the registry changes last written after
// sequence number after, oldest first, and the sequence number they bring the reader to.
// complete is false when a change after it dropped a key (a hard delete), which the state no
// longer holds: the reader then replays from 0.
func (n *Node) RegistryChanges(after uint64) (changes []registry.Change, seq uint64, complete bool) {
	st := n.State()
	if after == st.registrySeq {
		return nil, after, true
	}
	if after != 0 && after < st.registryDropped {
		return nil, st.registrySeq, false
	}
	for _, r := range st.registryChangesAfter(after) {
		changes = append(changes, r.Change.change())
	}
	return changes, st.registrySeq, true
}
