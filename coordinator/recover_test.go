package coordinator

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRecoverFromPeersFile is the recovery from the loss of a majority: of 3 nodes two are
// gone for good, and the survivor, alone, elects nobody. Stopped, given a peers.json listing
// only itself, it starts as the leader of a one-node cluster with every connector it had,
// runs every task, deletes the file, and starts normally after that.
func TestRecoverFromPeersFile(t *testing.T) {
	c := newCluster(t)
	ids, cfgs := c.startThree(nil)
	leader := c.waitLeader(10 * time.Second)
	if err := leader.CreateConnector(ctxT(t), "orders", map[string]string{"collections": "a,b", "shards": "3"}, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "6 tasks balanced over 3 nodes", func() bool { return balanced(leader.State(), 6, ids...) })

	survivor := "n3"
	if leader.ID() == survivor {
		survivor = "n2"
	}
	for _, id := range ids {
		if id != survivor {
			c.kill(id)
		}
	}
	time.Sleep(3 * raftElectionTimeout)
	if id, _ := c.nodes[survivor].Leader(); id != "" || c.nodes[survivor].IsLeader() {
		t.Fatalf("%s alone knows leader %q: it must not without a majority", survivor, id)
	}
	c.kill(survivor)

	cfg := cfgs[survivor]
	peersFile := filepath.Join(cfg.DataDir, "raft", PeersFile)
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(peersFile, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Files that do not recover this node are refused, and change nothing.
	for _, bad := range []struct{ body, want string }{
		{`{"id":`, "read " + peersFile},
		{fmt.Sprintf(`[{"id":"n1","address":%q}]`, cfgs["n1"].RaftListen), "does not list this node (" + survivor + ") as a voter"},
		{fmt.Sprintf(`[{"id":"n1","address":%q},{"id":%q,"address":%q,"non_voter":true}]`, cfgs["n1"].RaftListen, survivor, cfg.RaftListen),
			"does not list this node (" + survivor + ") as a voter"},
	} {
		write(bad.body)
		n, err := Open(context.Background(), cfg)
		if err == nil {
			n.Shutdown()
			t.Fatalf("peers.json %s: started, want it refused", bad.body)
		}
		if !strings.Contains(err.Error(), bad.want) {
			t.Errorf("peers.json %s: %v, want it to say %q", bad.body, err, bad.want)
		}
	}

	write(fmt.Sprintf(`[{"id":%q,"address":%q,"non_voter":false}]`, survivor, cfg.RaftListen))
	started := time.Now()
	n := c.start(cfg)
	waitFor(t, 10*time.Second, survivor+" leading alone", func() bool { return n.IsLeader() })
	t.Logf("%s leads the recovered cluster %s after its start", survivor, time.Since(started).Round(time.Millisecond))
	if _, err := os.Stat(peersFile); !os.IsNotExist(err) {
		t.Errorf("peers.json is still there after the recovery: %v", err)
	}
	if _, ok := n.State().Connector("orders"); !ok {
		t.Fatal("the recovered cluster lost its connector")
	}
	waitFor(t, 10*time.Second, "every task on "+survivor+", the others forgotten", func() bool {
		st := n.State()
		return balanced(st, 6, survivor) && len(st.Nodes()) == 1
	})
	members, err := n.Members(ctxT(t))
	if err != nil || len(members) != 1 || members[0].ID != survivor {
		t.Errorf("members after the recovery: %+v, %v; want %s alone", members, err, survivor)
	}

	// Without the file, a restart is an ordinary one.
	c.kill(survivor)
	n = c.start(cfg)
	waitFor(t, 10*time.Second, survivor+" leading again after a plain restart", func() bool { return n.IsLeader() })
}
