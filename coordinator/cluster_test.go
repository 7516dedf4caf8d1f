package coordinator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mongorelay/mongorelay/registry"

	"github.com/mongorelay/mongorelay/tasks/taskid"

	"github.com/mongorelay/mongorelay/internal/forward"
)

// Test timings: short sessions so that dead-node detection takes about a
// second, Raft's own timings as in production so that the failover measured
// is the real one.
const (
	testHeartbeat = 100 * time.Millisecond
	testLease     = time.Second
	testSession   = 1500 * time.Millisecond
)

// testExpand lists one task per shard of each collection in the config's
// "collections" (comma separated), with "shards" shards each.
func testExpand(_ context.Context, _ string, config map[string]string) ([]taskid.Spec, error) {
	shards, err := strconv.Atoi(config["shards"])
	if err != nil {
		return nil, fmt.Errorf("shards: %w", err)
	}
	var out []taskid.Spec
	for _, coll := range strings.Split(config["collections"], ",") {
		for i := range shards {
			out = append(out, taskid.Spec{DB: "db", Coll: coll, Shard: i, Shards: shards})
		}
	}
	return out, nil
}

// logBuffer keeps the cluster's logs and prints them if the test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// cluster is a set of in-process nodes on loopback TCP, each with a
// heartbeat sender doing what the worker will do.
type cluster struct {
	t      *testing.T
	log    *slog.Logger
	mu     sync.Mutex
	nodes  map[string]*Node
	stops  map[string]func()
	paused map[string]*atomic.Bool
}

