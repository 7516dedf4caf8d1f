// Package coordinator keeps a cluster's shared state in Raft and does the
// leader's work on it: connectors, their tasks and which node runs each.
//
// Every node holds the whole state (connectors, tasks, assignments, members,
// the schema registry, offset-reset requests) in a replicated state machine
// (hashicorp/raft, raft-boltdb log and stable store behind a LogCache, file
// snapshots). Changes are typed, versioned JSON commands (command.go); Apply
// only computes the next State, copy on write, so readers use an immutable
// *State without a lock and watch for newer ones.
//
// Writes go through the leader: on any other node they return a
// *forward.NotLeaderError naming it, and the api layer forwards the request there,
// one hop (DESIGN.md section 3). The leader, after a Barrier and with a
// context per term (leader.go), lists each connector's tasks (ExpandFunc),
// assigns them balanced and sticky (package assign), keeps heartbeat times
// in memory and moves, with a new epoch, the tasks of a node known to be gone
// (its Raft connection reset, or a clean stop) at once and those of a node
// silent for SessionTimeout then (liveness.go). Nodes run what State.Assigned
// lists and fence themselves (Fenced) when they have not reached the leader
// for Lease.
package coordinator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/mongorelay/mongorelay/internal/forward"
)

// Raft settings, tuned for loopback and LAN so that a new leader is elected
// within about a second of the old one's death: followers notice after
// 0.5–1 s without a heartbeat (HeartbeatTimeout, randomised up to twice that;
// the leader sends one every 50–100 ms), and the pre-vote and vote rounds take
// milliseconds; a follower whose pre-vote the other one refused, having heard
// from the leader more recently, waits one more ElectionTimeout (0.5–1 s).
// A leader steps down after LeaderLeaseTimeout without reaching a quorum,
// well inside Lease; it is half the heartbeat timeout, Raft's default ratio,
// which leader.go's grace period relies on.
const (
	raftHeartbeatTimeout = 500 * time.Millisecond
	raftElectionTimeout  = 500 * time.Millisecond
	raftLeaderLease      = 250 * time.Millisecond
	raftCommitTimeout    = 50 * time.Millisecond
	// inMemoryTimeout replaces the three timeouts above for a node alone in memory.
	inMemoryTimeout   = 20 * time.Millisecond
	logCacheSize      = 512
	snapshotsRetained = 2
	transportPool     = 3
	transportTimeout  = 10 * time.Second
	// observationsBuffer holds Raft's failed heartbeats until watchConnections reads them.
	observationsBuffer = 64
	// applyTimeout bounds a Raft round trip when the caller's context has no
	// deadline.
	applyTimeout = 10 * time.Second
)

// Node is this process's member of the cluster. Create it with Open and
// call Shutdown (or Leave, then Shutdown) when done.
type Node struct {
	cfg      Config
	log      *slog.Logger
	fsm      *fsm
	raft     *raft.Raft
	logs     *raft.LogCache
	store    logStore
	trans    transport
	raftAddr string

	notify chan bool // Raft's leadership changes, read by run
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// contact is when a heartbeat that the leader answered was sent
	// (RecordLeaderContact); leaderSeen is the last time this node knew it
	// led, less Raft's leader lease. Unix nanoseconds.
	contact, leaderSeen atomic.Int64

	// mu guards the leader's memory, reset at each term.
	mu sync.Mutex
	// beats holds the time of each node's last heartbeat to this leader.
	beats map[string]time.Time
	// stopped holds the nodes that said they are stopping (Stopping) and have not
	// heartbeated since, each with the time until which its tasks wait for it to
	// restart (zero: not at all).
	stopped map[string]time.Time
	// resets holds the nodes whose Raft connection was refused or reset
	// (watchConnections) and that have not heartbeated since, each with when.
	resets map[string]time.Time
	// httpAddrs holds HTTP addresses heard in heartbeats that the node
	// registry does not have yet.
	httpAddrs map[string]string
	// kick wakes the leader's loop when a heartbeat brings news.
	kick chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// logStore is Raft's log and stable store: bolt on disk, or in memory (Config.InMemory).
type logStore interface {
	raft.LogStore
	raft.StableStore
	io.Closer
}

// transport is Raft's transport: TCP, or in memory (Config.InMemory).
type transport interface {
	raft.Transport
	io.Closer
}

// inMemoryStore is the in-memory log store, which has nothing to close.
type inMemoryStore struct{ *raft.InmemStore }

func (inMemoryStore) Close() error { return nil }

// Open starts the node: it opens (or creates) the Raft state in
// cfg.DataDir/raft (in memory with cfg.InMemory), bootstraps the cluster if
// cfg.Bootstrap and there is no state yet, and starts taking part in
// elections. It returns at once; use Watch or Leader to see when a leader is
// known.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("node", cfg.NodeID)

	n := &Node{
		cfg:       cfg,
		log:       log,
		fsm:       newFSM(log),
		notify:    make(chan bool, 16),
		beats:     map[string]time.Time{},
		stopped:   map[string]time.Time{},
		resets:    map[string]time.Time{},
		httpAddrs: map[string]string{},
		kick:      make(chan struct{}, 1),
	}
	if cfg.InMemory {
		n.store = inMemoryStore{raft.NewInmemStore()}
	} else {
		dir := filepath.Join(cfg.DataDir, "raft")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create raft dir: %w", err)
		}
		store, err := raftboltdb.New(raftboltdb.Options{
			Path: filepath.Join(dir, "raft.db"),
			// Without a timeout a second process on the same data dir would wait
			// for the file lock forever.
			BoltOptions: &bbolt.Options{Timeout: time.Second},
		})
		if err != nil {
			return nil, fmt.Errorf("open raft log %s: %w", dir, err)
		}
		n.store = store
	}
	if err := n.open(ctx); err != nil {
		if n.raft != nil {
			_ = n.Shutdown()
		} else {
			_ = n.closeStores()
		}
		return nil, err
	}
	return n, nil
}

