package coordinator

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestStatusOf(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	tm := timing{self: "n1", session: 4 * time.Second, unheardSince: ago(time.Second)}
	for _, tc := range []struct {
		name string
		id   string
		m    memory
		// unheard is how long ago a node not heard from this term counts as heard (default 1s)
		unheard time.Duration
		want    status
	}{
		{"the leader itself", "n1", memory{resets: map[string]time.Time{"n1": ago(time.Second)}}, 0, statusAlive},
		{"heartbeating", "n2", memory{beats: map[string]time.Time{"n2": ago(time.Second)}}, 0, statusAlive},
		{"silent for less than the session timeout (a 2 s pause)", "n2", memory{beats: map[string]time.Time{"n2": ago(3 * time.Second)}}, 0, statusAlive},
		{"silent for longer than the session timeout", "n2", memory{beats: map[string]time.Time{"n2": ago(5 * time.Second)}}, 0, statusSilent},
		{"not heard from this term, within the grace", "n2", memory{}, 0, statusAlive},
		{"not heard from this term, past the grace", "n2", memory{}, 5 * time.Second, statusSilent},
		{"connection reset right after a heartbeat", "n2", memory{
			beats:  map[string]time.Time{"n2": ago(100 * time.Millisecond)},
			resets: map[string]time.Time{"n2": ago(50 * time.Millisecond)},
		}, 0, statusGone},
		{"connection reset, not heard from this term (a new leader)", "n2", memory{resets: map[string]time.Time{"n2": now}}, 0, statusGone},
		{"stopped cleanly", "n2", memory{
			beats:   map[string]time.Time{"n2": ago(time.Second)},
			stopped: map[string]time.Time{"n2": {}},
		}, 0, statusStopped},
		{"stopped to restart, within its time, its connection down meanwhile", "n2", memory{
			beats:   map[string]time.Time{"n2": ago(20 * time.Second)},
			stopped: map[string]time.Time{"n2": now.Add(time.Second)},
			resets:  map[string]time.Time{"n2": ago(10 * time.Second)},
		}, 0, statusRestarting},
		{"stopped to restart, past its time", "n2", memory{stopped: map[string]time.Time{"n2": ago(time.Millisecond)}}, 0, statusStopped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := tm
			if tc.unheard > 0 {
				tm.unheardSince = ago(tc.unheard)
			}
			if got := statusOf(tc.id, tc.m, tm, now); got != tc.want {
				t.Errorf("statusOf(%s) = %d, want %d", tc.id, got, tc.want)
			}
		})
	}
}

// threeNodes starts a 3-node cluster with a 6-task connector balanced over it, with session
// timeouts long enough that only a reset or a farewell can move tasks within the test.
func threeNodes(t *testing.T, session time.Duration) (*cluster, *Node, []string, map[string]Config) {
	c := newCluster(t)
	ids, cfgs := c.startThree(func(cfg *Config) { cfg.SessionTimeout, cfg.Lease = session, session/2 })
	leader := c.waitLeader(10 * time.Second)
	if err := leader.CreateConnector(ctxT(t), "orders", map[string]string{"collections": "a,b,c", "shards": "2"}, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "6 tasks balanced over 3 nodes", func() bool { return balanced(leader.State(), 6, ids...) })
	return c, leader, ids, cfgs
}

// others returns ids without id.
func others(ids []string, id string) []string {
	var out []string
	for _, o := range ids {
		if o != id {
			out = append(out, o)
		}
	}
	return out
}