func newCluster(t *testing.T) *cluster {
	logs := &logBuffer{}
	c := &cluster{
		t:      t,
		log:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		nodes:  map[string]*Node{},
		stops:  map[string]func(){},
		paused: map[string]*atomic.Bool{},
	}
	t.Cleanup(func() {
		c.mu.Lock()
		ids := make([]string, 0, len(c.nodes))
		for id := range c.nodes {
			ids = append(ids, id)
		}
		c.mu.Unlock()
		for _, id := range ids {
			c.kill(id)
		}
		if t.Failed() {
			logs.mu.Lock()
			t.Logf("cluster logs:\n%s", logs.buf.String())
			logs.mu.Unlock()
		}
	})
	return c
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (c *cluster) config(id, dir, raftAddr string) Config {
	return Config{
		NodeID: id, DataDir: dir, RaftListen: raftAddr, HTTPAdvertise: "http-" + id,
		HeartbeatInterval: testHeartbeat, SessionTimeout: testSession, Lease: testLease,
		DeadNodeRemoval: -1, Expand: testExpand, Logger: c.log,
	}
}

// startThree starts nodes n1, n2 and n3 as one cluster that n1 bootstraps, each with the test
// config changed by tune (nil: unchanged), and returns their ids and configs.
func (c *cluster) startThree(tune func(*Config)) ([]string, map[string]Config) {
	c.t.Helper()
	ids := []string{"n1", "n2", "n3"}
	cfgs := map[string]Config{}
	var peers []Peer
	for _, id := range ids {
		cfg := c.config(id, c.t.TempDir(), freeAddr(c.t))
		if tune != nil {
			tune(&cfg)
		}
		cfgs[id] = cfg
		peers = append(peers, Peer{ID: id, RaftAddr: cfg.RaftListen, HTTPAddr: "http-" + id})
	}
	boot := cfgs["n1"]
	boot.Bootstrap, boot.Peers = true, peers
	cfgs["n1"] = boot
	for _, id := range ids {
		c.start(cfgs[id])
	}
	return ids, cfgs
}

func (c *cluster) start(cfg Config) *Node {
	c.t.Helper()
	n, err := Open(context.Background(), cfg)
	if err != nil {
		c.t.Fatalf("open %s: %v", cfg.NodeID, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	paused := &atomic.Bool{}
	go func() {
		defer close(done)
		tick := time.NewTicker(cfg.HeartbeatInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if paused.Load() {
				continue
			}
			id, _ := n.Leader()
			c.mu.Lock()
			leader := c.nodes[id]
			c.mu.Unlock()
			sent := time.Now()
			if leader != nil && leader.Heartbeat(n.ID(), cfg.HTTPAdvertise) == nil {
				n.RecordLeaderContact(sent)
			}
		}
	}()
	c.mu.Lock()
	c.nodes[cfg.NodeID] = n
	c.stops[cfg.NodeID] = func() { cancel(); <-done }
	c.paused[cfg.NodeID] = paused
	c.mu.Unlock()
	return n
}

// pause stops or resumes a node's heartbeats, as a network partition
// between it and the leader would.
func (c *cluster) pause(id string, paused bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused[id].Store(paused)
}

// kill stops a node's heartbeats and shuts it down without leaving.
func (c *cluster) kill(id string) {
	c.mu.Lock()
	n, stop := c.nodes[id], c.stops[id]
	delete(c.nodes, id)
	delete(c.stops, id)
	c.mu.Unlock()
	if n == nil {
		return
	}
	stop()
	if err := n.Shutdown(); err != nil {
		c.t.Errorf("shut down %s: %v", id, err)
	}
}

func (c *cluster) running() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Node, 0, len(c.nodes))
	for _, n := range c.nodes {
		out = append(out, n)
	}
	return out
}

// waitLeader waits until every running node names the same running leader.
func (c *cluster) waitLeader(timeout time.Duration) *Node {
	c.t.Helper()
	var leader *Node
	waitFor(c.t, timeout, "a leader all nodes agree on", func() bool {
		leader = nil
		ids := map[string]bool{}
		for _, n := range c.running() {
			id, _ := n.Leader()
			ids[id] = true
			if n.IsLeader() && id == n.ID() {
				leader = n
			}
		}
		return leader != nil && len(ids) == 1
	})
	return leader
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// perNode counts assigned tasks per node.
func perNode(st *State) map[string]int {
	out := map[string]int{}
	for _, a := range st.Assignments() {
		out[a.Node]++
	}
	return out
}

func balanced(st *State, tasks int, nodes ...string) bool {
	counts := perNode(st)
	total := 0
	for _, id := range nodes {
		c := counts[id]
		if c < tasks/len(nodes) || c > (tasks+len(nodes)-1)/len(nodes) {
			return false
		}
		total += c
	}
	return total == tasks && len(st.Connectors()) > 0 && len(st.Connectors()[0].Tasks) == tasks
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestClusterFailover(t *testing.T) {
	c := newCluster(t)
	start := time.Now()
	ids, cfgs := c.startThree(nil)
	leader := c.waitLeader(10 * time.Second)
	t.Logf("first leader %s elected after %v", leader.ID(), time.Since(start))

	// A connector's tasks are listed, assigned across the nodes, and every
	// node sees the same assignments.
	ctx := ctxT(t)
	if err := leader.CreateConnector(ctx, "orders", map[string]string{"collections": "a,b,c", "shards": "2"}, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "6 tasks balanced over 3 nodes, seen by all", func() bool {
		for _, n := range c.running() {
			if !balanced(n.State(), 6, ids...) {
				return false
			}
		}
		return true
	})
	for _, n := range c.running() {
		if n.Fenced(time.Now()) {
			t.Errorf("%s fenced while heartbeating", n.ID())
		}
		if n == leader {
			continue
		}
		_, err := n.PutConnector(ctx, "other", map[string]string{})
		var nl *forward.NotLeaderError
		if !errors.As(err, &nl) || !errors.Is(err, ErrNotLeader) || nl.LeaderID != leader.ID() || nl.LeaderHTTP != "http-"+leader.ID() {
			t.Errorf("write on follower %s: %v, want NotLeaderError naming %s", n.ID(), err, leader.ID())
		}
	}

	// Kill the leader: a new one within 3 s, which moves the dead node's
	// tasks with a higher epoch once it has waited one lease.
	old := leader.ID()
	before := leader.State()
	oldEpoch := before.Epoch()
	moved := map[string]bool{}
	for _, a := range before.Assigned(old) {
		moved[a.Task] = true
	}
	killed := time.Now()
	c.kill(old)
	leader = c.waitLeader(5 * time.Second)
	failover := time.Since(killed)
	t.Logf("leader %s killed; %s elected after %v", old, leader.ID(), failover)
	if failover > 3*time.Second {
		t.Errorf("failover took %v, want under 3s", failover)
	}
	var survivors []string
	for _, id := range ids {
		if id != old {
			survivors = append(survivors, id)
		}
	}
	waitFor(t, 5*time.Second, "the dead leader's tasks on the survivors", func() bool {
		return balanced(leader.State(), 6, survivors...)
	})
	t.Logf("tasks of %s reassigned %v after the kill", old, time.Since(killed))
	for _, a := range leader.State().Assignments() {
		switch {
		case moved[a.Task] && a.Epoch <= oldEpoch:
			t.Errorf("moved task %s has epoch %d, want > %d", a.Task, a.Epoch, oldEpoch)
		case !moved[a.Task] && a.Epoch > oldEpoch:
			t.Errorf("task %s of a live node moved (epoch %d)", a.Task, a.Epoch)
		}
	}

	// Restart the killed node from its data dir: it catches up to the same
	// state and gets tasks again.
	restarted := c.start(cfgs[old])
	waitFor(t, 10*time.Second, "the restarted node to have the leader's state", func() bool {
		a, b := leader.State(), restarted.State()
		return a.Index() == b.Index() && bytes.Equal(snapshotBytes(t, a), snapshotBytes(t, b))
	})
	waitFor(t, 5*time.Second, "tasks balanced over 3 nodes again", func() bool {
		return balanced(restarted.State(), 6, ids...)
	})

	// A fourth node joins: a non-voter, since there are 3 voters.
	n4 := c.start(c.config("n4", t.TempDir(), freeAddr(t)))
	if !n4.Fenced(time.Now()) {
		t.Error("a node that never reached the leader is not fenced")
	}
	info, err := leader.AddNode(ctx, "n4", n4.RaftAddr(), "http-n4")
	if err != nil {
		t.Fatal(err)
	}
	if info.Voter {
		t.Error("4th node joined as a voter with 3 voters already")
	}
	members, err := leader.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	voters := 0
	for _, m := range members {
		if m.Voter {
			voters++
		}
	}
	if len(members) != 4 || voters != 3 {
		t.Errorf("members %+v, want 4 with 3 voters", members)
	}
	waitFor(t, 5*time.Second, "tasks balanced over 4 nodes, seen by the new one", func() bool {
		return balanced(n4.State(), 6, append(ids, "n4")...)
	})
	waitFor(t, time.Second, "the new node to be unfenced", func() bool { return !n4.Fenced(time.Now()) })

	// Cut n4 off from the leader: it fences itself after Lease, and only
	// after SessionTimeout, once it has stopped, do its tasks move.
	c.pause("n4", true)
	cut := time.Now()
	waitFor(t, 2*testLease, "n4 to fence itself", func() bool { return n4.Fenced(time.Now()) })
	fenced := time.Since(cut)
	waitFor(t, 2*testSession, "n4's tasks to move", func() bool { return len(leader.Assigned("n4")) == 0 })
	movedAfter := time.Since(cut)
	t.Logf("n4 cut off: fenced after %v, tasks moved after %v", fenced, movedAfter)
	// Both count from n4's last heartbeat: the gap is SessionTimeout - Lease,
	// less the heartbeat's transit time and the leader's check interval.
	if gap := movedAfter - fenced; gap < (testSession-testLease)/2 {
		t.Errorf("fenced after %v and tasks moved after %v: want them to move about %v after the fence", fenced, movedAfter, testSession-testLease)
	}
	c.pause("n4", false)
	waitFor(t, 5*time.Second, "n4 back with tasks", func() bool {
		return !n4.Fenced(time.Now()) && balanced(n4.State(), 6, append(ids, "n4")...)
	})
}

func TestClusterMembership(t *testing.T) {
	c := newCluster(t)
	cfg := c.config("n1", t.TempDir(), freeAddr(t))
	cfg.Bootstrap, cfg.Voters, cfg.DeadNodeRemoval = true, 2, 2*time.Second
	leader := c.start(cfg)
	c.waitLeader(10 * time.Second)
	ctx := ctxT(t)

	if err := leader.Heartbeat("ghost", ""); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("heartbeat of a stranger: %v, want ErrUnknownNode", err)
	}
	added := map[string]*Node{}
	for _, tc := range []struct {
		id    string
		voter bool
	}{{"n2", true}, {"n3", false}, {"n4", false}} {
		n := c.start(c.config(tc.id, t.TempDir(), freeAddr(t)))
		info, err := leader.AddNode(ctx, tc.id, n.RaftAddr(), "http-"+tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if info.Voter != tc.voter {
			t.Errorf("%s joined with voter=%v, want %v (Voters=2)", tc.id, info.Voter, tc.voter)
		}
		added[tc.id] = n
	}
	waitFor(t, 5*time.Second, "all nodes in the registry", func() bool { return len(added["n4"].State().Nodes()) == 4 })

	// A silent node is removed after DeadNodeRemoval.
	c.kill("n4")
	waitFor(t, 5*time.Second, "n4 removed", func() bool {
		_, ok := leader.State().Node("n4")
		return !ok
	})

	// A follower's Leave names the leader; the leader removes it, and a live
	// non-voter is promoted to keep 2 voters.
	err := added["n2"].Leave(ctx)
	var nl *forward.NotLeaderError
	if !errors.As(err, &nl) || nl.LeaderID != "n1" || nl.LeaderHTTP != "http-n1" {
		t.Fatalf("leave on a follower: %v, want NotLeaderError naming n1", err)
	}
	if err := leader.RemoveNode(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	c.kill("n2")
	waitFor(t, 5*time.Second, "n3 promoted to voter", func() bool {
		members, err := leader.Members(ctx)
		if err != nil || len(members) != 2 {
			return false
		}
		for _, m := range members {
			if !m.Voter {
				return false
			}
		}
		info, _ := leader.State().Node("n3")
		return info.Voter
	})
}

// TestRegistryAppendRefusesAStaleWriter: a writer that has not read another's changes is
// refused, so it cannot give away an id the other gave; once it has read them it writes, and
// a reader starting later reads both.
func TestRegistryAppendRefusesAStaleWriter(t *testing.T) {
	c := newCluster(t)
	cfg := c.config("n1", t.TempDir(), freeAddr(t))
	cfg.Bootstrap = true
	n := c.start(cfg)
	c.waitLeader(10 * time.Second)
	ctx := ctxT(t)

	a := registry.Change{Kind: registry.ChangeVersion, Subject: "a-value", Version: 1, ID: 1, Schema: `"string"`}
	b := registry.Change{Kind: registry.ChangeVersion, Subject: "b-value", Version: 1, ID: 1, Schema: `"long"`}
	seq1, err := n.AppendRegistry(ctx, 0, []registry.Change{a})
	if err != nil || seq1 != 1 {
		t.Fatalf("first append: seq %d, %v", seq1, err)
	}
	// The second writer read the registry before the first wrote: refused, not given id 1.
	if _, err := n.AppendRegistry(ctx, 0, []registry.Change{b}); !errors.Is(err, ErrRegistryConflict) {
		t.Fatalf("stale writer's append: %v, want ErrRegistryConflict", err)
	}
	changes, seq, complete := n.RegistryChanges(0)
	if !complete || seq != 1 || len(changes) != 1 || changes[0] != a {
		t.Fatalf("after the refusal: %+v at %d (complete %v), want only %+v", changes, seq, complete, a)
	}
	b.ID = 2
	seq2, err := n.AppendRegistry(ctx, seq, []registry.Change{b})
	if err != nil || seq2 != 2 {
		t.Fatalf("append after catching up: seq %d, %v", seq2, err)
	}
	if changes, seq, complete := n.RegistryChanges(seq1); !complete || seq != 2 || len(changes) != 1 || changes[0] != b {
		t.Fatalf("changes after %d: %+v at %d (complete %v), want %+v", seq1, changes, seq, complete, b)
	}
	// A reader starting later reads both.
	if changes, seq, complete := n.RegistryChanges(0); !complete || seq != 2 || len(changes) != 2 {
		t.Fatalf("replayed %+v at %d (complete %v)", changes, seq, complete)
	}
	// A hard delete drops a key: a reader from before it must replay.
	drop := registry.Change{Kind: registry.ChangeVersion, Subject: "a-value", Version: 1, Remove: true}
	if _, err := n.AppendRegistry(ctx, seq2, []registry.Change{drop}); err != nil {
		t.Fatal(err)
	}
	if _, seq, complete := n.RegistryChanges(seq1); complete || seq != 3 {
		t.Fatalf("changes after %d across a hard delete: at %d, complete %v, want incomplete at 3", seq1, seq, complete)
	}
	if changes, _, complete := n.RegistryChanges(0); !complete || len(changes) != 1 || changes[0] != b {
		t.Fatalf("replayed after the hard delete: %+v (complete %v), want only %+v", changes, complete, b)
	}
}

// TestInMemoryNodeLeadsAndAssignsItself: a node in memory (a standalone process) needs no data
// dir or Raft address, leads at once, and assigns every task to itself; it refuses a second
// create of a name without writing to its log.
func TestInMemoryNodeLeadsAndAssignsItself(t *testing.T) {
	n, err := Open(context.Background(), Config{
		NodeID: "solo", InMemory: true, Bootstrap: true, Expand: testExpand,
		HeartbeatInterval: testHeartbeat, Lease: testLease, SessionTimeout: testSession,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	waitFor(t, 2*time.Second, "the node leads", n.IsLeader)
	if err := n.CreateConnector(ctxT(t), "c", map[string]string{"collections": "a,b", "shards": "2"}, StateRunning); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "4 tasks assigned to the node", func() bool { return len(n.State().Assigned("solo")) == 4 })
	index := n.State().Index()
	if err := n.CreateConnector(ctxT(t), "c", map[string]string{"collections": "a"}, StateRunning); !errors.Is(err, ErrConnectorExists) {
		t.Errorf("a second create of c = %v, want ErrConnectorExists", err)
	}
	if got := n.State().Index(); got != index {
		t.Errorf("a refused create moved the state from index %d to %d, want it untouched", index, got)
	}

	for name, cfg := range map[string]Config{
		"not bootstrapped": {NodeID: "x", InMemory: true, Expand: testExpand},
		"with peers":       {NodeID: "x", InMemory: true, Bootstrap: true, Peers: []Peer{{ID: "y", RaftAddr: "127.0.0.1:1"}}, Expand: testExpand},
	} {
		if _, err := Open(context.Background(), cfg); err == nil {
			t.Errorf("%s: Open succeeded, want a node in memory refused", name)
		}
	}
}

// TestLeaderStampsTheClusterID: the first leader stamps its cluster.id into the replicated
// state, which a node added later applies too.
func TestLeaderStampsTheClusterID(t *testing.T) {
	c := newCluster(t)
	cfg := c.config("n1", t.TempDir(), freeAddr(t))
	cfg.Bootstrap, cfg.ClusterID = true, "blue"
	leader := c.start(cfg)
	c.waitLeader(10 * time.Second)
	waitFor(t, 5*time.Second, "the cluster id stamped", func() bool { return leader.State().ClusterID() == "blue" })
	cfg2 := c.config("n2", t.TempDir(), freeAddr(t))
	cfg2.ClusterID = "blue"
	n2 := c.start(cfg2)
	if _, err := leader.AddNode(ctxT(t), "n2", n2.RaftAddr(), "http-n2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "n2 to apply the stamp", func() bool { return n2.State().ClusterID() == "blue" })
}

// TestCleanStopHandsOver: a node that says it is stopping (its last heartbeat) loses its tasks
// at once, long before the session timeout, and gets tasks again when it heartbeats after a
// restart; a leader that stops cleanly hands the leadership to another voter.
func TestCleanStopHandsOver(t *testing.T) {
	c := newCluster(t)
	ids, _ := c.startThree(nil)
	leader := c.waitLeader(10 * time.Second)
	ctx := ctxT(t)
	if err := leader.CreateConnector(ctx, "orders", map[string]string{"collections": "a,b,c", "shards": "2"}, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "6 tasks balanced over 3 nodes", func() bool { return balanced(leader.State(), 6, ids...) })

	var stopping string
	var others []string
	for _, id := range ids {
		if id != leader.ID() && stopping == "" {
			stopping = id
		} else {
			others = append(others, id)
		}
	}
	c.pause(stopping, true) // its heartbeats end, as they do once a node has said farewell
	said := time.Now()
	if err := leader.Stopping(stopping, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, testSession/2, "the stopping node's tasks on the others, before its session could end", func() bool {
		return balanced(leader.State(), 6, others...)
	})
	t.Logf("tasks of %s moved %v after it said it was stopping (session timeout %v)", stopping, time.Since(said), testSession)
	c.pause(stopping, false) // restarted: heartbeats again
	waitFor(t, 5*time.Second, "6 tasks over 3 nodes again", func() bool { return balanced(leader.State(), 6, ids...) })

	for _, n := range c.running() {
		if n != leader {
			if handed, err := n.TransferLeadership(ctx); handed || err != nil {
				t.Errorf("TransferLeadership on follower %s = %v, %v; want false, nil", n.ID(), handed, err)
			}
		}
	}
	handed, err := leader.TransferLeadership(ctx)
	if !handed || err != nil {
		t.Fatalf("TransferLeadership on the leader = %v, %v; want true, nil", handed, err)
	}
	next := c.waitLeader(5 * time.Second)
	if next.ID() == leader.ID() {
		t.Errorf("%s still leads after handing the leadership over", leader.ID())
	}
}