func (n *Node) open(ctx context.Context) error {
	cfg := n.cfg
	var err error
	if n.logs, err = raft.NewLogCache(logCacheSize, n.store); err != nil {
		return fmt.Errorf("raft log cache: %w", err)
	}
	snaps, err := n.openTransport()
	if err != nil {
		return err
	}
	n.raftAddr = string(n.trans.LocalAddr())

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = raftHeartbeatTimeout
	rc.ElectionTimeout = raftElectionTimeout
	rc.LeaderLeaseTimeout = raftLeaderLease
	rc.CommitTimeout = raftCommitTimeout
	rc.SnapshotThreshold, rc.SnapshotInterval = cfg.SnapshotThreshold, cfg.SnapshotInterval
	if cfg.InMemory {
		// Nobody else votes and nothing crosses a network: elect this node at once.
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = inMemoryTimeout, inMemoryTimeout, inMemoryTimeout
	}
	rc.NotifyCh = n.notify
	rc.Logger = &hclogAdapter{log: n.log.With("component", "raft"), name: "raft", quiet: cfg.InMemory}
	if err := raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("raft config: %w", err)
	}

	if !cfg.InMemory {
		if err := n.recoverFromPeersFile(rc, snaps); err != nil {
			return err
		}
	}
	existing, err := raft.HasExistingState(n.logs, n.store, snaps)
	if err != nil {
		return fmt.Errorf("read raft state: %w", err)
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, n.logs, n.store, snaps, n.trans); err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel = cancel
	n.wg.Go(func() { n.run(runCtx) })
	observations := make(chan raft.Observation, observationsBuffer)
	n.raft.RegisterObserver(raft.NewObserver(observations, false, failedHeartbeats))
	n.wg.Go(func() { n.watchConnections(runCtx, observations) })

	switch {
	case existing:
		n.log.Info("raft state found, rejoining the cluster", "raft_addr", n.raftAddr)
	case cfg.Bootstrap:
		if err := n.bootstrap(ctx); err != nil {
			return err
		}
	default:
		n.log.Info("no raft state: waiting for a leader to add this node", "raft_addr", n.raftAddr)
	}
	return nil
}

