package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/mongorelay/mongorelay/api/peer"
	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// TestPeerNodeSaysUnknownInThePeerProtocol: a heartbeat from a node that is not a member is
// answered with peer.ErrUnknownNode, which is what the sender acts on, and a member's is
// recorded with its task reports.
func TestPeerNodeSaysUnknownInThePeerProtocol(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := coordinator.Open(context.Background(), coordinator.Config{
		NodeID: "solo", InMemory: true, Bootstrap: true, Logger: log,
		Expand: func(context.Context, string, map[string]string) ([]taskid.Spec, error) { return nil, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	eventually(t, "the node leads", n.IsLeader)
	p := peerNode{&Node{id: "solo", node: n, reports: newTaskReports(), log: log}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	if _, err := p.Heartbeat(ctx, peer.Heartbeat{NodeID: "stranger"}); !errors.Is(err, peer.ErrUnknownNode) {
		t.Errorf("heartbeat of a stranger: %v, want peer.ErrUnknownNode", err)
	}
	eventually(t, "the node registered", func() bool { _, ok := n.State().Node("solo"); return ok })
	report := peer.TaskReport{Connector: "c", Task: "t", State: "RUNNING"}
	if _, err := p.Heartbeat(ctx, peer.Heartbeat{NodeID: "solo", Tasks: []peer.TaskReport{report}}); err != nil {
		t.Fatalf("heartbeat of the member: %v", err)
	}
	if got, ok := p.c.reports.get("solo", "c", "t"); !ok || got != report {
		t.Errorf("report recorded %+v (%v), want %+v", got, ok, report)
	}
}
