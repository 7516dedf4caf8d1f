package coordinator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// Defaults of Config (DESIGN.md sections 3, 6 and 9). A node known to be gone loses its tasks
// at once whatever these are; they decide how long a silent one is waited for, and a pause
// (GC, SIGSTOP) of 2 s must not cost a node its tasks, even on a loaded machine where
// heartbeats are answered late: the heartbeats renew the lease every half second, the lease
// outlasts such a pause by 1.5 s more than a heartbeat interval, and the session the silence
// it makes (2 s plus a heartbeat interval) by 2.5 s.
const (
	DefaultVoters            = 3
	DefaultHeartbeatInterval = 500 * time.Millisecond
	DefaultSessionTimeout    = 5 * time.Second
	DefaultLease             = 4 * time.Second
	DefaultDeadNodeRemoval   = 10 * time.Minute
	DefaultExpandInterval    = 10 * time.Second
)

// Peer is a member of the static list a cluster is bootstrapped with.
type Peer struct {
	ID       string
	RaftAddr string
	HTTPAddr string
}

// ExpandFunc lists the tasks of a connector: one per collection and shard
// (the worker lists the collections its config selects). The leader calls
// it when a connector is created, changed or restarted, and again every
// Config.ExpandInterval to pick up new and dropped collections, with a
// context that ends after ExpandInterval or with the leader's term: it must
// return then. An error keeps the connector's current tasks; the leader
// retries at the next round.
type ExpandFunc func(ctx context.Context, connector string, config map[string]string) ([]taskid.Spec, error)

