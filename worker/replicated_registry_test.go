package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/internal/httpserve"
	"github.com/mongorelay/mongorelay/registry"
	"github.com/mongorelay/mongorelay/registry/replicated"

	"github.com/mongorelay/mongorelay/api/peer"
	"github.com/mongorelay/mongorelay/tasks/taskid"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestClusterRegistryForwardsToTheLeader runs two coordinator nodes on loopback, each with its
// REST API: a schema registered on the follower is written by the leader and then read on
// both, and the leader's refusals come back as the registry's own errors.
func TestClusterRegistryForwardsToTheLeader(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ids := []string{"a", "b"}
	httpLns := map[string]net.Listener{"a": listen(t), "b": listen(t)}
	raftLns := map[string]net.Listener{"a": listen(t), "b": listen(t)}
	var peers []coordinator.Peer
	for _, id := range ids {
		peers = append(peers, coordinator.Peer{ID: id, RaftAddr: raftLns[id].Addr().String(), HTTPAddr: httpLns[id].Addr().String()})
		raftLns[id].Close() // the node binds it
	}
	nodes := map[string]*Node{}
	for _, id := range ids {
		n, err := coordinator.Open(context.Background(), coordinator.Config{
			NodeID: id, DataDir: t.TempDir(), RaftListen: raftLns[id].Addr().String(), HTTPAdvertise: httpLns[id].Addr().String(),
			Bootstrap: true, Peers: peers, DeadNodeRemoval: -1, Logger: log,
			Expand: func(context.Context, string, map[string]string) ([]taskid.Spec, error) { return nil, nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Shutdown() })
		hc := &http.Client{Timeout: 5 * time.Second}
		c := &Node{id: id, log: log, node: n, reports: newTaskReports(), peers: peer.NewClient(hc), catalog: Kinds(),
			listeners: listeners{client: hc, scheme: "http"}}
		c.raftRegistry = replicated.New(c.peers, log)
		if err := c.raftRegistry.Bind(context.Background(), n); err != nil {
			t.Fatal(err)
		}
		c.registry = c.raftRegistry
		c.runner = newRunner(nodeAssignments{n}, nil, log)
		c.initMetrics()
		stop := httpserve.Serve(httpLns[id], c.handler(), nil, "REST API", log)
		t.Cleanup(stop)
		nodes[id] = c
	}
	var leader, follower *Node
	eventually(t, "a leader", func() bool {
		for _, c := range nodes {
			if c.node.IsLeader() {
				leader = c
			}
		}
		if leader == nil {
			return false
		}
		for _, c := range nodes {
			if id, _ := c.node.Leader(); c != leader && id == leader.id {
				follower = c
			}
		}
		return follower != nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v1 := `{"type":"record","name":"r","fields":[{"name":"a","type":"int"}]}`
	id, err := follower.registry.Register(ctx, "s-value", v1)
	if err != nil || id != 1 {
		t.Fatalf("register on the follower: id %d, %v", id, err)
	}
	if s, err := leader.registry.Latest(ctx, "s-value"); err != nil || s.ID != 1 || s.Version != 1 {
		t.Errorf("latest on the leader: %+v, %v", s, err)
	}
	if s, err := follower.registry.SchemaByID(ctx, 1); err != nil || s == "" {
		t.Errorf("schema 1 on the follower: %q, %v", s, err)
	}
	// Registering it again is answered from the follower's own copy, without the leader.
	if again, err := follower.registry.Register(ctx, "s-value", v1); err != nil || again != 1 {
		t.Errorf("register again: %d, %v", again, err)
	}
	v2 := `{"type":"record","name":"r","fields":[{"name":"a","type":"int"},{"name":"b","type":["null","string"],"default":null}]}`
	if id, err := follower.registry.Register(ctx, "s-value", v2); err != nil || id != 2 {
		t.Errorf("register v2 on the follower: %d, %v", id, err)
	}
	if s, err := follower.registry.Latest(ctx, "s-value"); err != nil || s.Version != 2 {
		t.Errorf("latest on the follower after its own write: %+v, %v", s, err)
	}
	_, err = follower.registry.Register(ctx, "s-value", `{"type":"record","name":"r","fields":[{"name":"a","type":"string"}]}`)
	if !errors.Is(err, registry.ErrIncompatible) {
		t.Errorf("incompatible schema through the follower: %v, want ErrIncompatible", err)
	}
	if err := follower.registry.SetCompatibility(ctx, "s-value", registry.None); err != nil {
		t.Errorf("set compatibility through the follower: %v", err)
	}
	eventually(t, "the level on the follower", func() bool {
		level, err := follower.registry.Compatibility("s-value")
		return err == nil && level == registry.None
	})
}
