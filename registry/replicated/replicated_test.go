package replicated

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/mongorelay/mongorelay/internal/forward"
	"github.com/mongorelay/mongorelay/registry"
)

const (
	countInt   = `{"type":"record","name":"Count","fields":[{"name":"n","type":"int"}]}`
	countTwo   = `{"type":"record","name":"Count","fields":[{"name":"n","type":"int"},{"name":"m","type":["null","long"],"default":null}]}`
	countText  = `{"type":"record","name":"Count","fields":[{"name":"n","type":"string"}]}`
	otherBool  = `{"type":"record","name":"Other","fields":[{"name":"x","type":"boolean"}]}`
	leaderAddr = "leader:8083"
)

// fakeCluster is the Raft log the nodes share: every registry change in order (the sequence
// number is its position), one per Raft index. The leader applies at once; a follower only
// when it waits for an index (WaitIndex) or the test applies for it.
type fakeCluster struct {
	mu      sync.Mutex
	log     []registry.Change
	dropped uint64 // the last sequence number whose change dropped a key
	// beforeAppend, when set, runs once inside the next append: another writer at work.
	beforeAppend func()
	conflicts    int
}

// fakeNode is one node's view of the fakeCluster: a Log.
type fakeNode struct {
	c       *fakeCluster
	leader  bool
	applied uint64
	replays int // RegistryChanges from 0: whole-registry replays
	waits   int // WaitIndex calls
}

func (n *fakeNode) AppendRegistry(_ context.Context, expect uint64, changes []registry.Change) (uint64, error) {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	if !n.leader {
		return 0, &forward.NotLeaderError{LeaderID: "leader", LeaderHTTP: leaderAddr}
	}
	if f := n.c.beforeAppend; f != nil {
		n.c.beforeAppend = nil
		f()
	}
	if expect != uint64(len(n.c.log)) {
		n.c.conflicts++
		return 0, fmt.Errorf("%w: at %d, writer at %d", registry.ErrConflict, len(n.c.log), expect)
	}
	n.c.appendLocked(changes...)
	return uint64(len(n.c.log)), nil
}

func (c *fakeCluster) appendLocked(changes ...registry.Change) {
	for _, ch := range changes {
		c.log = append(c.log, ch)
		if ch.Remove {
			c.dropped = uint64(len(c.log))
		}
	}
}

func (n *fakeNode) RegistryChanges(after uint64) ([]registry.Change, uint64, bool) {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	applied := n.appliedLocked()
	if after == 0 {
		n.replays++
	}
	if after != 0 && after < n.c.dropped && n.c.dropped <= applied {
		return nil, applied, false
	}
	return append([]registry.Change(nil), n.c.log[after:applied]...), applied, true
}

// appliedLocked is how much of the log n has applied: all of it on the leader.
func (n *fakeNode) appliedLocked() uint64 {
	if n.leader {
		return uint64(len(n.c.log))
	}
	return n.applied
}

func (n *fakeNode) WaitIndex(_ context.Context, index uint64) error {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	n.waits++
	n.applied = max(n.applied, min(index, uint64(len(n.c.log))))
	return nil
}

func (n *fakeNode) CommittedIndex() uint64 {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return uint64(len(n.c.log))
}

// catchUp applies the whole log on n, as Raft does in the background.
func (n *fakeNode) catchUp() { _ = n.WaitIndex(context.Background(), n.CommittedIndex()) }

func (n *fakeNode) counts() (replays, waits int) {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.replays, n.waits
}

// fakeSender is the node-to-node client: it hands a write to the leader's registry, with
// errors through the wire codec.
type fakeSender struct {
	leader *Registry
	calls  int
}

func (s *fakeSender) RegistryWrite(ctx context.Context, addr string, call registry.Call) (registry.Result, error) {
	if addr != leaderAddr {
		return registry.Result{}, fmt.Errorf("no node at %s", addr)
	}
	s.calls++
	res, err := s.leader.ApplyCall(ctx, call)
	if err != nil {
		return res, registry.DecodeError(registry.EncodeError(409, err))
	}
	return res, nil
}

// testNodes is a leader and a follower of one fakeCluster, each with its registry.
type testNodes struct {
	cluster                  *fakeCluster
	leaderNode, followerNode *fakeNode
	leader, follower         *Registry
	sender                   *fakeSender
}