// Config configures a Node. The zero value of every optional field means its
// default.
type Config struct {
	// NodeID names this node in the cluster: worker's node.id. Required; a
	// restarted node must keep it (and its DataDir).
	NodeID string
	// ClusterID is the cluster's id (worker's cluster.id), stamped into the
	// replicated state by the first leader (State.ClusterID). Default: none
	// stamped.
	ClusterID string
	// DataDir holds the Raft log (raft.db) and snapshots (snapshots/).
	// Required.
	DataDir string
	// RaftListen is the TCP address Raft listens on (worker's raft.listen),
	// e.g. ":7000" or "127.0.0.1:0". Required.
	RaftListen string
	// RaftAdvertise is the address other nodes reach this node's Raft at
	// (raft.advertise). Default: the address RaftListen bound, which must
	// then name a specific IP.
	RaftAdvertise string
	// HTTPAdvertise is the address of this node's REST API as other nodes
	// reach it (http.advertise); followers forward writes there when this
	// node leads.
	HTTPAdvertise string

	// RaftTLS, when set, makes Raft run over mutual TLS (worker's cluster.tls.*): it must hold
	// this node's certificate, the cluster's CA as RootCAs and ClientCAs, and ClientAuth
	// tls.RequireAndVerifyClientCert. Every node's certificate must name the host of its Raft
	// address (raft.advertise; an IP needs an IP subject alternative name). Default: plain TCP.
	RaftTLS *tls.Config
	// InMemory keeps the Raft log, snapshots and transport in this process:
	// a cluster of one node that nothing outlives (a standalone process).
	// DataDir and RaftListen are then unused, and Bootstrap is required.
	InMemory bool

	// Bootstrap makes this node create the cluster, with Peers as its
	// members, if DataDir holds no Raft state yet; it is ignored otherwise,
	// so the flag may stay on across restarts. A node that neither
	// bootstraps nor has state waits until a leader adds it (AddNode).
	Bootstrap bool
	// Peers is the static member list for Bootstrap (worker's --peers). This
	// node is added if missing. The first Voters members, this node first,
	// vote; the others join as non-voters. Empty: a one-node cluster.
	Peers []Peer
	// Voters is how many members vote in Raft (raft.voters): a node that
	// joins is a voter while there are fewer, a non-voter after. Default 3;
	// use 3 or 5.
	Voters int

	// SnapshotThreshold is how many Raft log entries since the last snapshot
	// make the node take another, after which the log keeps only its newest
	// entries (hashicorp/raft's TrailingLogs) (raft.snapshot.threshold).
	// Default 8192, hashicorp/raft's.
	SnapshotThreshold uint64
	// SnapshotInterval is how often the node checks SnapshotThreshold, at a
	// random time between it and twice it (raft.snapshot.interval). Default
	// 2m, hashicorp/raft's.
	SnapshotInterval time.Duration

	// HeartbeatInterval is how often the worker pings the leader
	// (worker.heartbeat.interval). Default 500ms.
	HeartbeatInterval time.Duration
	// SessionTimeout is how long the leader waits without a heartbeat before
	// it declares a node dead and moves its tasks (worker.session.timeout); a
	// node whose Raft connection is refused or reset loses them at once.
	// Default 5s.
	SessionTimeout time.Duration
	// Lease is how long a node keeps running its tasks without reaching the
	// leader (worker.lease). A new leader, which has no heartbeat history,
	// waits this long plus Raft's leader lease before it declares a node it
	// has not heard from dead. It must be shorter than SessionTimeout, so that
	// a silent node has stopped its tasks before they move. Default 4s.
	Lease time.Duration
	// DeadNodeRemoval is how long a node may stay silent before the leader
	// removes it from the cluster (Raft configuration and node registry); it
	// then has to join again. Default 10m. Negative: never.
	DeadNodeRemoval time.Duration

	// Expand lists a connector's tasks; required for a node that may lead.
	Expand ExpandFunc
	// ExpandInterval is how often the leader lists every running or paused
	// connector's tasks again. Default 10s.
	ExpandInterval time.Duration

	// Logger receives the node's and Raft's logs. Default slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Voters == 0 {
		c.Voters = DefaultVoters
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = raft.DefaultConfig().SnapshotThreshold
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = raft.DefaultConfig().SnapshotInterval
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.DeadNodeRemoval == 0 {
		c.DeadNodeRemoval = DefaultDeadNodeRemoval
	}
	if c.ExpandInterval == 0 {
		c.ExpandInterval = DefaultExpandInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// validate checks the config after setDefaults and reports every problem.
func (c *Config) validate() error {
	var errs []error
	if c.NodeID == "" {
		errs = append(errs, errors.New("node id is required"))
	}
	if c.DataDir == "" && !c.InMemory {
		errs = append(errs, errors.New("data dir is required"))
	}
	if c.RaftListen == "" && !c.InMemory {
		errs = append(errs, errors.New("raft listen address is required"))
	}
	if c.InMemory && (len(c.Peers) > 0 || !c.Bootstrap) {
		errs = append(errs, errors.New("a node in memory is a cluster of its own: bootstrap it, without peers"))
	}
	if c.RaftAdvertise != "" {
		if _, _, err := net.SplitHostPort(c.RaftAdvertise); err != nil {
			errs = append(errs, fmt.Errorf("raft advertise address %q: %w", c.RaftAdvertise, err))
		}
	}
	if c.Expand == nil {
		errs = append(errs, errors.New("an expand function is required"))
	}
	if c.Voters < 1 {
		errs = append(errs, fmt.Errorf("voters %d: must be at least 1", c.Voters))
	}
	if c.HeartbeatInterval < 0 || c.SessionTimeout < 0 || c.Lease < 0 || c.ExpandInterval < 0 || c.SnapshotInterval < 0 {
		errs = append(errs, errors.New("heartbeat interval, session timeout, lease, expand interval and snapshot interval must be positive"))
	}
	if c.Lease >= c.SessionTimeout {
		errs = append(errs, fmt.Errorf("lease %s must be shorter than session timeout %s: a node must stop its tasks before they move", c.Lease, c.SessionTimeout))
	}
	if c.HeartbeatInterval >= c.Lease {
		errs = append(errs, fmt.Errorf("heartbeat interval %s must be shorter than lease %s", c.HeartbeatInterval, c.Lease))
	}
	if c.DeadNodeRemoval > 0 && c.DeadNodeRemoval <= c.SessionTimeout {
		errs = append(errs, fmt.Errorf("dead node removal %s must be longer than session timeout %s", c.DeadNodeRemoval, c.SessionTimeout))
	}
	seen := map[string]bool{}
	for _, p := range c.Peers {
		if p.ID == "" || p.RaftAddr == "" {
			errs = append(errs, fmt.Errorf("peer %+v: id and raft address are required", p))
		}
		if seen[p.ID] {
			errs = append(errs, fmt.Errorf("peer %s listed twice", p.ID))
		}
		seen[p.ID] = true
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("coordinator config: %w", err)
	}
	return nil
}
