//go:build e2e

package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mongorelay/mongorelay/internal/testenv"
)

// TestTheImagesHealthcheckFollowsTheNode runs `mongorelay healthcheck` as the image's
// HEALTHCHECK does, with no flags and the node's own variables (HTTPS, an admin token), against
// a real node: it exits 0 while the node runs and 1, naming the refused call, once the node
// has stopped.
func TestTheImagesHealthcheckFollowsTheNode(t *testing.T) {
	kafka := testenv.Kafka(t)
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	logDir := filepath.Join("..", "..", ".cache", "test-logs", "e2e-cluster-healthcheck")
	_ = os.RemoveAll(logDir)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	certs := testenv.NewCerts(t)
	n := newNode(t, "h1", logDir)
	n.env = []string{
		"MONGORELAY_HTTP_LISTEN=" + n.http,
		"MONGORELAY_HTTP_TLS_CERT=" + certs.ServerCert,
		"MONGORELAY_HTTP_TLS_KEY=" + certs.ServerKey,
		"MONGORELAY_HTTP_TLS_CA=" + certs.CA,
		"MONGORELAY_HTTP_AUTH_TOKEN=e2e-health-token-" + run,
	}
	n.args = []string{"--node-id", n.id, "--data-dir", n.dataDir, "--cluster-id", "e2eh-" + run,
		"--raft-listen", n.raft, "--registry-listen", n.registry, "--kafka", kafka, "--bootstrap"}
	nodes := []*node{n}
	cleanUpNodes(t, logDir, &nodes)

	healthcheck := func() (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, mongorelayBin, "healthcheck")
		cmd.Env = append(os.Environ(), n.env...)
		out, err := cmd.CombinedOutput()
		if exit, ok := err.(*exec.ExitError); ok {
			return exit.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatalf("run mongorelay healthcheck: %v", err)
		}
		return 0, string(out)
	}

	n.start(t)
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, out := healthcheck()
		if code == 0 {
			t.Logf("healthcheck of the running node: exit 0: %s", strings.TrimSpace(out))
			break
		}
		if !n.running() || time.Now().After(deadline) {
			t.Fatalf("healthcheck of the running node: exit %d: %s (node log %s)", code, out, n.logPath)
		}
		time.Sleep(500 * time.Millisecond)
	}

	n.stop(t, 45*time.Second)
	code, out := healthcheck()
	if code != 1 || !strings.Contains(out, `Get "https://`+n.http+`/health"`) {
		t.Fatalf("healthcheck of the stopped node: exit %d: %s, want 1 naming the call", code, out)
	}
	t.Logf("healthcheck of the stopped node: exit 1: %s", strings.TrimSpace(out))
}
