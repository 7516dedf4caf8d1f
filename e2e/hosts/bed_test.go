//go:build e2e

package hosts

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/e2e/internal/clusterapi"
	"github.com/mongorelay/mongorelay/e2e/internal/netns"
	"github.com/mongorelay/mongorelay/e2e/internal/traffic"
	"github.com/mongorelay/mongorelay/internal/proc"
	"github.com/mongorelay/mongorelay/internal/testservers"
)

// The shape of the cluster: one connector, 2 collections × 3 shards = 6 tasks on 3 nodes.
const (
	connector   = "hosts"
	db          = "hosts"
	collections = 2
	shards      = 3
	totalTasks  = collections * shards
	writeRate   = 1000 // documents per second, over both collections
	// lease and sessionTimeout are worker.lease and worker.session.timeout (the defaults).
	lease          = coordinator.DefaultLease
	sessionTimeout = coordinator.DefaultSessionTimeout
	// fenceSlack is how late after worker.lease a cut-off node may log that it fenced itself:
	// it counts the lease from its last contact with the leader (a leader: from when Raft last
	// saw a quorum, which it learns when it steps down) and checks every 100 ms. The majority
	// elects a leader no sooner than Raft's heartbeat timeout (500 ms) after the cut, which then
	// waits worker.lease before it moves a silent node's tasks: a fence within this slack still
	// comes first.
	fenceSlack = 750 * time.Millisecond
	// bound is the failover bound the cluster suite holds every step to: a task is never
	// without a running owner for longer.
	bound = 15 * time.Second
)

// bed is what the test stands on: the network, the servers on its bridge, the nodes in its
// namespaces, the captured collections and a consumer of every topic.
type bed struct {
	t      *testing.T
	lab    *netns.Lab
	reg    *proc.Registry
	srv    *testservers.Servers
	logDir string
	nodes  []*node
	colls  []*mongo.Collection
	topics []string
	cons   *traffic.Consumer
	w      *traffic.Writer
	mark   int // the writer's acknowledged count once every task streamed: all later writes must arrive
}

// node is one worker process in its namespace, restartable with the same flags and data dir.
// Each start logs to a file of its own, <id>.<start>.log.
type node struct {
	id      string
	host    *netns.Host
	http    string
	raft    string
	dataDir string
	args    []string
	logDir  string
	starts  int
	p       *proc.Proc
}