func newTestNodes(t *testing.T) *testNodes {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The log holds a change already, so that a replay (from sequence number 0) is told apart
	// from catching up.
	c := &fakeCluster{log: []registry.Change{{Kind: registry.ChangeMaxID}}}
	tn := &testNodes{cluster: c, leaderNode: &fakeNode{c: c, leader: true}, followerNode: &fakeNode{c: c, applied: 1}, sender: &fakeSender{}}
	tn.leader, tn.follower = New(tn.sender, log), New(tn.sender, log)
	tn.sender.leader = tn.leader
	for reg, node := range map[*Registry]*fakeNode{tn.leader: tn.leaderNode, tn.follower: tn.followerNode} {
		if err := reg.Bind(context.Background(), node); err != nil {
			t.Fatal(err)
		}
	}
	return tn
}

func canonical(t *testing.T, schema string) string {
	t.Helper()
	c, err := registry.Canonical(schema)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestReplicatedRegistry(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, ctx context.Context, tn *testNodes)
	}{
		{
			name: "a change written on another node is read here without replaying the registry",
			run: func(t *testing.T, ctx context.Context, tn *testNodes) {
				id, err := tn.leader.Register(ctx, "c-value", countInt)
				if err != nil || id != 1 {
					t.Fatalf("register on the leader: %d, %v", id, err)
				}
				tn.followerNode.catchUp()
				if s, err := tn.follower.Latest(ctx, "c-value"); err != nil || s.ID != 1 || s.Version != 1 {
					t.Fatalf("latest on the follower: %+v, %v", s, err)
				}
				if _, err := tn.leader.Register(ctx, "c-value", countTwo); err != nil {
					t.Fatal(err)
				}
				tn.followerNode.catchUp()
				if got := tn.follower.Subjects(false); len(got) != 1 {
					t.Fatalf("subjects on the follower: %v", got)
				}
				if s, err := tn.follower.Latest(ctx, "c-value"); err != nil || s.ID != 2 || s.Version != 2 {
					t.Fatalf("latest on the follower after the second write: %+v, %v", s, err)
				}
				if replays, waits := tn.followerNode.counts(); replays != 1 || waits != 2 {
					t.Fatalf("follower replayed %d times (want 1, when bound) and waited %d times (want 2, by the test)", replays, waits)
				}
				if replays, _ := tn.leaderNode.counts(); replays != 1 {
					t.Fatalf("leader replayed %d times, want 1", replays)
				}
			},
		},
		{
			name: "a read that misses waits for what the leader committed and reads again",
			run: func(t *testing.T, ctx context.Context, tn *testNodes) {
				if _, err := tn.leader.Register(ctx, "c-value", countInt); err != nil {
					t.Fatal(err)
				}
				// The follower has not applied it yet: each read misses once, then waits.
				if s, err := tn.follower.SchemaByID(ctx, 1); err != nil || s != canonical(t, countInt) {
					t.Fatalf("schema 1 on the follower: %q, %v", s, err)
				}
				if _, err := tn.leader.Register(ctx, "c-value", countTwo); err != nil {
					t.Fatal(err)
				}
				if s, err := tn.follower.SchemaAt(ctx, "c-value", 2); err != nil || s.ID != 2 {
					t.Fatalf("version 2 on the follower: %+v, %v", s, err)
				}
				if _, waits := tn.followerNode.counts(); waits != 2 {
					t.Fatalf("follower waited %d times, want 2", waits)
				}
				// What nobody wrote is still not found, after waiting.
				if _, err := tn.follower.SchemaByID(ctx, 9); !errors.Is(err, registry.ErrSchemaNotFound) {
					t.Fatalf("schema 9: %v, want ErrSchemaNotFound", err)
				}
				if replays, _ := tn.followerNode.counts(); replays != 1 {
					t.Fatalf("follower replayed %d times, want 1", replays)
				}
			},
		},
		{
			name: "a write another writer got ahead of catches up and is tried again with a new id",
			run: func(t *testing.T, ctx context.Context, tn *testNodes) {
				other := registry.Change{Kind: registry.ChangeVersion, Subject: "o-value", Version: 1, ID: 1, Schema: canonical(t, otherBool)}
				tn.cluster.beforeAppend = func() { tn.cluster.appendLocked(other) }
				id, err := tn.leader.Register(ctx, "c-value", countInt)
				if err != nil || id != 2 {
					t.Fatalf("register after a conflict: id %d, %v, want 2 (1 is taken)", id, err)
				}
				if tn.cluster.conflicts != 1 {
					t.Fatalf("%d conflicts, want 1", tn.cluster.conflicts)
				}
				if s, err := tn.leader.SchemaByID(ctx, 1); err != nil || s != canonical(t, otherBool) {
					t.Fatalf("the other writer's schema 1: %q, %v", s, err)
				}
				if replays, _ := tn.leaderNode.counts(); replays != 1 {
					t.Fatalf("leader replayed %d times, want 1", replays)
				}
			},
		},
		{
			name: "a follower's write is sent to the leader and read back on the follower",
			run: func(t *testing.T, ctx context.Context, tn *testNodes) {
				id, err := tn.follower.Register(ctx, "c-value", countInt)
				if err != nil || id != 1 {
					t.Fatalf("register on the follower: %d, %v", id, err)
				}
				if s, err := tn.follower.Latest(ctx, "c-value"); err != nil || s.ID != 1 {
					t.Fatalf("latest on the follower after its own write: %+v, %v", s, err)
				}
				if s, err := tn.leader.Latest(ctx, "c-value"); err != nil || s.ID != 1 {
					t.Fatalf("latest on the leader: %+v, %v", s, err)
				}
				// A schema the subject has is answered by the follower alone.
				if again, err := tn.follower.Register(ctx, "c-value", countInt); err != nil || again != 1 || tn.sender.calls != 1 {
					t.Fatalf("register again: %d, %v, %d calls to the leader (want 1)", again, err, tn.sender.calls)
				}
				if err := tn.follower.SetCompatibility(ctx, "c-value", registry.None); err != nil {
					t.Fatal(err)
				}
				if level, err := tn.follower.Compatibility("c-value"); err != nil || level != registry.None {
					t.Fatalf("level on the follower: %q, %v", level, err)
				}
			},
		},
		{
			name: "the leader's refusal of a follower's write is the registry's own error",
			run: func(t *testing.T, ctx context.Context, tn *testNodes) {
				if _, err := tn.follower.Register(ctx, "c-value", countInt); err != nil {
					t.Fatal(err)
				}
				_, err := tn.follower.Register(ctx, "c-value", countText)
				if ie, ok := errors.AsType[*registry.IncompatibleError](err); !ok || ie.Subject != "c-value" {
					t.Fatalf("incompatible schema through the follower: %v, want an *IncompatibleError", err)
				}
				if _, err := tn.follower.DeleteVersion(ctx, "c-value", 1, true); !errors.Is(err, registry.ErrVersionNotSoftDeleted) {
					t.Fatalf("hard delete of a live version: %v, want ErrVersionNotSoftDeleted", err)
				}
			},
		},
		{
			name: "a hard delete made on the leader is read on the follower after a replay",
			run: func(t *testing.T, ctx context.Context, tn *testNodes) {
				if _, err := tn.leader.Register(ctx, "c-value", countInt); err != nil {
					t.Fatal(err)
				}
				if _, err := tn.leader.Register(ctx, "o-value", otherBool); err != nil {
					t.Fatal(err)
				}
				tn.followerNode.catchUp()
				if got := tn.follower.Subjects(false); len(got) != 2 {
					t.Fatalf("subjects on the follower: %v", got)
				}
				if _, err := tn.leader.DeleteSubject(ctx, "c-value", false); err != nil {
					t.Fatal(err)
				}
				if _, err := tn.leader.DeleteSubject(ctx, "c-value", true); err != nil {
					t.Fatal(err)
				}
				tn.followerNode.catchUp()
				if got := tn.follower.Subjects(true); len(got) != 1 || got[0] != "o-value" {
					t.Fatalf("subjects on the follower after the hard delete: %v", got)
				}
				if replays, _ := tn.followerNode.counts(); replays != 2 {
					t.Fatalf("follower replayed %d times, want 2 (bound, hard delete)", replays)
				}
				// The deleted id is never given again.
				if id, err := tn.follower.Register(ctx, "n-value", countTwo); err != nil || id != 3 {
					t.Fatalf("register after the hard delete: %d, %v, want 3", id, err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tt.run(t, ctx, newTestNodes(t))
		})
	}
}