// openTransport opens Raft's transport and snapshot store: TCP and files in the data dir, or
// both in memory.
func (n *Node) openTransport() (raft.SnapshotStore, error) {
	cfg := n.cfg
	if cfg.InMemory {
		_, trans := raft.NewInmemTransport(raft.ServerAddress("inmem-" + cfg.NodeID))
		n.trans = trans
		return raft.NewInmemSnapshotStore(), nil
	}
	dir := filepath.Join(cfg.DataDir, "raft")
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, snapshotsRetained, newHCLog(n.log, "raft-snapshots"))
	if err != nil {
		return nil, fmt.Errorf("open raft snapshots %s: %w", dir, err)
	}
	var advertise net.Addr
	if cfg.RaftAdvertise != "" {
		if advertise, err = net.ResolveTCPAddr("tcp", cfg.RaftAdvertise); err != nil {
			return nil, fmt.Errorf("raft advertise address %q: %w", cfg.RaftAdvertise, err)
		}
	}
	if cfg.RaftTLS != nil {
		var named net.Addr
		if cfg.RaftAdvertise != "" {
			named = namedAddr(cfg.RaftAdvertise)
		}
		stream, err := listenTLS(cfg.RaftListen, named, cfg.RaftTLS)
		if err != nil {
			return nil, fmt.Errorf("raft listen on %s over TLS (advertise %q): %w", cfg.RaftListen, cfg.RaftAdvertise, err)
		}
		n.trans = raft.NewNetworkTransportWithLogger(stream, transportPool, transportTimeout, newHCLog(n.log, "raft-net"))
		return snaps, nil
	}
	if n.trans, err = raft.NewTCPTransportWithLogger(cfg.RaftListen, advertise, transportPool, transportTimeout, newHCLog(n.log, "raft-net")); err != nil {
		return nil, fmt.Errorf("raft listen on %s (advertise %q): %w", cfg.RaftListen, cfg.RaftAdvertise, err)
	}
	return snaps, nil
}

// bootstrap creates the cluster with this node and cfg.Peers.
func (n *Node) bootstrap(ctx context.Context) error {
	peers := slices.Clone(n.cfg.Peers)
	if i := slices.IndexFunc(peers, func(p Peer) bool { return p.ID == n.cfg.NodeID }); i >= 0 {
		peers = slices.Delete(peers, i, i+1)
	}
	peers = slices.Insert(peers, 0, Peer{ID: n.cfg.NodeID, RaftAddr: n.raftAddr, HTTPAddr: n.cfg.HTTPAdvertise})
	var servers []raft.Server
	for i, p := range peers {
		suffrage := raft.Voter
		if i >= n.cfg.Voters {
			suffrage = raft.Nonvoter
		}
		servers = append(servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr), Suffrage: suffrage})
	}
	f := n.raft.BootstrapCluster(raft.Configuration{Servers: servers})
	if err := waitFuture(ctx, f); err != nil {
		return fmt.Errorf("bootstrap cluster with %d members: %w", len(servers), err)
	}
	n.log.Info("bootstrapped the cluster", "members", len(servers))
	return nil
}

// Shutdown stops the node without leaving the cluster: the others see it as
// silent, as after a crash, until it comes back. Calling it again returns
// the first result.
func (n *Node) Shutdown() error {
	n.closeOnce.Do(func() {
		var errs []error
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("stop raft: %w", err))
		}
		n.cancel()
		n.wg.Wait()
		errs = append(errs, n.closeStores())
		n.closeErr = errors.Join(errs...)
		n.log.Info("coordinator stopped")
	})
	return n.closeErr
}

func (n *Node) closeStores() error {
	var errs []error
	if n.trans != nil {
		if err := n.trans.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft transport: %w", err))
		}
	}
	if err := n.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close raft log: %w", err))
	}
	return errors.Join(errs...)
}

// ID is this node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// RaftAddr is the address other nodes reach this node's Raft at.
func (n *Node) RaftAddr() string { return n.raftAddr }

// IsLeader reports whether this node leads.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// RaftState is Raft's view of this node: Leader, Follower, Candidate or
// Shutdown.
func (n *Node) RaftState() string { return n.raft.State().String() }

// Term is the Raft term this node is in (GET /cluster shows it).
func (n *Node) Term() uint64 { return n.raft.CurrentTerm() }

// Leader returns the leader's id and HTTP address; both are empty while no
// leader is known, and the address is empty if the leader never told it.
func (n *Node) Leader() (id, httpAddr string) {
	_, lid := n.raft.LeaderWithID()
	id = string(lid)
	if id == "" {
		return "", ""
	}
	return id, n.httpAddrOf(n.State(), id)
}

func (n *Node) httpAddrOf(st *State, id string) string {
	if id == n.cfg.NodeID {
		return n.cfg.HTTPAdvertise
	}
	if info, ok := st.nodes[id]; ok && info.HTTPAddr != "" {
		return info.HTTPAddr
	}
	for _, p := range n.cfg.Peers {
		if p.ID == id {
			return p.HTTPAddr
		}
	}
	return ""
}

func (n *Node) notLeader() error {
	id, addr := n.Leader()
	if id == n.cfg.NodeID {
		// Raft has just changed its mind; let the caller retry.
		id, addr = "", ""
	}
	return &forward.NotLeaderError{LeaderID: id, LeaderHTTP: addr}
}

// State returns the current cluster state as this node has applied it.
func (n *Node) State() *State { return n.fsm.cur.Load().st }