// newBed builds the network, starts the servers and the nodes and the connector, and
// streams: it returns once every task has written a record and committed an offset, with the
// writer going at writeRate.
func newBed(ctx context.Context, t *testing.T) *bed {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	skipUnlessCI := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	for _, f := range []string{".cache/kafka/libs", ".cache/mongo-standin/mongo-standin.jar"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			skipUnlessCI("the multi-host test needs Kafka and the MongoDB stand-in that deploy/local/env.sh up installs: %v", err)
		}
	}
	b := &bed{t: t}
	b.lab, err = netns.New(ctx, 3)
	if errors.Is(err, netns.ErrNotPermitted) {
		skipUnlessCI("the multi-host test needs Linux network namespaces (run it as root): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last registered first: the processes stop before their network goes.
	t.Cleanup(func() {
		if err := b.lab.Close(); err != nil {
			t.Errorf("delete the test's network: %v", err)
		}
	})
	t.Logf("network: bridge at %s, hosts %s, %s, %s", b.lab.HostAddr, b.lab.Hosts[0].Addr, b.lab.Hosts[1].Addr, b.lab.Hosts[2].Addr)

	// Each run keeps its logs and its servers' data in a directory named after its lab, until a
	// later run finds that lab gone and removes it: runs side by side keep theirs.
	logs := filepath.Join(root, ".cache", "test-logs", "e2e-hosts")
	if err := removeFinishedRuns(logs); err != nil {
		t.Fatal(err)
	}
	b.logDir = filepath.Join(logs, b.lab.Tag)
	if err := os.MkdirAll(b.logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("logs in %s", b.logDir)
	b.reg = proc.NewRegistry("")
	t.Cleanup(func() { b.reg.StopAll(5 * time.Second) })
	start := time.Now()
	b.srv, err = testservers.Start(ctx, testservers.Config{Root: root, Work: filepath.Join(b.logDir, "servers"),
		KafkaHeap: "512m", StandinHeap: "1g", OplogEntries: 1_000_000, Host: b.lab.HostAddr, Logf: t.Logf}, b.reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Kafka on %s and the stand-in on %s after %s", b.srv.KafkaAddr, b.srv.MongoAddr, time.Since(start).Round(time.Millisecond))

	mc, err := mongo.Connect(options.Client().ApplyURI(b.srv.MongoURI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	for i := range collections {
		c := mc.Database(db).Collection(fmt.Sprintf("c%d", i))
		if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "seed"}}); err != nil {
			t.Fatalf("seed %s: %v", c.Name(), err)
		}
		b.colls = append(b.colls, c)
		b.topics = append(b.topics, fmt.Sprintf("%s.%s.c%d", connector, db, i))
	}

	var peers []string
	for i, h := range b.lab.Hosts {
		n := &node{id: fmt.Sprintf("n%d", i+1), host: h, http: net.JoinHostPort(h.Addr, "8083"), raft: net.JoinHostPort(h.Addr, "8300"),
			dataDir: t.TempDir(), logDir: b.logDir}
		peers = append(peers, n.id+"="+n.raft+"="+n.http)
		b.nodes = append(b.nodes, n)
	}
	for i, n := range b.nodes {
		n.args = []string{"--node-id", n.id, "--data-dir", n.dataDir, "--cluster-id", "hosts",
			"--http-listen", n.http, "--raft-listen", n.raft,
			"--http-auth-insecure", "--kafka", b.srv.KafkaAddr, "--peers", strings.Join(peers, ",")}
		if i == 0 {
			n.args = append(n.args, "--bootstrap")
		}
		b.start(n)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node and server logs kept in %s", b.logDir)
		}
	})
	leader := b.leader(60*time.Second, b.nodes...)
	t.Logf("leader %s elected, %s after the start", leader.id, time.Since(start).Round(time.Millisecond))

	config := clusterapi.ConnectorConfig(b.srv.MongoURI, db, connector, shards)
	config["shard.filter"] = "client" // the stand-in lacks $toHashedIndexKey
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := clusterapi.Call(cctx, http.MethodPost, leader.http, "/connectors", map[string]any{"name": connector, "config": config}, nil); err != nil {
		t.Fatal(err)
	}
	b.settled(60*time.Second, b.nodes, nil)

	if b.cons, err = traffic.NewConsumer([]string{b.srv.KafkaAddr}, b.topics); err != nil {
		t.Fatal(err)
	}
	consCtx, stopCons := context.WithCancel(ctx)
	t.Cleanup(stopCons)
	go b.cons.Run(consCtx)
	b.w = traffic.NewWriter(b.colls, b.topics, writeRate)
	writeCtx, stopWriting := context.WithCancel(ctx)
	t.Cleanup(stopWriting)
	go b.w.Run(writeCtx)
	clusterapi.WaitFor(t, 60*time.Second, "a record from every task", func() (bool, string) {
		seen := b.cons.TasksSeen()
		return len(seen) >= totalTasks, fmt.Sprintf("%d of %d tasks seen", len(seen), totalTasks)
	})
	// Every task commits an offset within a second of its first records (heartbeat.interval.ms
	// is 1000): every write acknowledged from here on must arrive, whatever the network does.
	time.Sleep(2 * time.Second)
	b.mark = b.w.Mark()
	t.Logf("streaming %d tasks at %d writes/s, %s after the start", totalTasks, writeRate, time.Since(start).Round(time.Millisecond))
	return b
}

// removeFinishedRuns removes the directories under logs of runs whose network is gone.
func removeFinishedRuns(logs string) error {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return fmt.Errorf("list network namespaces: %w", err)
	}
	entries, err := os.ReadDir(logs)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if !strings.Contains(string(out), e.Name()+"-") {
			if err := os.RemoveAll(filepath.Join(logs, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// start starts n's process in its namespace.
func (b *bed) start(n *node) {
	b.t.Helper()
	n.starts++
	argv := n.host.Command(append([]string{mongorelayBin, "worker"}, n.args...)...)
	var err error
	if n.p, err = b.reg.Start(n.id, n.logPath(), proc.Options{}, argv...); err != nil {
		b.t.Fatal(err)
	}
}

func (n *node) logPath() string {
	return filepath.Join(n.logDir, fmt.Sprintf("%s.%d.log", n.id, n.starts))
}

func (n *node) running() bool { return n.p != nil && !n.p.Exited() }

// logLines returns the lines of the node's current log that contain substr.
func (n *node) logLines(substr string) []string {
	f, err := os.Open(n.logPath())
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), substr) {
			out = append(out, sc.Text())
		}
	}
	return out
}

// loggedAfter returns the time of the first line of the node's log after t0 that contains
// substr.
func (n *node) loggedAfter(t0 time.Time, substr string) (time.Time, bool) {
	for _, l := range n.logLines(substr) {
		if at, ok := logTime(l); ok && at.After(t0) {
			return at, true
		}
	}
	return time.Time{}, false
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

// others returns the nodes other than n.
func (b *bed) others(n *node) []*node {
	var out []*node
	for _, o := range b.nodes {
		if o != n {
			out = append(out, o)
		}
	}
	return out
}

func ids(nodes []*node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.id)
	}
	return out
}