// TestGoneNodeLosesItsTasksAtOnce: the tasks of a node whose process ended (its Raft
// connection refused) move long before the session timeout, and so do those of a dead
// leader once a new one is elected; a node that only stops heartbeating for a while keeps
// them.
func TestGoneNodeLosesItsTasksAtOnce(t *testing.T) {
	const session = 20 * time.Second
	c, leader, ids, cfgs := threeNodes(t, session)

	// Silent, not gone: its heartbeats stop (as when paused), its Raft connection stays.
	quiet := others(ids, leader.ID())[0]
	epoch := leader.State().Epoch()
	c.pause(quiet, true)
	time.Sleep(2 * time.Second)
	c.pause(quiet, false)
	if got := leader.State().Epoch(); got != epoch {
		t.Errorf("a node silent for 2s of a %s session lost tasks: epoch %d, want %d", session, got, epoch)
	}

	follower := others(ids, leader.ID())[1]
	killed := time.Now()
	c.kill(follower)
	waitFor(t, 3*time.Second, "the killed follower's tasks on the others", func() bool { return balanced(leader.State(), 6, others(ids, follower)...) })
	t.Logf("tasks of the killed follower %s moved %v after the kill (session timeout %v)", follower, time.Since(killed), session)
	c.start(cfgs[follower]) // a majority must stay when the leader goes
	waitFor(t, 5*time.Second, "the restarted follower back with tasks", func() bool { return balanced(leader.State(), 6, ids...) })

	old := leader.ID()
	killed = time.Now()
	c.kill(old)
	leader = c.waitLeader(5 * time.Second)
	waitFor(t, 5*time.Second, "the dead leader's tasks on the others", func() bool { return balanced(leader.State(), 6, others(ids, old)...) })
	t.Logf("tasks of the killed leader %s moved %v after the kill (session timeout %v)", old, time.Since(killed), session)
}

// TestRestartingNodeKeepsItsTasks: a node that stops to restart keeps its tasks while it is
// away for less than the time it gave, and loses them once that time has passed.
func TestRestartingNodeKeepsItsTasks(t *testing.T) {
	const session = 20 * time.Second
	c, leader, ids, _ := threeNodes(t, session)
	node := others(ids, leader.ID())[0]
	epoch := leader.State().Epoch()

	c.pause(node, true)
	if err := leader.Stopping(node, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	c.pause(node, false) // back within its time
	time.Sleep(time.Second)
	if got := leader.State().Epoch(); got != epoch {
		t.Errorf("a node back within its restart time lost tasks: epoch %d, want %d", got, epoch)
	}

	c.pause(node, true)
	said := time.Now()
	if err := leader.Stopping(node, time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "the tasks of a node not back in time on the others", func() bool {
		return balanced(leader.State(), 6, others(ids, node)...)
	})
	if waited := time.Since(said); waited < time.Second {
		t.Errorf("the tasks of a node restarting within 1s moved after %v", waited)
	}
}

// TestWatchConnectionsTellsResetsFromTimeouts: a failed Raft heartbeat soon after a contact
// is a reset (the node is gone); one that came after the transport's timeout is silence, which
// the session timeout judges.
func TestWatchConnectionsTellsResetsFromTimeouts(t *testing.T) {
	for _, tc := range []struct {
		name        string
		data        any
		lastContact time.Duration // before the observation
		reset       bool
	}{
		{"refused right after a contact", raft.FailedHeartbeatObservation{PeerID: "n2"}, 100 * time.Millisecond, true},
		{"timed out: a paused or cut-off node", raft.FailedHeartbeatObservation{PeerID: "n2"}, transportTimeout, false},
		{"resumed", raft.ResumedHeartbeatObservation{PeerID: "n2"}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &Node{resets: map[string]time.Time{}, kick: make(chan struct{}, 1)}
			if f, ok := tc.data.(raft.FailedHeartbeatObservation); ok {
				f.LastContact = time.Now().Add(-tc.lastContact)
				tc.data = f
			}
			observations := make(chan raft.Observation, 1)
			observations <- raft.Observation{Data: tc.data}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				n.watchConnections(ctx, observations)
			}()
			for len(observations) > 0 {
				time.Sleep(time.Millisecond)
			}
			cancel()
			<-done
			_, reset := n.memory().resets["n2"]
			woken := len(n.kick) > 0
			if reset != tc.reset || woken != tc.reset {
				t.Errorf("reset recorded %v, leader woken %v; want %v", reset, woken, tc.reset)
			}
		})
	}
}