// Watch returns the current state and a channel closed as soon as a newer
// one is published.
func (n *Node) Watch() (*State, <-chan struct{}) {
	p := n.fsm.cur.Load()
	return p.st, p.changed
}

// Assigned returns the tasks the current state assigns to nodeID (see
// State.Assigned).
func (n *Node) Assigned(nodeID string) []Assignment { return n.State().Assigned(nodeID) }

// WaitIndex waits until this node has applied the command at index (or a
// later one).
func (n *Node) WaitIndex(ctx context.Context, index uint64) error {
	for {
		st, changed := n.Watch()
		if st.index >= index {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for raft index %d (at %d): %w", index, st.index, ctx.Err())
		case <-changed:
		}
	}
}

// CommittedIndex returns the Raft index this node's state reaches once it has applied every
// command it knows to be committed: a reader that misses something the leader wrote waits
// for it (WaitIndex) before answering "not found". Only commands reach the state, so it is
// the last command at or below the commit index, not a no-op or configuration entry.
func (n *Node) CommittedIndex() uint64 {
	applied := n.State().index
	for i := n.raft.CommitIndex(); i > applied; i-- {
		var entry raft.Log
		if err := n.logs.GetLog(i, &entry); err != nil {
			break // compacted into a snapshot, which is applied already
		}
		if entry.Type == raft.LogCommand {
			return i
		}
	}
	return applied
}

// RecordLeaderContact notes that a heartbeat sent at sent got an answer from
// the leader. The worker's heartbeat sender calls it after each success.
func (n *Node) RecordLeaderContact(sent time.Time) { storeMax(&n.contact, sent) }

// LeaderContact returns the last time this node knew it was in touch with
// the leader: the send time of the last answered heartbeat or, while it
// leads, now less Raft's leader lease (a leader that cannot reach a quorum
// steps down within that lease).
func (n *Node) LeaderContact() time.Time {
	if n.IsLeader() {
		storeMax(&n.leaderSeen, time.Now().Add(-raftLeaderLease))
	}
	return time.Unix(0, max(n.contact.Load(), n.leaderSeen.Load()))
}

// Fenced reports whether this node must stop all its tasks: it has not been
// in touch with the leader for Lease (DESIGN.md section 3, self-fencing). A
// node that never reached a leader is fenced.
func (n *Node) Fenced(now time.Time) bool {
	return now.Sub(n.LeaderContact()) > n.cfg.Lease
}

// RefusedCommand describes the first committed Raft command this node's build could not
// read (a newer build wrote it), "" while there is none. Such a node's state lacks that
// command's change, so it must be upgraded; it stays so until it restarts on a newer build.
func (n *Node) RefusedCommand() string {
	if u := n.fsm.refused.Load(); u != nil {
		return u.Error()
	}
	return ""
}

// Refused is closed once this node has refused a committed Raft command (RefusedCommand says
// which). From then on its state lags the cluster's for good: its owner stops it, and it
// refuses the same command again on every restart until it runs a newer build.
func (n *Node) Refused() <-chan struct{} { return n.fsm.refusedCh }

func storeMax(v *atomic.Int64, t time.Time) {
	ns := t.UnixNano()
	for {
		old := v.Load()
		if ns <= old || v.CompareAndSwap(old, ns) {
			return
		}
	}
}

// apply runs a command through Raft on the leader and returns once this node
// has applied it.
func (n *Node) apply(ctx context.Context, payload any) (applyResult, error) {
	data, err := encodeCommand(payload)
	if err != nil {
		return applyResult{}, err
	}
	if !n.IsLeader() {
		return applyResult{}, n.notLeader()
	}
	f := n.raft.Apply(data, timeoutOf(ctx))
	if err := waitFuture(ctx, f); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
			return applyResult{}, n.notLeader()
		case errors.Is(err, raft.ErrLeadershipLost):
			return applyResult{}, fmt.Errorf("%w (the change may have been applied)", n.notLeader())
		case errors.Is(err, raft.ErrRaftShutdown):
			return applyResult{}, ErrClosed
		}
		return applyResult{}, fmt.Errorf("raft apply: %w", err)
	}
	res, ok := f.Response().(applyResult)
	if !ok {
		return applyResult{}, fmt.Errorf("raft apply: unexpected response %T", f.Response())
	}
	return res, res.err
}

func timeoutOf(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return applyTimeout
}

// waitFuture waits for f or ctx. Raft answers every future eventually (at
// the latest when it shuts down), so the waiting goroutine ends.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
