//go:build e2e

package contract

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mongorelay/mongorelay/e2e/internal/clusterapi"
	"github.com/mongorelay/mongorelay/internal/testenv"
)

// proc is one mongorelay process, killed when the test ends.
type proc struct {
	id      string
	http    string // host:port of its REST API
	dataDir string
}

// freeAddrs returns n loopback addresses free at the time of the call.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		out = append(out, ln.Addr().String())
	}
	return out
}

// logDir is where the processes of test t log, kept after the run for a failure's
// post-mortem and replaced by the next run of the test. A failed test also shows the end of
// each log, which outlives the next run.
func logDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", ".cache", "test-logs", "e2e-contract", strings.ReplaceAll(t.Name(), "/", "_"))
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		for _, l := range logs {
			data, _ := os.ReadFile(l)
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			t.Logf("%s, last lines:\n%s", filepath.Base(l), strings.Join(lines[max(0, len(lines)-15):], "\n"))
		}
		t.Logf("process logs kept in %s", dir)
	})
	return dir
}

// start runs `mongorelay <args...>` with its output in logDir/<id>.log; the process dies with
// the test (or the test binary).
func start(t *testing.T, logs, id string, args ...string) {
	t.Helper()
	logf, err := os.Create(filepath.Join(logs, id+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mongorelayBin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", id, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
}

// startCluster starts a 3-node cluster named after run, with extra flags on every node, and
// returns its nodes once they agree on a leader, the leader first.
func startCluster(t *testing.T, run string, extra ...string) []proc {
	t.Helper()
	logs := logDir(t)
	kafka := testenv.Kafka(t)
	var nodes []proc
	var peers []string
	raft := map[string][]string{}
	all := freeAddrs(t, 9) // at once, so that no two are the same
	for i := 1; i <= 3; i++ {
		addrs := all[3*(i-1) : 3*i]
		n := proc{id: fmt.Sprintf("n%d", i), http: addrs[0], dataDir: filepath.Join(t.TempDir(), "data")}
		raft[n.id] = addrs[1:]
		peers = append(peers, n.id+"="+addrs[1]+"="+n.http)
		nodes = append(nodes, n)
	}
	clusterID := "contract-" + run
	for i, n := range nodes {
		args := append([]string{"worker", "--node-id", n.id, "--data-dir", n.dataDir, "--cluster-id", clusterID,
			"--http-listen", n.http, "--raft-listen", raft[n.id][0], "--registry-listen", raft[n.id][1],
			"--kafka", kafka, "--offsets-topic", clusterID + "-offsets", "--peers", strings.Join(peers, ",")}, extra...)
		if i == 0 {
			args = append(args, "--bootstrap")
		}
		start(t, logs, n.id, args...)
	}
	var leader string
	clusterapi.WaitFor(t, 60*time.Second, "a leader all three nodes agree on", func() (bool, string) {
		seen := map[string]bool{}
		for _, n := range nodes {
			ov, err := clusterapi.GetOverview(n.http)
			if err != nil {
				return false, err.Error()
			}
			seen[ov.Leader] = true
			if ov.Leader == n.id && ov.RaftState == "Leader" {
				leader = n.id
			}
		}
		return len(seen) == 1 && leader != "" && seen[leader], fmt.Sprintf("leaders seen: %v", seen)
	})
	for i, n := range nodes {
		if n.id == leader {
			nodes[0], nodes[i] = nodes[i], nodes[0]
		}
	}
	waitReady(t, nodes...)
	return nodes
}

// startStandalone starts `mongorelay standalone` with the connector file connector (which
// it needs at least one of) and returns it once it is ready.
func startStandalone(t *testing.T, run, connector string) proc {
	t.Helper()
	file := filepath.Join(t.TempDir(), "connector.json")
	if err := os.WriteFile(file, []byte(connector), 0o600); err != nil {
		t.Fatal(err)
	}
	addrs := freeAddrs(t, 2)
	p := proc{id: "standalone", http: addrs[0]}
	start(t, logDir(t), p.id, "standalone", "--kafka", testenv.Kafka(t), "--http-listen", addrs[0],
		"--registry-listen", addrs[1], "--offsets-topic", "contract-"+run+"-offsets", file)
	waitReady(t, p)
	return p
}

// waitReady waits until every process answers /readyz with 200.
func waitReady(t *testing.T, procs ...proc) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	for _, p := range procs {
		clusterapi.WaitFor(t, 60*time.Second, p.id+" ready", func() (bool, string) {
			resp, err := client.Get("http://" + p.http + "/readyz")
			if err != nil {
				return false, err.Error()
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, resp.Status
		})
	}
}