// leader waits until every node of among names one leader, itself among them and saying it
// leads.
func (b *bed) leader(timeout time.Duration, among ...*node) *node {
	b.t.Helper()
	var leader *node
	clusterapi.WaitFor(b.t, timeout, "a leader that "+strings.Join(ids(among), ", ")+" agree on", func() (bool, string) {
		seen := map[string]bool{}
		leader = nil
		for _, n := range among {
			ov, err := clusterapi.QuickOverview(n.http)
			if err != nil {
				return false, err.Error()
			}
			seen[ov.Leader] = true
			if ov.Leader == n.id && ov.RaftState == "Leader" {
				leader = n
			}
		}
		return len(seen) == 1 && leader != nil, fmt.Sprintf("leaders seen: %v", seen)
	})
	return leader
}

// settled waits until, as the nodes of among see it, every task runs on one of them, all (when
// not nil) holds of the assignments, and they have not changed for a second. It returns how
// long it took until they were first seen so.
func (b *bed) settled(timeout time.Duration, among []*node, all func(clusterapi.Overview) (bool, string)) time.Duration {
	b.t.Helper()
	start := time.Now()
	var last map[string]string
	var stableSince time.Time
	clusterapi.WaitFor(b.t, timeout, "every task RUNNING on "+strings.Join(ids(among), ", "), func() (bool, string) {
		ov, ok, why := b.allRunning(among)
		if ok && all != nil {
			ok, why = all(ov)
		}
		if !ok {
			last = nil
			return false, why
		}
		if owners := ov.Owners(); !sameOwners(owners, last) {
			last, stableSince = owners, time.Now()
			return false, "assignments just changed"
		}
		return time.Since(stableSince) >= time.Second, "settling"
	})
	return stableSince.Sub(start)
}

// allRunning reports whether, as the first node of among that answers sees it, every task is
// RUNNING on a node of among.
func (b *bed) allRunning(among []*node) (clusterapi.Overview, bool, string) {
	allowed := map[string]bool{}
	for _, n := range among {
		allowed[n.id] = true
	}
	var errs []string
	for _, n := range among {
		ov, err := clusterapi.QuickOverview(n.http)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		st, err := quickStatus(n.http)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if len(st.Tasks) != totalTasks {
			return ov, false, fmt.Sprintf("%d tasks", len(st.Tasks))
		}
		for _, task := range st.Tasks {
			if task.State != "RUNNING" || !allowed[task.WorkerID] {
				return ov, false, fmt.Sprintf("task %d is %s on %q %s", task.ID, task.State, task.WorkerID, task.Trace)
			}
		}
		if len(ov.Owners()) != totalTasks {
			return ov, false, fmt.Sprintf("%d assignments", len(ov.Owners()))
		}
		return ov, true, ""
	}
	return clusterapi.Overview{}, false, strings.Join(errs, "; ")
}

// quickStatus is GET /connectors/{connector}/status with a short timeout, for sampling.
func quickStatus(addr string) (clusterapi.ConnectorStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var st clusterapi.ConnectorStatus
	_, err := clusterapi.Call(ctx, http.MethodGet, addr, "/connectors/"+connector+"/status", nil, &st)
	return st, err
}

func sameOwners(a, b map[string]string) bool {
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

// holding returns a condition that n holds at least one task.
func holding(n *node) func(clusterapi.Overview) (bool, string) {
	return func(ov clusterapi.Overview) (bool, string) {
		return ov.PerNode()[n.id] > 0, fmt.Sprintf("tasks per node %v", ov.PerNode())
	}
}

// delivered waits until every write acknowledged since the mark is on Kafka, and fails the
// test with what is missing if they are not there within timeout.
func (b *bed) delivered(t *testing.T, timeout time.Duration) {
	t.Helper()
	want := b.w.Since(b.mark)
	var missing []string
	took := clusterapi.WaitFor(t, timeout, "every write on Kafka", func() (bool, string) {
		missing = b.cons.Missing(want)
		return len(missing) == 0, fmt.Sprintf("%d of %d writes missing, e.g. %v", len(missing), len(want), missing[:min(5, len(missing))])
	})
	t.Logf("lost 0: all %d writes acknowledged since the tasks first streamed are on Kafka (%s to catch up; %d delivered more than once, %d inserts failed and were not counted)",
		len(want), took.Round(time.Millisecond), b.cons.Duplicates(want), b.w.Failures())
}

// summary collects the measured figures of every step, for one list at the end.
type summary struct {
	lines []string
}

func (s *summary) add(format string, args ...any) {
	s.lines = append(s.lines, fmt.Sprintf(format, args...))
}
