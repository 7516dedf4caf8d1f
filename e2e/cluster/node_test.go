//go:build e2e

package cluster

import (
	"bufio"
	"fmt"
	"net"
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
	// bin is the binary the node runs, mongorelayBin when empty; env is added to the test's
	// environment.
	bin string
	env []string

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
	bin := n.bin
	if bin == "" {
		bin = mongorelayBin
	}
	cmd := exec.Command(bin, append([]string{"worker"}, n.args...)...)
	cmd.Env = append(os.Environ(), n.env...)
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

// cleanUpNodes kills, when the test ends, every node *nodes holds then (a test may add nodes
// after calling it), and says where their logs are kept if the test failed.
func cleanUpNodes(t *testing.T, logDir string, nodes *[]*node) {
	t.Cleanup(func() {
		for _, n := range *nodes {
			n.cleanup()
		}
		if t.Failed() {
			t.Logf("node logs kept in %s", logDir)
		}
	})
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

// linesSince returns the lines of the node's log that contain substr and were logged at or
// after since (log times are cut to the millisecond).
func (n *node) linesSince(substr string, since time.Time) []string {
	var out []string
	for _, l := range n.logLines(substr) {
		if at, ok := logTime(l); ok && !at.Before(since.Truncate(time.Millisecond)) {
			out = append(out, l)
		}
	}
	return out
}
