//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mongorelay/mongorelay/e2e/internal/clusterapi"
	"github.com/mongorelay/mongorelay/internal/proc"
	"github.com/mongorelay/mongorelay/internal/testservers"
)

// node is one `mongorelay worker` process, restarted with the same flags, data dir and ports;
// each run logs to <logs>/<id>.<run>.log.
type node struct {
	id, http, raft, registry, dataDir string
	args                              []string

	runs   int
	p      *proc.Proc
	paused bool
}

// cluster is the 3 voters the faults are injected into. Every method is safe for concurrent
// use: the fault schedule changes the nodes while the test polls them.
type cluster struct {
	reg    *proc.Registry
	bin    string
	logDir string

	mu    sync.Mutex
	nodes []*node
}

// newCluster prepares the cluster id of size nodes, named <name>1 and on (the first
// bootstraps with the static peer list), without starting them.
func newCluster(reg *proc.Registry, bin, work, kafka, id, name string, size int) (*cluster, error) {
	c := &cluster{reg: reg, bin: bin, logDir: filepath.Join(work, "nodes")}
	var peers []string
	for i := 1; i <= size; i++ {
		n := &node{id: fmt.Sprintf("%s%d", name, i), dataDir: filepath.Join(work, "nodes", fmt.Sprintf("%s%d", name, i))}
		for _, addr := range []*string{&n.http, &n.raft, &n.registry} {
			port, err := testservers.FreePort()
			if err != nil {
				return nil, err
			}
			*addr = fmt.Sprintf("127.0.0.1:%d", port)
		}
		peers = append(peers, n.id+"="+n.raft+"="+n.http)
		c.nodes = append(c.nodes, n)
	}
	for i, n := range c.nodes {
		n.args = []string{"worker",
			"--node-id", n.id, "--data-dir", n.dataDir, "--cluster-id", id,
			"--http-listen", n.http, "--raft-listen", n.raft, "--registry-listen", n.registry,
			"--kafka", kafka, "--offsets-topic", id + "-offsets", "--peers", strings.Join(peers, ","),
		}
		if i == 0 {
			n.args = append(n.args, "--bootstrap")
		}
	}
	return c, nil
}

// start runs n's process; it does not wait for it to be ready.
func (c *cluster) start(n *node) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n.runs++
	p, err := c.reg.Start(n.id, filepath.Join(c.logDir, fmt.Sprintf("%s.%d.log", n.id, n.runs)), proc.Options{},
		append([]string{c.bin}, n.args...)...)
	if err != nil {
		return err
	}
	n.p, n.paused = p, false
	return nil
}

// kill9 kills n at once, as kill -9 does, and waits for it to be gone.
func (c *cluster) kill9(n *node) error {
	c.mu.Lock()
	p := n.p
	c.mu.Unlock()
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-p.Done():
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s still runs 10 s after SIGKILL", n.id)
	}
}

// pause sends SIGSTOP (stop true) or SIGCONT to n.
func (c *cluster) pause(n *node, stop bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	sig := syscall.SIGCONT
	if stop {
		sig = syscall.SIGSTOP
	}
	if err := n.p.Signal(sig); err != nil {
		return err
	}
	n.paused = stop
	return nil
}

// live returns the nodes that run and are not paused: the ones that answer.
func (c *cluster) live() []*node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*node
	for _, n := range c.nodes {
		if n.p != nil && !n.p.Exited() && !n.paused {
			out = append(out, n)
		}
	}
	return out
}

// registryURLs lists every node's schema registry: the client moves on from one it cannot
// reach.
func (c *cluster) registryURLs() string {
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, "http://"+n.registry)
	}
	return strings.Join(urls, ",")
}

// view returns the leader the live nodes agree on (one that says it leads) and its overview,
// or an error saying what they said.
func (c *cluster) view() (*node, clusterapi.Overview, error) {
	leaders := map[string]bool{}
	var leader *node
	var ov clusterapi.Overview
	for _, n := range c.live() {
		o, err := clusterapi.QuickOverview(n.http)
		if err != nil {
			return nil, ov, err
		}
		leaders[o.Leader] = true
		if o.Leader == n.id && o.RaftState == "Leader" {
			leader, ov = n, o
		}
	}
	if len(leaders) != 1 || leader == nil {
		return nil, ov, fmt.Errorf("leaders seen: %v", leaders)
	}
	return leader, ov, nil
}

// settled waits until every task of conns runs on a live node, as the leader says, and
// returns the assignments.
func (c *cluster) settled(ctx context.Context, conns []string, tasks int, timeout time.Duration) (clusterapi.Overview, error) {
	deadline := time.Now().Add(timeout)
	for {
		ov, why := c.allRunning(conns, tasks)
		if why == "" {
			return ov, nil
		}
		if time.Now().After(deadline) {
			return ov, fmt.Errorf("not every task RUNNING within %s: %s", timeout, why)
		}
		select {
		case <-ctx.Done():
			return ov, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// allRunning says why not every task of conns runs on a live node ("" when they do).
func (c *cluster) allRunning(conns []string, tasks int) (clusterapi.Overview, string) {
	ov, sts, err := c.statuses(conns)
	if err != nil {
		return ov, err.Error()
	}
	alive := map[string]bool{}
	for _, n := range c.live() {
		alive[n.id] = true
	}
	running := 0
	for _, st := range sts {
		for _, task := range st.Tasks {
			if task.State != "RUNNING" || !alive[task.WorkerID] {
				return ov, fmt.Sprintf("%s task %d is %s on %q %s", st.Name, task.ID, task.State, task.WorkerID, task.Trace)
			}
			running++
		}
	}
	if running != tasks {
		return ov, fmt.Sprintf("%d of %d tasks", running, tasks)
	}
	return ov, ""
}

// statuses returns the leader's overview and its status of each connector of conns.
func (c *cluster) statuses(conns []string) (clusterapi.Overview, []clusterapi.ConnectorStatus, error) {
	leader, ov, err := c.view()
	if err != nil {
		return ov, nil, err
	}
	var out []clusterapi.ConnectorStatus
	for _, name := range conns {
		st, err := clusterapi.GetStatus(leader.http, name)
		if err != nil {
			return ov, nil, err
		}
		out = append(out, st)
	}
	return ov, out, nil
}

// createConnector posts a connector through the node at addr (a follower forwards it).
func createConnector(ctx context.Context, addr, name string, config map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	status, err := clusterapi.Call(ctx, http.MethodPost, addr, "/connectors", map[string]any{"name": name, "config": config}, nil)
	if err == nil && status != http.StatusCreated {
		err = fmt.Errorf("POST /connectors %s: HTTP %d", name, status)
	}
	return err
}
