package worker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/mongorelay/mongorelay/api"
	"github.com/mongorelay/mongorelay/api/peer"
	"github.com/mongorelay/mongorelay/internal/forward"
	"github.com/mongorelay/mongorelay/tasks/connector"
)

// Ad-hoc snapshot requests (POST /connectors/{name}/snapshot, and execute-snapshot signals
// the tasks read from a connector's signal.data.collection) are recorded in the cluster state
// by the leader; each task of a named collection reads them from the state its node applied.

// requestSnapshot records a snapshot request of connector name on the leader (signal "" for
// a REST request). It refuses a collection none of the connector's tasks streams, as nothing
// would copy it: api.ErrBadRequest; api.ErrNotFound for no such connector, api.ErrConflict
// while it is STOPPED.
func (n *Node) requestSnapshot(ctx context.Context, name string, collections []string, signal string) (uint64, error) {
	if !n.node.IsLeader() {
		return 0, notLeader(n.node)
	}
	cn, ok := n.node.State().Connector(name)
	if !ok {
		return 0, fmt.Errorf("%w: connector %q", api.ErrNotFound, name)
	}
	streamed := map[string]bool{}
	for _, t := range cn.Tasks {
		for _, u := range t.Spec.Units() {
			streamed[u.DB+"."+u.Coll] = true
		}
	}
	var missing []string
	for _, ns := range collections {
		if !streamed[ns] {
			missing = append(missing, ns)
		}
	}
	if len(missing) > 0 {
		return 0, fmt.Errorf("%w: connector %q streams no collection %s (its tasks stream %s)", api.ErrBadRequest, name,
			strings.Join(missing, ", "), strings.Join(slices.Sorted(maps.Keys(streamed)), ", "))
	}
	id, err := n.node.RequestSnapshot(ctx, name, collections, signal)
	if err == nil {
		n.log.Info("ad-hoc snapshot requested", "connector", name, "request", id, "collections", collections, "signal", signal)
	}
	return id, apiError(err)
}

// refusedForGood reports whether requestSnapshot's err refuses the request itself, which
// asking again would not change.
func refusedForGood(err error) bool {
	return errors.Is(err, api.ErrBadRequest) || errors.Is(err, api.ErrNotFound) || errors.Is(err, api.ErrConflict)
}

// SnapshotSignal records a signal another node's task read (peer.Node).
func (p peerNode) SnapshotSignal(ctx context.Context, s peer.SnapshotSignal) (peer.SnapshotSignalAnswer, error) {
	id, err := p.c.requestSnapshot(ctx, s.Connector, s.Collections, s.Signal)
	if refusedForGood(err) {
		return peer.SnapshotSignalAnswer{Refused: err.Error()}, nil
	}
	return peer.SnapshotSignalAnswer{ID: id}, err
}

// snapshotRequests returns how a task of the connector name reads its ad-hoc snapshot
// requests: from the cluster state this node has applied.
func (n *Node) snapshotRequests(name string) func() []connector.SnapshotRequest {
	return func() []connector.SnapshotRequest {
		cn, ok := n.node.State().Connector(name)
		if !ok {
			return nil
		}
		out := make([]connector.SnapshotRequest, len(cn.Snapshots))
		for i, r := range cn.Snapshots {
			out[i] = connector.SnapshotRequest{ID: r.ID, Collections: r.Collections}
		}
		return out
	}
}

// snapshotSignals returns how a task of the connector name records an execute-snapshot
// signal it read: on the leader, this node or another. A signal the cluster refuses for good
// is logged and dropped, so that a mistaken signal document does not fail the task; any other
// error is returned, and the task, failing, reads the signal again when it restarts.
func (n *Node) snapshotSignals(name string) func(ctx context.Context, collections []string, signal string) error {
	return func(ctx context.Context, collections []string, signal string) error {
		refused := ""
		_, err := n.requestSnapshot(ctx, name, collections, signal)
		if _, notLeader := errors.AsType[*forward.NotLeaderError](err); notLeader {
			_, addr := n.node.Leader()
			if addr == "" {
				return fmt.Errorf("record the execute-snapshot signal %s: no leader known", signal)
			}
			var ans peer.SnapshotSignalAnswer
			ans, err = n.peers.SnapshotSignal(ctx, addr, peer.SnapshotSignal{Connector: name, Collections: collections, Signal: signal})
			refused = ans.Refused
		} else if refusedForGood(err) {
			refused, err = err.Error(), nil
		}
		if err != nil {
			return fmt.Errorf("record the execute-snapshot signal %s: %w", signal, err)
		}
		if refused != "" {
			n.log.Warn("execute-snapshot signal refused", "connector", name, "signal", signal, "collections", collections, "why", refused)
		}
		return nil
	}
}
