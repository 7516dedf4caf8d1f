package coordinator

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// PeersFile is the file, in data.dir/raft, that recovers a cluster which lost its majority
// for good: hashicorp/raft's peers.json (version 2, as Consul and rqlite read it), a JSON array
// of the members to keep,
//
//	[{"id": "relay1", "address": "relay1:8300", "non_voter": false}]
//
// written on each surviving node, the same on all, while they are stopped. On start a node
// that finds it replaces its Raft configuration with those members (raft.RecoverCluster),
// keeping its log and snapshots, and deletes the file; the survivors then elect a leader
// among themselves.
const PeersFile = "peers.json"

// recoverFromPeersFile applies data.dir/raft/peers.json, if there is one, before Raft starts.
func (n *Node) recoverFromPeersFile(rc *raft.Config, snaps raft.SnapshotStore) error {
	path := filepath.Join(n.cfg.DataDir, "raft", PeersFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("recover the cluster: %w", err)
	}
	configuration, err := raft.ReadConfigJSON(path)
	if err != nil {
		return fmt.Errorf("recover the cluster: read %s (a JSON array of {\"id\", \"address\", \"non_voter\"}): %w", path, err)
	}
	var ids []string
	self := false
	for _, s := range configuration.Servers {
		ids = append(ids, string(s.ID))
		self = self || s.ID == rc.LocalID && s.Suffrage == raft.Voter
	}
	if !self {
		return fmt.Errorf("recover the cluster: %s does not list this node (%s) as a voter: list every surviving voter, this one included", path, rc.LocalID)
	}
	// Recovery replays the log into a state machine of its own and writes a snapshot of it
	// with the new members; Raft then starts from that snapshot.
	if err := raft.RecoverCluster(rc, newFSM(n.log), n.logs, n.store, snaps, n.trans, configuration); err != nil {
		return fmt.Errorf("recover the cluster from %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("recover the cluster: remove %s once applied: %w", path, err)
	}
	n.log.Warn("recovered the cluster from peers.json: the Raft members are now the ones it listed", "members", ids)
	return nil
}
