//go:build e2e

package cluster

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/mongorelay/mongorelay/internal/testenv"
)

// TestAnOlderBuildStopsOnANewerCommand is the version gate of a rolling upgrade: a node whose
// Raft log holds a committed command newer than its build (as a leader of a newer build would
// have replicated it) stops at once, exiting non-zero with a message that names the command
// and says to upgrade the node, and does so again on every start until it is upgraded.
//
// The newer command is appended to a stopped one-node cluster's log with the term of its last
// entry: on its next start the node elects itself, commits the log, and applies it.
func TestAnOlderBuildStopsOnANewerCommand(t *testing.T) {
	kafka := testenv.Kafka(t)
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	logDir := filepath.Join("..", "..", ".cache", "test-logs", "e2e-cluster-versiongate")
	_ = os.RemoveAll(logDir)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	n := newNode(t, "v1", logDir)
	n.args = nodeArgs(n, "e2ever-"+run, kafka, "--bootstrap")
	nodes := []*node{n}
	cleanUpNodes(t, logDir, &nodes)
	n.start(t)
	waitLeader(t, n)
	n.stop(t, 45*time.Second)

	const command = "split_connector"
	appendCommand(t, filepath.Join(n.dataDir, "raft", "raft.db"),
		fmt.Sprintf(`{"type":%q,"version":1,"payload":{"name":"a"}}`, command))

	for start := 1; start <= 2; start++ {
		began := time.Now()
		n.start(t)
		n.wait(t, 60*time.Second)
		n.mu.Lock()
		err := n.err
		n.mu.Unlock()
		exit, ok := err.(*exec.ExitError)
		if !ok || exit.ExitCode() == 0 {
			t.Fatalf("start %d: the node exited with %v, want a non-zero status", start, err)
		}
		var last string
		if lines := n.logLines("mongorelay worker: "); len(lines) > 0 {
			last = lines[len(lines)-1]
		}
		for _, want := range []string{`"` + command + `"`, "upgrade this node"} {
			if !strings.Contains(last, want) {
				t.Fatalf("start %d: the node's last words %q do not say %q (log %s)", start, last, want, n.logPath)
			}
		}
		t.Logf("start %d: exited %d after %s: %s", start, exit.ExitCode(), time.Since(began).Round(time.Millisecond), last)
	}
}

// appendCommand appends a committed-to-be command entry with payload data to the Raft log at
// path, after its last entry and in its term.
func appendCommand(t *testing.T, path, data string) {
	t.Helper()
	if !json.Valid([]byte(data)) {
		t.Fatalf("not JSON: %s", data)
	}
	store, err := raftboltdb.New(raftboltdb.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	lastIndex, err := store.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	var last raft.Log
	if err := store.GetLog(lastIndex, &last); err != nil {
		t.Fatal(err)
	}
	entry := &raft.Log{Index: lastIndex + 1, Term: last.Term, Type: raft.LogCommand, Data: []byte(data), AppendedAt: time.Now()}
	if err := store.StoreLog(entry); err != nil {
		t.Fatal(err)
	}
}
