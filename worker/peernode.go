package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mongorelay/mongorelay/api/peer"
	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/registry"
)

// peerNode is the node as other nodes reach it (peer.Node): heartbeats and joins on the
// leader's coordinator, registry writes on the leader's registry, with the coordinator's
// errors turned into what the peer protocol answers. A standalone process takes its own
// heartbeats and refuses the rest: it is a cluster of its own.
type peerNode struct{ c *Node }

var _ peer.Node = peerNode{}

func (p peerNode) Heartbeat(_ context.Context, hb peer.Heartbeat) (peer.HeartbeatAck, error) {
	record := func() error { return p.c.node.Heartbeat(hb.NodeID, hb.HTTPAddr) }
	if hb.Stopping {
		record = func() error { return p.c.node.Stopping(hb.NodeID, time.Duration(hb.RestartWithinMs)*time.Millisecond) }
	}
	if err := record(); err != nil {
		if errors.Is(err, coordinator.ErrUnknownNode) {
			err = fmt.Errorf("%w: %v", peer.ErrUnknownNode, err)
		}
		return peer.HeartbeatAck{}, err
	}
	p.c.reports.put(hb.NodeID, hb.Tasks)
	return peer.HeartbeatAck{Index: p.c.node.State().Index()}, nil
}

func (p peerNode) Join(ctx context.Context, req peer.JoinRequest) (peer.JoinResponse, error) {
	if p.c.standalone() {
		return peer.JoinResponse{}, errStandalone
	}
	ours := p.c.node.State().ClusterID() // stamped by the first leader
	if ours == "" {
		ours = p.c.cfg.ClusterID
	}
	if req.ClusterID != ours {
		return peer.JoinResponse{}, fmt.Errorf("%w: node %s is of cluster.id %q and this cluster is %q: give the node this cluster's cluster.id, "+
			"or join it to a member of its own cluster", peer.ErrRefused, req.NodeID, req.ClusterID, ours)
	}
	info, err := p.c.node.AddNode(ctx, req.NodeID, req.RaftAddr, req.HTTPAddr)
	if err != nil {
		return peer.JoinResponse{}, err
	}
	return peer.JoinResponse{NodeID: info.ID, Voter: info.Voter}, nil
}

func (p peerNode) RegistryWrite(ctx context.Context, call registry.Call) (registry.Result, error) {
	if p.c.standalone() {
		return registry.Result{}, errStandalone
	}
	return p.c.raftRegistry.ApplyCall(ctx, call)
}
