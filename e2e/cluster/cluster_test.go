//go:build e2e

package cluster

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/e2e/internal/clusterapi"
	"github.com/mongorelay/mongorelay/e2e/internal/traffic"
	"github.com/mongorelay/mongorelay/internal/testenv"
)

// The shape of the test cluster: 2 connectors × 3 collections × 4 shards = 24 tasks on 3 nodes.
const (
	shards      = 4
	collections = 3
	totalTasks  = 2 * collections * shards
	writeRate   = 1000 // documents per second, spread over the 6 collections
	// bound is the limit on every failover step (kill -9 to all tasks running elsewhere).
	bound = 15 * time.Second
	// lease is worker.lease (the default).
	lease = coordinator.DefaultLease
	// sessionTimeout is worker.session.timeout (the default): how long the tasks of a node
	// that went silent wait before they move.
	sessionTimeout = coordinator.DefaultSessionTimeout
	// rebalanceDelay is the worker.rebalance.delay the nodes get for the rolling restart: far
	// longer than a restart takes.
	rebalanceDelay = 30 * time.Second
)

// harness is a cluster of worker processes and what the test knows about it.
type harness struct {
	t       *testing.T
	run     string
	kafka   string
	mongo   string
	nodes   []*node // n1..n3, the voters; n4 is started later
	conns   []string
	prefix  string
	dbs     []string
	topics  []string
	logDir  string
	leaders *leaderLog

	mu sync.Mutex // guards nodes, which the leader watcher reads
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, kafka: testenv.Kafka(t), mongo: testenv.Mongo(t)}
	h.run = fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	h.prefix = "e2ec" + h.run
	h.conns = []string{"cdc-a", "cdc-b"}
	for _, suffix := range []string{"a", "b"} {
		db := "e2ec_" + h.run + "_" + suffix
		h.dbs = append(h.dbs, db)
		for i := range collections {
			h.topics = append(h.topics, fmt.Sprintf("%s.%s.c%d", h.prefix, db, i))
		}
	}
	// Logs are kept after the run (for a failure's post-mortem), one directory, replaced by
	// the next run.
	h.logDir = filepath.Join("..", "..", ".cache", "test-logs", "e2e-cluster")
	_ = os.RemoveAll(h.logDir)
	if err := os.MkdirAll(h.logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("node logs in %s", h.logDir)
	for i := 1; i <= 3; i++ {
		h.nodes = append(h.nodes, newNode(t, fmt.Sprintf("n%d", i), h.logDir))
	}
	var peers []string
	for _, n := range h.nodes {
		peers = append(peers, n.id+"="+n.raft+"="+n.http)
	}
	for i, n := range h.nodes {
		n.args = h.args(n, "--peers", strings.Join(peers, ","))
		if i == 0 {
			n.args = append(n.args, "--bootstrap")
		}
	}
	cleanUpNodes(t, h.logDir, &h.nodes)
	return h
}

// args are a node's flags, with extra ones.
func (h *harness) args(n *node, extra ...string) []string {
	return nodeArgs(n, "e2e-"+h.run, h.kafka, extra...)
}

// nodeArgs are the flags of node n of cluster id, with extra ones.
func nodeArgs(n *node, id, kafka string, extra ...string) []string {
	return append([]string{
		"--node-id", n.id, "--data-dir", n.dataDir, "--cluster-id", id,
		"--http-listen", n.http, "--raft-listen", n.raft, "--registry-listen", n.registry,
		"--kafka", kafka, "--offsets-topic", id + "-offsets",
	}, extra...)
}

// nodeByID returns the node named id.
func (h *harness) nodeByID(id string) *node {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range h.nodes {
		if n.id == id {
			return n
		}
	}
	h.t.Fatalf("no node %s", id)
	return nil
}

func (h *harness) running() []*node {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*node
	for _, n := range h.nodes {
		if n.running() {
			out = append(out, n)
		}
	}
	return out
}

// leader returns the leader as every running node sees it, once they agree and it says so
// itself.
func (h *harness) leader(timeout time.Duration) (*node, time.Duration) {
	h.t.Helper()
	var leader *node
	took := clusterapi.WaitFor(h.t, timeout, "a leader every running node agrees on", func() (bool, string) {
		ids := map[string]bool{}
		for _, n := range h.running() {
			ov, err := clusterapi.GetOverview(n.http)
			if err != nil {
				return false, err.Error()
			}
			ids[ov.Leader] = true
			if ov.Leader == n.id && ov.RaftState == "Leader" {
				leader = n
			}
		}
		if len(ids) != 1 || leader == nil || ids[""] || !ids[leader.id] {
			return false, fmt.Sprintf("leaders seen: %v", ids)
		}
		return true, ""
	})
	return leader, took
}

