//go:build e2e

package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// node is one `mongorelay worker` process, restartable with the same flags, data dir and
// ports. Its stderr goes to <logs>/<id>.log, appended across restarts.
type node struct {
	id       string
	http     string // host:port of the REST API
	raft     string
	registry string
	dataDir  string
	logPath  string
	args     []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
	err  error         // its exit status
}

// freePorts returns n loopback addresses free at the time of the call, from :0 listeners.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

func newNode(t *testing.T, id, logDir string) *node {
	ports := freePorts(t, 3)
	return &node{
		id: id, http: ports[0], raft: ports[1], registry: ports[2],
		dataDir: filepath.Join(t.TempDir(), id),
		logPath: filepath.Join(logDir, id+".log"),
	}
}

// start runs the process; it does not wait for it to be ready.
func (n *node) start(t *testing.T) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "===== %s start %s\n", time.Now().Format(time.RFC3339Nano), n.id)
	cmd := exec.Command(mongorelayBin, append([]string{"worker"}, n.args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The process dies with the test binary, whatever happens to it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", n.id, err)
	}
	done := make(chan struct{})
	n.cmd, n.done = cmd, done
	go func() {
		err := cmd.Wait()
		logf.Close()
		n.mu.Lock()
		n.err = err
		n.mu.Unlock()
		close(done)
	}()
}

func (n *node) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	if cmd == nil {
		t.Fatalf("%s is not running", n.id)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to %s: %v", sig, n.id, err)
	}
}

// kill9 kills the process at once, as kill -9 does, and waits for it to be gone.
func (n *node) kill9(t *testing.T) {
	t.Helper()
	n.signal(t, syscall.SIGKILL)
	n.wait(t, 10*time.Second)
}

// stop asks the process to stop (SIGTERM) and waits for its exit.
func (n *node) stop(t *testing.T, timeout time.Duration) {
	t.Helper()
	n.signal(t, syscall.SIGTERM)
	n.wait(t, timeout)
}

func (n *node) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	select {
	case <-done:
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s", n.id, timeout)
	}
}

func (n *node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// cleanup kills the process if it still runs (and resumes it first if it was stopped).
func (n *node) cleanup() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Kill()
	<-done
}

// logLines returns the lines of the node's log that contain substr.
func (n *node) logLines(substr string) []string {
	f, err := os.Open(n.logPath)
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

// rest is a small client of the nodes' REST APIs.
var rest = &http.Client{Timeout: 5 * time.Second}

// call sends a request to addr and decodes a JSON answer into out (when not nil).
func call(ctx context.Context, method, addr, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := rest.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(data) > 0 && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s %s answer %q: %w", method, path, data, err)
		}
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s on %s: HTTP %d: %s", method, path, addr, resp.StatusCode, data)
	}
	return resp.StatusCode, nil
}

// overview is GET /cluster.
type overview struct {
	NodeID     string `json:"node_id"`
	Leader     string `json:"leader"`
	LeaderHTTP string `json:"leader_http"`
	RaftState  string `json:"raft_state"`
	Term       uint64 `json:"term"`
	Epoch      uint64 `json:"epoch"`
	Fenced     bool   `json:"fenced"`
	Nodes      []struct {
		ID    string `json:"id"`
		Voter bool   `json:"voter"`
	} `json:"nodes"`
	Assignments []struct {
		Connector string `json:"connector"`
		Task      string `json:"task"`
		TaskID    int    `json:"task_id"`
		Node      string `json:"node"`
		Epoch     uint64 `json:"epoch"`
	} `json:"assignments"`
}

// owners maps connector/task to its node.
func (o overview) owners() map[string]string {
	out := map[string]string{}
	for _, a := range o.Assignments {
		out[a.Connector+"/"+a.Task] = a.Node
	}
	return out
}

func (o overview) perNode() map[string]int {
	out := map[string]int{}
	for _, a := range o.Assignments {
		out[a.Node]++
	}
	return out
}

// connectorStatus is GET /connectors/{name}/status.
type connectorStatus struct {
	Name  string `json:"name"`
	Tasks []struct {
		ID       int    `json:"id"`
		State    string `json:"state"`
		WorkerID string `json:"worker_id"`
		Trace    string `json:"trace"`
	} `json:"tasks"`
}

func getOverview(addr string) (overview, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var ov overview
	_, err := call(ctx, http.MethodGet, addr, "/cluster", nil, &ov)
	return ov, err
}

// quickOverview is getOverview with a short timeout, for sampling nodes that may be paused.
func quickOverview(addr string) (overview, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var ov overview
	_, err := call(ctx, http.MethodGet, addr, "/cluster", nil, &ov)
	return ov, err
}

func getStatus(addr, connector string) (connectorStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
	defer cancel()
	var st connectorStatus
	_, err := call(ctx, http.MethodGet, addr, "/connectors/"+connector+"/status", nil, &st)
	return st, err
}

// waitFor polls cond every 200ms until it holds or timeout passes, and returns how long it
// took; on timeout the test fails with what and cond's last explanation.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	var why string
	for {
		var ok bool
		ok, why = cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s: %s", what, timeout, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
