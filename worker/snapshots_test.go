package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/mongorelay/mongorelay/api"
	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// TestSnapshotRequestsAndSignalsGoThroughTheClusterState: a request names collections the
// connector's tasks stream, and its tasks read it from the state; a signal is recorded once,
// and one the cluster cannot take is dropped without failing the task that read it.
func TestSnapshotRequestsAndSignalsGoThroughTheClusterState(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cn, err := coordinator.Open(ctx, coordinator.Config{
		NodeID: "solo", InMemory: true, Bootstrap: true, Logger: log,
		Expand: func(context.Context, string, map[string]string) ([]taskid.Spec, error) {
			return []taskid.Spec{{DB: "shop", Coll: "orders", Shards: 1}, {DB: "shop", Coll: "people", Shards: 1}}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cn.Shutdown() })
	eventually(t, "the node leads", cn.IsLeader)
	n := &Node{id: "solo", node: cn, log: log, reports: newTaskReports()}
	a := nodeAPI{n}
	if err := cn.CreateConnector(ctx, "c", map[string]string{"connector.class": "mongodb"}, coordinator.StateRunning); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the connector's tasks are listed", func() bool {
		c, _ := cn.State().Connector("c")
		return len(c.Tasks) == 2
	})
	requests := n.snapshotRequests("c")

	if _, err := a.RequestSnapshot(ctx, "nope", []string{"shop.orders"}); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("a request for no connector: %v, want ErrNotFound", err)
	}
	if _, err := a.RequestSnapshot(ctx, "c", []string{"shop.orders", "shop.other"}); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("a request for a collection the connector does not stream: %v, want ErrBadRequest", err)
	}
	id, err := a.RequestSnapshot(ctx, "c", []string{"shop.orders"})
	if err != nil {
		t.Fatal(err)
	}
	signal := n.snapshotSignals("c")
	for range 2 {
		if err := signal(ctx, []string{"shop.people"}, `"ad-hoc-1"`); err != nil {
			t.Fatalf("signal: %v", err)
		}
	}
	if err := signal(ctx, []string{"shop.other"}, `"ad-hoc-2"`); err != nil {
		t.Fatalf("a signal the cluster refuses failed its task: %v", err)
	}
	got := requests()
	if len(got) != 2 || got[0].ID != id || !slices.Equal(got[0].Collections, []string{"shop.orders"}) ||
		!slices.Equal(got[1].Collections, []string{"shop.people"}) || got[1].ID <= id {
		t.Fatalf("requests %+v, want the REST request (id %d), then the signal's, once", got, id)
	}

	if err := cn.SetTargetState(ctx, "c", coordinator.StateStopped); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RequestSnapshot(ctx, "c", []string{"shop.orders"}); !errors.Is(err, api.ErrConflict) {
		t.Errorf("a request for a STOPPED connector: %v, want ErrConflict", err)
	}
}
