package coordinator

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// Member is a node in the Raft configuration, as GET /cluster shows it.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Voter    bool   `json:"voter"`
	Leader   bool   `json:"leader"`
	// LastHeartbeat is when the leader last heard from the node; only the
	// leader knows it (zero elsewhere, and for the leader itself).
	LastHeartbeat time.Time `json:"last_heartbeat,omitzero"`
}

// Heartbeat records that node pinged the leader now; the leader's HTTP
// handler calls it for each ping, and httpAddr (the node's http.advertise)
// updates the node registry when it changed. It returns a *forward.NotLeaderError
// off the leader and ErrUnknownNode for a node that is not a member, which
// must then join (again).
func (n *Node) Heartbeat(nodeID, httpAddr string) error {
	if !n.IsLeader() {
		return n.notLeader()
	}
	info, recorded := n.State().nodes[nodeID]
	if !recorded {
		// Members bootstrapped from a peer list are in Raft before the
		// registry has them.
		member, err := n.inConfiguration(nodeID)
		if err != nil {
			return fmt.Errorf("heartbeat of %s: %w", nodeID, err)
		}
		if !member {
			return fmt.Errorf("heartbeat of %s: %w", nodeID, ErrUnknownNode)
		}
	}
	news := httpAddr != "" && (!recorded || info.HTTPAddr != httpAddr)
	n.mu.Lock()
	n.beats[nodeID] = time.Now()
	_, stopped := n.stopped[nodeID]
	_, reset := n.resets[nodeID]
	news = news || stopped || reset
	delete(n.stopped, nodeID)
	delete(n.resets, nodeID)
	if news {
		n.httpAddrs[nodeID] = httpAddr
	}
	n.mu.Unlock()
	if news {
		n.wake()
	}
	return nil
}

// Stopping records, on the leader, that node is stopping cleanly (its tasks stopped, their
// last offsets committed); the record holds until the node's next heartbeat. With
// restartWithin zero its tasks move at once rather than after the session timeout. A node
// that restarts (worker's worker.rebalance.delay) gives how long it expects to be away: its
// tasks stay assigned to it for that long, so that a rolling restart does not move them twice
// (away and back), and move then if it has not heartbeated again. It returns a
// *forward.NotLeaderError off the leader.
func (n *Node) Stopping(nodeID string, restartWithin time.Duration) error {
	if !n.IsLeader() {
		return n.notLeader()
	}
	var until time.Time
	if restartWithin > 0 {
		until = time.Now().Add(restartWithin)
	}
	n.mu.Lock()
	n.stopped[nodeID] = until
	n.mu.Unlock()
	n.wake()
	return nil
}

// TransferLeadership hands the leadership to another voter, when this node leads: a leader
// that stops cleanly calls it first, so that the cluster has a leader at once instead of after
// an election timeout. It reports whether it did: not when this node does not lead or is the
// only voter.
func (n *Node) TransferLeadership(ctx context.Context) (bool, error) {
	if !n.IsLeader() {
		return false, nil
	}
	servers, err := n.configuration(ctx)
	if err != nil {
		return false, err
	}
	if !slices.ContainsFunc(servers, func(s raft.Server) bool { return s.Suffrage == raft.Voter && string(s.ID) != n.cfg.NodeID }) {
		return false, nil
	}
	if err := waitFuture(ctx, n.raft.LeadershipTransfer()); err != nil {
		return false, fmt.Errorf("transfer the leadership: %w", err)
	}
	return true, nil
}

func (n *Node) configuration(ctx context.Context) ([]raft.Server, error) {
	f := n.raft.GetConfiguration()
	if err := waitFuture(ctx, f); err != nil {
		return nil, fmt.Errorf("read raft configuration: %w", err)
	}
	return f.Configuration().Servers, nil
}

func (n *Node) inConfiguration(id string) (bool, error) {
	servers, err := n.configuration(context.Background())
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(servers, func(s raft.Server) bool { return string(s.ID) == id }), nil
}