// newLeader polls the running nodes every 50ms until they all name one leader other than old,
// which says it leads, and returns it and how long that took.
func (h *harness) newLeader(old string, timeout time.Duration) (string, time.Duration) {
	h.t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		ids := map[string]bool{}
		leads := ""
		for _, n := range h.running() {
			ov, err := clusterapi.QuickOverview(n.http)
			if err != nil {
				ids["?"] = true
				continue
			}
			ids[ov.Leader] = true
			if ov.RaftState == "Leader" && ov.Leader == n.id {
				leads = n.id
			}
		}
		if len(ids) == 1 && leads != "" && leads != old && ids[leads] {
			return leads, time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("no new leader within %s", timeout)
	return "", 0
}

// settled waits until every task of both connectors runs on a running node other than those
// in avoid, as the leader's status says, and the assignments have not changed for a second.
// It returns the assignments and how long it took until they were first seen so.
func (h *harness) settled(timeout time.Duration, avoid ...string) (clusterapi.Overview, time.Duration) {
	h.t.Helper()
	var ov clusterapi.Overview
	var stableSince time.Time
	var last map[string]string
	start := time.Now()
	clusterapi.WaitFor(h.t, timeout, "every task RUNNING", func() (bool, string) {
		ok, why := h.allRunning(&ov, avoid)
		if !ok {
			last = nil // stability counts from a poll where everything ran
			return false, why
		}
		owners := ov.Owners()
		if !mapsEqual(owners, last) {
			last, stableSince = owners, time.Now()
			return false, "assignments just changed"
		}
		return time.Since(stableSince) >= time.Second, "settling"
	})
	return ov, stableSince.Sub(start)
}

// settledEvenly waits, up to timeout, until the assignments have settled with no running node
// holding more than its share: a node just restarted may be given tasks a few seconds after
// the others have settled, which a test that counts moved tasks must not take for its own.
func (h *harness) settledEvenly(timeout time.Duration) clusterapi.Overview {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ov, _ := h.settled(timeout)
		limit := (totalTasks + len(h.running()) - 1) / len(h.running())
		even := true
		for _, n := range ov.PerNode() {
			even = even && n <= limit
		}
		if even || time.Now().After(deadline) {
			return ov
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// allRunning reports whether every task runs on a running node not in avoid, and reads the
// assignments into ov.
func (h *harness) allRunning(ov *clusterapi.Overview, avoid []string) (bool, string) {
	alive := map[string]bool{}
	for _, n := range h.running() {
		alive[n.id] = true
	}
	for _, id := range avoid {
		alive[id] = false
	}
	var addr string
	for _, n := range h.running() {
		if alive[n.id] {
			addr = n.http
			break
		}
	}
	var err error
	if *ov, err = clusterapi.GetOverview(addr); err != nil {
		return false, err.Error()
	}
	for _, c := range h.conns {
		st, err := clusterapi.GetStatus(addr, c)
		if err != nil {
			return false, err.Error()
		}
		if len(st.Tasks) != totalTasks/2 {
			return false, fmt.Sprintf("%s has %d tasks", c, len(st.Tasks))
		}
		for _, task := range st.Tasks {
			if task.State != "RUNNING" || !alive[task.WorkerID] {
				return false, fmt.Sprintf("%s task %d is %s on %q %s", c, task.ID, task.State, task.WorkerID, task.Trace)
			}
		}
	}
	if n := len(ov.Owners()); n != totalTasks {
		return false, fmt.Sprintf("%d assignments", n)
	}
	return true, ""
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// moved lists the tasks whose owner differs between two assignments.
func moved(before, after map[string]string) []string {
	var out []string
	for k, v := range after {
		if before[k] != v {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// balanced fails the test when a node holds more than ceil(tasks/nodes).
func (h *harness) balanced(ov clusterapi.Overview, nodes int) {
	h.t.Helper()
	limit := (totalTasks + nodes - 1) / nodes
	for id, n := range ov.PerNode() {
		if n > limit {
			h.t.Errorf("node %s holds %d tasks, more than ceil(%d/%d) = %d: %v", id, n, totalTasks, nodes, limit, ov.PerNode())
		}
	}
	h.t.Logf("tasks per node: %v", ov.PerNode())
}

// taskOf maps an assignment key (connector/db.coll#i-of-n) to its records' topic and shard
// header.
func (h *harness) taskOf(key string) (topic, shard string) {
	_, task, _ := strings.Cut(key, "/")
	ns, sh, _ := strings.Cut(task, "#")
	return h.prefix + "." + ns, sh
}

// leaderLog samples every running node's /cluster and remembers, per Raft term, which nodes
// said they led in it.
type leaderLog struct {
	mu      sync.Mutex
	byTerm  map[uint64]map[string]bool
	samples int
}

func (h *harness) watchLeaders(ctx context.Context) {
	h.leaders = &leaderLog{byTerm: map[uint64]map[string]bool{}}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(250 * time.Millisecond):
			}
			for _, n := range h.running() {
				ov, err := clusterapi.QuickOverview(n.http)
				if err != nil || ov.RaftState != "Leader" {
					continue
				}
				h.leaders.mu.Lock()
				if h.leaders.byTerm[ov.Term] == nil {
					h.leaders.byTerm[ov.Term] = map[string]bool{}
				}
				h.leaders.byTerm[ov.Term][ov.NodeID] = true
				h.leaders.samples++
				h.leaders.mu.Unlock()
			}
		}
	}()
}

func (h *harness) createConnector(addr, name, db string) {
	h.t.Helper()
	body := map[string]any{"name": name, "config": clusterapi.ConnectorConfig(h.mongo, db, h.prefix, shards)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var info struct {
		Name   string            `json:"name"`
		Config map[string]string `json:"config"`
	}
	status, err := clusterapi.Call(ctx, http.MethodPost, addr, "/connectors", body, &info)
	if err != nil || status != http.StatusCreated || info.Name != name {
		h.t.Fatalf("POST /connectors %s on %s: status %d, %+v, %v", name, addr, status, info, err)
	}
}

// TestClusterFailover runs a 3-node cluster with 2 connectors (24 tasks) under a steady
// 1,000 writes/s through everything a cluster must survive, in order: a node joining and
// leaving, kill -9 of a follower and of the leader, a clean stop of the leader, a follower and
// the leader paused (SIGSTOP) for 2 s, a node paused for longer than its session, all nodes
// restarted at once, and a rolling restart. At the end every write made after the tasks first
// ran must be on Kafka (at-least-once), no task's records may ever go back to an older owner,
// and no Raft term may have had two leaders.
func TestClusterFailover(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	suiteStart := time.Now()

	// MongoDB: the collections exist before the connectors list them.
	mc, err := mongo.Connect(options.Client().ApplyURI(h.mongo))
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last registered first: the databases are dropped before the client goes.
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	var colls []*mongo.Collection
	for _, db := range h.dbs {
		for i := range collections {
			c := mc.Database(db).Collection(fmt.Sprintf("c%d", i))
			if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "seed"}}); err != nil {
				t.Fatalf("seed %s: %v", c.Name(), err)
			}
			colls = append(colls, c)
		}
	}
	t.Cleanup(func() {
		for _, db := range h.dbs {
			_ = mc.Database(db).Drop(context.Background())
		}
	})

	for _, n := range h.nodes {
		n.start(t)
	}
	leader, took := h.leader(30 * time.Second)
	t.Logf("leader %s elected in %s", leader.id, took.Round(time.Millisecond))
	h.watchLeaders(ctx)

	// One connector through the leader, the other through a follower: the follower forwards
	// the write and answers with the leader's 201.
	var follower *node
	for _, n := range h.nodes {
		if n != leader {
			follower = n
			break
		}
	}
	h.createConnector(leader.http, h.conns[0], h.dbs[0])
	h.createConnector(follower.http, h.conns[1], h.dbs[1])
	for _, n := range h.nodes {
		clusterapi.WaitFor(t, 5*time.Second, "both connectors listed on "+n.id, func() (bool, string) {
			var names []string
			_, err := clusterapi.Call(ctx, http.MethodGet, n.http, "/connectors", nil, &names)
			slices.Sort(names)
			return err == nil && slices.Equal(names, h.conns), fmt.Sprint(names, err)
		})
	}
	ov, took := h.settled(60 * time.Second)
	t.Logf("all %d tasks RUNNING %s after the connectors were created", totalTasks, took.Round(time.Millisecond))
	h.balanced(ov, 3)

	// Traffic: a steady write load, and a consumer of every topic.
	cons := newConsumer(t, strings.Split(h.kafka, ","), h.topics)
	go cons.Run(ctx)
	w := traffic.NewWriter(colls, h.topics, writeRate)
	writeCtx, stopWriting := context.WithCancel(ctx)
	defer stopWriting()
	go w.Run(writeCtx)
	clusterapi.WaitFor(t, 30*time.Second, "a record from every task", func() (bool, string) {
		seen := cons.TasksSeen()
		return len(seen) >= totalTasks, fmt.Sprintf("%d of %d tasks seen", len(seen), totalTasks)
	})
	// Every task has committed an offset within a second of its first records; writes from
	// here on must all arrive, whatever happens to the nodes.
	time.Sleep(2 * time.Second)
	counted := w.Mark()

	t.Run("join and leave", func(t *testing.T) { h.joinAndLeave(t) })
	t.Run("kill -9 a follower", func(t *testing.T) { h.killFollower(t, cons) })
	t.Run("kill -9 the leader", func(t *testing.T) { h.killLeader(t, cons) })
	t.Run("SIGTERM the leader", func(t *testing.T) { h.stopLeader(t, cons) })
	t.Run("SIGSTOP a follower for 2 s", func(t *testing.T) { h.pauseBriefly(t, cons, false) })
	t.Run("SIGSTOP the leader for 2 s", func(t *testing.T) { h.pauseBriefly(t, cons, true) })
	t.Run("SIGSTOP a node", func(t *testing.T) { h.pauseNode(t, cons) })
	t.Run("restart every node at once", func(t *testing.T) { h.restartAll(t, cons) })
	t.Run("rolling restart", func(t *testing.T) { h.rollingRestart(t) })

	// Let the last writes through, then check them all.
	time.Sleep(2 * time.Second)
	stopWriting()
	want := w.Since(counted)
	var missing []string
	clusterapi.WaitFor(t, 60*time.Second, "every write on Kafka", func() (bool, string) {
		missing = cons.Missing(want)
		return len(missing) == 0, fmt.Sprintf("%d of %d writes missing, e.g. %v", len(missing), len(want), missing[:min(5, len(missing))])
	})
	t.Logf("at-least-once: all %d writes made after the tasks first ran are on Kafka (%d delivered more than once, %d inserts failed and were not counted, %d records consumed; the writer kept %.0f writes/s)",
		len(want), cons.Duplicates(want), w.Failures(), cons.Count(), w.Achieved())

	violations, handovers := cons.WriterOrder()
	for _, v := range violations[:min(10, len(violations))] {
		t.Errorf("writer order: %s", v)
	}
	if len(violations) > 0 {
		t.Errorf("%d records break the single-writer order", len(violations))
	}
	t.Logf("single writer: %d handovers between owners, never back to an older one", handovers)

	h.leaders.mu.Lock()
	for term, ids := range h.leaders.byTerm {
		if len(ids) > 1 {
			t.Errorf("term %d had %d leaders: %v", term, len(ids), ids)
		}
	}
	t.Logf("one leader per term: %d terms, %d samples", len(h.leaders.byTerm), h.leaders.samples)
	h.leaders.mu.Unlock()
	t.Logf("suite took %s", time.Since(suiteStart).Round(time.Second))
}

// joinAndLeave adds a 4th node (it takes at most ceil(24/4) tasks, and only those move), then
// removes it with `mongorelay worker leave` (only its tasks move, and it exits).
func (h *harness) joinAndLeave(t *testing.T) {
	before, _ := h.settled(bound)
	n4 := newNode(t, "n4", h.logDir)
	n4.args = h.args(n4, "--join", h.nodes[1].http)
	h.mu.Lock()
	h.nodes = append(h.nodes, n4)
	h.mu.Unlock()
	n4.start(t)
	joined := time.Now()
	var after clusterapi.Overview
	clusterapi.WaitFor(t, 30*time.Second, "n4 running its share of the tasks", func() (bool, string) {
		after, _ = h.settled(bound)
		return after.PerNode()["n4"] > 0, fmt.Sprint(after.PerNode())
	})
	m := moved(before.Owners(), after.Owners())
	t.Logf("n4 joined: %d tasks moved in %s, tasks per node %v", len(m), time.Since(joined).Round(time.Millisecond), after.PerNode())
	if limit := (totalTasks + 3) / 4; len(m) > limit {
		t.Errorf("adding a 4th node moved %d tasks, more than ceil(%d/4) = %d: %v", len(m), totalTasks, limit, m)
	}
	h.balanced(after, 4)

	out, err := runCLI("worker", "leave", "--node-id", "n4", "--http", h.nodes[0].http)
	if err != nil {
		t.Fatalf("mongorelay worker leave: %v: %s", err, out)
	}
	left := time.Now()
	final, _ := h.settled(bound, "n4")
	m = moved(after.Owners(), final.Owners())
	var notN4 []string
	for _, k := range m {
		if after.Owners()[k] != "n4" {
			notN4 = append(notN4, k)
		}
	}
	t.Logf("n4 left: %d tasks moved in %s", len(m), time.Since(left).Round(time.Millisecond))
	if len(notN4) > 0 {
		t.Errorf("removing n4 moved tasks it did not hold: %v", notN4)
	}
	if len(m) != after.PerNode()["n4"] {
		t.Errorf("removing n4 moved %d tasks, want the %d it held", len(m), after.PerNode()["n4"])
	}
	n4.wait(t, 15*time.Second) // it learns it was removed and exits
	if lines := n4.logLines("removed from the cluster"); len(lines) == 0 {
		t.Errorf("n4 exited without saying it was removed")
	}
	h.balanced(final, 3)
}

// killFollower kill -9s the follower holding the most tasks, waits for its tasks to run
// elsewhere, and restarts it.
func (h *harness) killFollower(t *testing.T, cons *traffic.Consumer) {
	before, _ := h.settled(bound)
	leader, _ := h.leader(bound)
	var victim *node
	for _, n := range h.running() {
		if n != leader && (victim == nil || before.PerNode()[n.id] > before.PerNode()[victim.id]) {
			victim = n
		}
	}
	h.failover(t, cons, before, victim, false)
}

// killLeader kill -9s the leader: a new one must be elected within 3 s, and all tasks run
// again within the bound.
func (h *harness) killLeader(t *testing.T, cons *traffic.Consumer) {
	before, _ := h.settled(bound)
	leader, _ := h.leader(bound)
	h.failover(t, cons, before, leader, true)
}

// stopLeader stops the leader cleanly (SIGTERM): it hands the leadership over, stops its
// tasks and tells the new leader, which moves them at once, well within the session timeout a
// dead node's tasks wait for.
func (h *harness) stopLeader(t *testing.T, cons *traffic.Consumer) {
	before, _ := h.settled(bound)
	victim, _ := h.leader(bound)
	var held []string
	for k, owner := range before.Owners() {
		if owner == victim.id {
			held = append(held, k)
		}
	}
	t0 := time.Now()
	victim.signal(t, syscall.SIGTERM)
	next, elected := h.newLeader(victim.id, 10*time.Second)
	asked := time.Now()
	_, took := h.settled(bound, victim.id)
	running := asked.Sub(t0) + took
	first := h.firstMovedRecord(cons, t0, held, victim.id)
	t.Logf("SIGTERM of leader %s (%d tasks): new leader %s after %s; all tasks RUNNING elsewhere after %s; first new record from a moved task after %s",
		victim.id, len(held), next, elected.Round(time.Millisecond), running.Round(time.Millisecond), first)
	victim.wait(t, 30*time.Second)
	if lines := victim.logLines("told the leader this node is stopping"); len(lines) == 0 {
		t.Errorf("%s did not tell the new leader it was stopping:\n%s", victim.id, strings.Join(victim.logLines("stopping"), "\n"))
	}
	// Its tasks moved on its word, not after the session timeout.
	if lines := h.nodeByID(next).linesSince("node stopping: moving its tasks", t0); len(lines) == 0 {
		t.Errorf("the new leader %s did not move the tasks of %s when it said it was stopping", next, victim.id)
	}
	victim.start(t)
	ov, took := h.settled(30 * time.Second)
	t.Logf("%s restarted: settled after %s, tasks per node %v", victim.id, took.Round(time.Millisecond), ov.PerNode())
}

func (h *harness) failover(t *testing.T, cons *traffic.Consumer, before clusterapi.Overview, victim *node, isLeader bool) {
	var held []string
	for k, owner := range before.Owners() {
		if owner == victim.id {
			held = append(held, k)
		}
	}
	t0 := time.Now()
	victim.kill9(t)
	if isLeader {
		next, took := h.newLeader(victim.id, 10*time.Second)
		t.Logf("kill -9 of leader %s: new leader %s after %s", victim.id, next, took.Round(time.Millisecond))
		if took > 3*time.Second {
			t.Errorf("new leader after %s, want within 3s", took.Round(time.Millisecond))
		}
	}
	asked := time.Now()
	_, took := h.settled(bound+5*time.Second, victim.id)
	running := asked.Sub(t0) + took
	first := h.firstMovedRecord(cons, t0, held, victim.id)
	t.Logf("kill -9 of %s (%d tasks): all tasks RUNNING elsewhere after %s; first new record from a moved task after %s",
		victim.id, len(held), running.Round(time.Millisecond), first)
	// A killed process's connections are reset: its tasks move at once, not after the
	// session timeout that a silent node is waited for.
	if running > sessionTimeout {
		t.Errorf("tasks ran elsewhere after %s, want well within the %s session timeout", running.Round(time.Millisecond), sessionTimeout)
	}
	leader, _ := h.leader(bound)
	if lines := leader.linesSince("node gone: its connection to the leader was refused or reset", t0); len(lines) == 0 {
		t.Errorf("the leader %s did not see the connection of %s reset", leader.id, victim.id)
	}
	victim.start(t)
	ov, took := h.settled(30 * time.Second)
	t.Logf("%s restarted: settled after %s, tasks per node %v", victim.id, took.Round(time.Millisecond), ov.PerNode())
}

// firstMovedRecord waits for the first record written after t0 by a new owner of a task that
// victim held, and says how long after t0 it came.
func (h *harness) firstMovedRecord(cons *traffic.Consumer, t0 time.Time, held []string, victim string) string {
	tasks := map[string]bool{}
	for _, k := range held {
		topic, shard := h.taskOf(k)
		tasks[topic+"#"+shard] = true
	}
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		r, ok := cons.FirstAfter(t0, func(r traffic.Record) bool {
			return tasks[r.Topic+"#"+r.Shard] && !strings.HasPrefix(r.Writer, victim+"/")
		})
		if ok {
			return fmt.Sprintf("%s (%s %s by %s)", r.At.Sub(t0).Round(time.Millisecond), r.Topic, r.Shard, r.Writer)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "none within the bound"
}

// pauseNode SIGSTOPs the follower holding the most tasks for 15 s: its tasks move; on SIGCONT
// it stops its own tasks within the lease and rejoins.
func (h *harness) pauseNode(t *testing.T, cons *traffic.Consumer) {
	before, _ := h.settled(bound)
	leader, _ := h.leader(bound)
	var victim *node
	for _, n := range h.running() {
		if n != leader && (victim == nil || before.PerNode()[n.id] > before.PerNode()[victim.id]) {
			victim = n
		}
	}
	var held []string
	for k, owner := range before.Owners() {
		if owner == victim.id {
			held = append(held, k)
		}
	}
	t0 := time.Now()
	victim.signal(t, syscall.SIGSTOP)
	resumed := false
	defer func() {
		if !resumed {
			victim.signal(t, syscall.SIGCONT)
		}
	}()
	asked := time.Now()
	_, took := h.settled(bound+5*time.Second, victim.id)
	running := asked.Sub(t0) + took
	first := h.firstMovedRecord(cons, t0, held, victim.id)
	t.Logf("SIGSTOP of %s (%d tasks): all tasks RUNNING elsewhere after %s; first new record from a moved task after %s",
		victim.id, len(held), running.Round(time.Millisecond), first)
	if running > bound {
		t.Errorf("tasks ran elsewhere after %s, want within %s", running.Round(time.Millisecond), bound)
	}
	time.Sleep(time.Until(t0.Add(15 * time.Second)))
	tc := time.Now()
	victim.signal(t, syscall.SIGCONT)
	resumed = true
	// A stopped process logs nothing, so any such line after SIGSTOP came after SIGCONT (log
	// times are cut to the millisecond: compare with the SIGSTOP time, not SIGCONT's).
	var stoppedAt time.Time
	clusterapi.WaitFor(t, lease, victim.id+" stopping its tasks after SIGCONT", func() (bool, string) {
		for _, l := range append(victim.logLines("fenced: "), victim.logLines("stopping task")...) {
			if at, ok := logTime(l); ok && at.After(t0.Add(time.Second)) {
				stoppedAt = at
				return true, ""
			}
		}
		return false, "no fencing or stopping line since SIGCONT"
	})
	t.Logf("%s stopped its tasks %s after SIGCONT (fenced: %d lines)", victim.id,
		max(0, stoppedAt.Sub(tc)).Round(time.Millisecond), len(victim.logLines("fenced: ")))
	ov, took := h.settled(30 * time.Second)
	t.Logf("%s resumed: back in the cluster with %d tasks after %s", victim.id, ov.PerNode()[victim.id], took.Round(time.Millisecond))
	if ov.PerNode()[victim.id] == 0 {
		t.Errorf("%s got no task back after rejoining", victim.id)
	}
}

// pauseBriefly SIGSTOPs for 2 s under load, as a long GC pause would, the follower holding the
// most tasks, or the leader (the others elect a new one meanwhile): nothing moves, the node does
// not fence itself, and its tasks go on writing.
func (h *harness) pauseBriefly(t *testing.T, cons *traffic.Consumer, ofLeader bool) {
	before := h.settledEvenly(bound)
	leader, _ := h.leader(bound)
	victim := leader
	if !ofLeader {
		victim = nil
		for _, n := range h.running() {
			if n != leader && (victim == nil || before.PerNode()[n.id] > before.PerNode()[victim.id]) {
				victim = n
			}
		}
	}
	// The pause is of a node at work: its tasks write before it. A node restarted by the
	// subtest before may still be starting them; how long that took is worth seeing.
	writing := time.Now()
	took := clusterapi.WaitFor(t, bound, victim.id+" writing before the pause", func() (bool, string) {
		_, ok := cons.FirstAfter(writing, func(r traffic.Record) bool { return strings.HasPrefix(r.Writer, victim.id+"/") })
		return ok, "no record from " + victim.id + " since its tasks settled"
	})
	if took > 3*time.Second {
		t.Logf("%s wrote its first record %s after its tasks settled", victim.id, took.Round(time.Millisecond))
	}
	t0 := time.Now()
	victim.signal(t, syscall.SIGSTOP)
	time.Sleep(2 * time.Second)
	tc := time.Now()
	victim.signal(t, syscall.SIGCONT)
	// Past the session timeout from the pause, a leader would have moved them by now.
	time.Sleep(time.Until(t0.Add(sessionTimeout + time.Second)))
	after, _ := h.settled(bound)
	if c := changed(before, after); len(c) > 0 {
		t.Errorf("a 2 s pause of %s moved %d tasks: %v", victim.id, len(c), c)
	}
	for _, n := range h.running() {
		for _, what := range []string{"node declared dead", "node gone"} {
			if lines := n.linesSince(what, t0); len(lines) > 0 {
				t.Errorf("%s after a 2 s pause of %s:\n%s", n.id, victim.id, strings.Join(lines, "\n"))
			}
		}
	}
	if lines := victim.linesSince("fenced: ", t0); len(lines) > 0 {
		t.Errorf("%s fenced itself after a 2 s pause:\n%s", victim.id, strings.Join(lines, "\n"))
	}
	r, ok := cons.FirstAfter(tc, func(r traffic.Record) bool { return strings.HasPrefix(r.Writer, victim.id+"/") })
	if !ok {
		t.Errorf("no record from %s since SIGCONT", victim.id)
		return
	}
	role := ""
	if ofLeader {
		role = "leader "
	}
	now, _ := h.leader(bound)
	t.Logf("SIGSTOP of %s%s for 2 s (%d tasks): no task moved; its first record %s after SIGCONT; leader now %s", role, victim.id,
		before.PerNode()[victim.id], r.At.Sub(tc).Round(time.Millisecond), now.id)
}

// changed lists the tasks whose owner or epoch differs between two overviews: a task that
// moved away and back has a new epoch.
func changed(before, after clusterapi.Overview) []string {
	type owner struct {
		node  string
		epoch uint64
	}
	was := map[string]owner{}
	for _, a := range before.Assignments {
		was[a.Connector+"/"+a.Task] = owner{a.Node, a.Epoch}
	}
	var out []string
	for _, a := range after.Assignments {
		k := a.Connector + "/" + a.Task
		if b := was[k]; b != (owner{a.Node, a.Epoch}) {
			out = append(out, fmt.Sprintf("%s %s@%d -> %s@%d", k, b.node, b.epoch, a.Node, a.Epoch))
		}
	}
	return out
}

// rollingRestart restarts the nodes one after another, followers first and the leader last, as
// an upgrade does. They run with worker.rebalance.delay (restartAll gave it to them), so each
// one's tasks wait for it to come back: no task moves at all.
func (h *harness) rollingRestart(t *testing.T) {
	before, _ := h.settled(bound)
	leader, _ := h.leader(bound)
	nodes := h.running()
	slices.SortFunc(nodes, func(a, b *node) int {
		return cmp.Compare(boolInt(a == leader), boolInt(b == leader))
	})
	for _, n := range nodes {
		t0 := time.Now()
		n.stop(t, 45*time.Second)
		if lines := n.linesSince("told the leader this node is stopping to restart", t0); len(lines) == 0 {
			t.Errorf("%s did not tell the leader it was restarting:\n%s", n.id, strings.Join(n.linesSince("stopping", t0), "\n"))
		}
		n.start(t)
		ov, _ := h.settled(45 * time.Second)
		t.Logf("%s restarted: every task RUNNING again %s after its SIGTERM", n.id, time.Since(t0).Round(time.Millisecond))
		if c := changed(before, ov); len(c) > 0 {
			t.Fatalf("restarting %s moved %d tasks: %v", n.id, len(c), c)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// restartAll stops every node at once (SIGTERM) and starts them again: the connectors come
// back, the assignments converge and streaming resumes from the committed offsets. The nodes
// come back with worker.rebalance.delay, for the rolling restart that follows.
func (h *harness) restartAll(t *testing.T, cons *traffic.Consumer) {
	before, _ := h.settled(bound)
	nodes := h.running()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() { n.stop(t, 45*time.Second) })
	}
	wg.Wait()
	stopped := time.Now()
	// Nothing writes now: once the consumer has caught up, any record past these offsets is
	// from the restarted nodes.
	time.Sleep(time.Second)
	ends := cons.Ends()
	for _, n := range nodes {
		n.env = append(n.env, "MONGORELAY_WORKER_REBALANCE_DELAY="+rebalanceDelay.String())
		n.start(t)
	}
	started := time.Now()
	leader, took := h.leader(30 * time.Second)
	t.Logf("all %d nodes restarted: leader %s after %s", len(nodes), leader.id, took.Round(time.Millisecond))
	var names []string
	if _, err := clusterapi.Call(context.Background(), http.MethodGet, leader.http, "/connectors", nil, &names); err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	if !slices.Equal(names, h.conns) {
		t.Errorf("connectors after the restart: %v, want %v", names, h.conns)
	}
	ov, took := h.settled(45 * time.Second)
	m := moved(before.Owners(), ov.Owners())
	t.Logf("after the restart every task RUNNING in %s (%s after the stop); %d tasks changed node; tasks per node %v",
		took.Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond), len(m), ov.PerNode())
	h.balanced(ov, len(nodes))
	var r traffic.Record
	clusterapi.WaitFor(t, bound, "a record after the restart", func() (bool, string) {
		var ok bool
		r, ok = cons.FirstAfter(stopped, func(r traffic.Record) bool { return r.Offset >= ends[r.Topic+"/"+fmt.Sprint(r.Partition)] })
		return ok, ""
	})
	t.Logf("streaming resumed: first record %s after the nodes were started again (%s)", r.At.Sub(started).Round(time.Millisecond), r.Writer)
}

// logTime reads the time= field of a log line.
func logTime(line string) (time.Time, bool) {
	_, rest, ok := strings.Cut(line, "time=")
	if !ok {
		return time.Time{}, false
	}
	ts, _, _ := strings.Cut(rest, " ")
	at, err := time.Parse(time.RFC3339Nano, ts)
	return at, err == nil
}

// runCLI runs the mongorelay binary with args and returns its output.
func runCLI(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, mongorelayBin, args...).CombinedOutput()
	return string(out), err
}
