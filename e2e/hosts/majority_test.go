//go:build e2e

package hosts

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/e2e/internal/clusterapi"
)

// loseMajority kills two of the three nodes for good (kill -9, never restarted): the survivor
// fences itself and no leader can be elected. Then the operator's recovery
// (docs/operations.md): stop the survivor, write data.dir/raft/peers.json listing it alone,
// start it. It must lead a one-node cluster with the connector it had, run every task and
// deliver every write made meanwhile, and have deleted the file.
func (b *bed) loseMajority(ctx context.Context, t *testing.T, sum *summary) {
	b.settled(bound, b.nodes, nil)
	survivor := b.nodes[0]
	lost := b.others(survivor)
	t0 := time.Now()
	for _, n := range lost {
		if err := n.p.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-n.p.Done()
	}
	var fenced time.Duration
	clusterapi.WaitFor(t, lease+fenceSlack+2*time.Second, survivor.id+" fencing itself", func() (bool, string) {
		at, ok := survivor.loggedAfter(t0, "fenced: ")
		fenced = at.Sub(t0)
		return ok, "no fencing line since the kill"
	})
	time.Sleep(2 * sessionTimeout)
	ov, err := clusterapi.QuickOverview(survivor.http)
	if err != nil {
		t.Fatal(err)
	}
	if ov.Leader != "" {
		t.Fatalf("%s alone names leader %q %s after the majority died", survivor.id, ov.Leader, time.Since(t0).Round(time.Millisecond))
	}
	t.Logf("%s and %s killed: %s fenced itself after %s, and knows no leader %s later",
		lost[0].id, lost[1].id, survivor.id, fenced.Round(time.Millisecond), time.Since(t0).Round(time.Second))

	survivor.p.Stop(45 * time.Second)
	peers, err := json.Marshal([]map[string]any{{"id": survivor.id, "address": survivor.raft, "non_voter": false}})
	if err != nil {
		t.Fatal(err)
	}
	peersFile := filepath.Join(survivor.dataDir, "raft", coordinator.PeersFile)
	if err := os.WriteFile(peersFile, peers, 0o600); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	b.start(survivor)
	clusterapi.WaitFor(t, 60*time.Second, survivor.id+" healthy", func() (bool, string) {
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		status, err := clusterapi.Call(hctx, http.MethodGet, survivor.http, "/health", nil, nil)
		return status == http.StatusOK, fmt.Sprint(status, err)
	})
	healthy := time.Since(started)
	b.settled(60*time.Second, []*node{survivor}, nil)
	running := time.Since(started)
	if ov, err = clusterapi.GetOverview(survivor.http); err != nil {
		t.Fatal(err)
	}
	if ov.Leader != survivor.id || len(ov.Nodes) != 1 {
		t.Errorf("after the recovery: leader %q, members %+v; want %s alone", ov.Leader, ov.Nodes, survivor.id)
	}
	if _, err := os.Stat(peersFile); !os.IsNotExist(err) {
		t.Errorf("%s is still there after the recovery: %v", peersFile, err)
	}
	t.Logf("%s recovered alone from %s: healthy %s after its start, every task RUNNING on it after %s",
		survivor.id, coordinator.PeersFile, healthy.Round(time.Millisecond), running.Round(time.Millisecond))
	b.delivered(t, 90*time.Second)
	sum.add("lose 2 of 3 nodes for good: %s fenced after %s and elected nobody; recovered from peers.json: healthy %s after its start, all %d tasks running on it after %s; lost 0",
		survivor.id, fenced.Round(time.Millisecond), healthy.Round(time.Millisecond), totalTasks, running.Round(time.Millisecond))
}