// AddNode makes a node a member, on the leader (the join request of a new
// node lands here, forwarded by the api layer): a voter while the cluster
// has fewer than Voters voters, else a non-voter. Adding a member again is
// harmless and updates its addresses; a former member at the same Raft
// address under another id (a node that lost its data dir) is removed.
func (n *Node) AddNode(ctx context.Context, id, raftAddr, httpAddr string) (NodeInfo, error) {
	if id == "" || raftAddr == "" {
		return NodeInfo{}, fmt.Errorf("add node: %w: id and raft address are required", ErrInvalid)
	}
	if !n.IsLeader() {
		return NodeInfo{}, n.notLeader()
	}
	servers, err := n.configuration(ctx)
	if err != nil {
		return NodeInfo{}, fmt.Errorf("add node %s: %w", id, err)
	}
	voters := 0
	var existing *raft.Server
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
		switch {
		case string(s.ID) == id:
			existing = &s
		case string(s.Address) == raftAddr:
			n.log.Warn("another node id had this raft address: removing it", "member", string(s.ID), "new_member", id, "raft_addr", raftAddr)
			if err := n.removeMember(ctx, string(s.ID)); err != nil {
				return NodeInfo{}, fmt.Errorf("add node %s: remove %s at the same address: %w", id, s.ID, err)
			}
			if s.Suffrage == raft.Voter {
				voters--
			}
		}
	}
	info := NodeInfo{ID: id, RaftAddr: raftAddr, HTTPAddr: httpAddr}
	switch {
	case existing != nil && existing.Suffrage == raft.Voter:
		info.Voter = true
	case existing != nil && existing.Suffrage == raft.Nonvoter:
	default:
		info.Voter = voters < n.cfg.Voters
	}
	if existing == nil || string(existing.Address) != raftAddr {
		var f raft.IndexFuture
		if info.Voter {
			f = n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, timeoutOf(ctx))
		} else {
			f = n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, timeoutOf(ctx))
		}
		if err := waitFuture(ctx, f); err != nil {
			return NodeInfo{}, fmt.Errorf("add node %s to raft: %w", id, n.raftErr(err))
		}
	}
	if _, err := n.apply(ctx, &putNodeV1{Node: info}); err != nil {
		return NodeInfo{}, fmt.Errorf("add node %s: %w", id, err)
	}
	n.log.Info("node added", "member", id, "raft_addr", raftAddr, "http_addr", httpAddr, "voter", info.Voter)
	return info, nil
}

// RemoveNode removes a member, on the leader: its tasks are unassigned at
// once and reassigned to live nodes. Removing the leader itself makes it step
// down. Removing a node that is not a member is harmless.
func (n *Node) RemoveNode(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return n.notLeader()
	}
	if err := n.removeMember(ctx, id); err != nil {
		return err
	}
	n.log.Info("node removed", "member", id)
	return nil
}

// removeMember forgets the node in the state first (while this node can
// still apply, even when it removes itself) and then in Raft.
func (n *Node) removeMember(ctx context.Context, id string) error {
	if _, err := n.apply(ctx, &removeNodeV1{ID: id}); err != nil {
		return fmt.Errorf("remove node %s: %w", id, err)
	}
	if err := waitFuture(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, timeoutOf(ctx))); err != nil {
		return fmt.Errorf("remove node %s from raft: %w", id, n.raftErr(err))
	}
	return nil
}

// Leave removes this node from the cluster before a clean shutdown. On the
// leader it removes itself, and the others elect a new leader; elsewhere it
// returns a *forward.NotLeaderError, and the caller asks the leader to RemoveNode
// this node (forwarding, as for any write). Call Shutdown afterwards.
func (n *Node) Leave(ctx context.Context) error {
	return n.RemoveNode(ctx, n.cfg.NodeID)
}

// raftErr turns Raft's leadership errors into a *forward.NotLeaderError.
func (n *Node) raftErr(err error) error {
	switch err {
	case raft.ErrNotLeader, raft.ErrLeadershipLost, raft.ErrLeadershipTransferInProgress:
		return fmt.Errorf("%w: %v", n.notLeader(), err)
	case raft.ErrRaftShutdown:
		return ErrClosed
	}
	return err
}

// Members returns the Raft configuration's members, by id.
func (n *Node) Members(ctx context.Context) ([]Member, error) {
	servers, err := n.configuration(ctx)
	if err != nil {
		return nil, err
	}
	st := n.State()
	leader, _ := n.Leader()
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]Member, 0, len(servers))
	for _, s := range servers {
		id := string(s.ID)
		m := Member{ID: id, RaftAddr: string(s.Address), HTTPAddr: n.httpAddrOf(st, id), Voter: s.Suffrage == raft.Voter, Leader: id == leader}
		if n.IsLeader() {
			m.LastHeartbeat = n.beats[id]
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// stampClusterID stamps the configured cluster id into the replicated state, on the leader,
// once: a cluster's first leader does it. A state stamped with another id is an error: this
// node's data belongs to another cluster.
func (n *Node) stampClusterID(ctx context.Context) error {
	want, got := n.cfg.ClusterID, n.State().ClusterID()
	switch {
	case want == "" || got == want:
		return nil
	case got != "":
		return fmt.Errorf("%w: the replicated state belongs to cluster %q, this node is of cluster.id %q", ErrClusterID, got, want)
	}
	if _, err := n.apply(ctx, &setClusterIDV1{ID: want}); err != nil {
		return fmt.Errorf("stamp cluster id %q: %w", want, err)
	}
	n.log.Info("stamped the cluster's id into the replicated state", "cluster", want)
	return nil
}
