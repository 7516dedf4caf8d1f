package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mongorelay/mongorelay/api/peer"
	"github.com/mongorelay/mongorelay/internal/forward"
)

// fakeHeartbeatNode records what the sender does with the coordinator.
type fakeHeartbeatNode struct {
	mu                     sync.Mutex // guards leader and leaderHTTP
	id, leader, leaderHTTP string
	applied                uint64 // the state index this node has applied
	contact                []time.Time
	waited                 []uint64
}

func (f *fakeHeartbeatNode) ID() string { return f.id }
func (f *fakeHeartbeatNode) Leader() (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader, f.leaderHTTP
}
func (f *fakeHeartbeatNode) RecordLeaderContact(t time.Time) { f.contact = append(f.contact, t) }
func (f *fakeHeartbeatNode) WaitIndex(ctx context.Context, index uint64) error {
	f.waited = append(f.waited, index)
	if f.applied < index {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func newTestHeartbeats(n *fakeHeartbeatNode, send func(context.Context, string, peer.Heartbeat) (peer.HeartbeatAck, error)) *heartbeats {
	return &heartbeats{
		node: n, httpAddr: "me:8083", interval: 50 * time.Millisecond, send: send,
		local: func(context.Context, peer.Heartbeat) (peer.HeartbeatAck, error) {
			return peer.HeartbeatAck{}, errors.New("not the leader")
		},
		reports: func() []peer.TaskReport {
			return []peer.TaskReport{{Connector: "cdc", Task: "db.c#0-of-1", State: string(taskRunning)}}
		},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func TestHeartbeatRenewsTheLeaseOnlyOnceCaughtUp(t *testing.T) {
	n := &fakeHeartbeatNode{id: "n2", leader: "n1", leaderHTTP: "leader:8083", applied: 7}
	var got peer.Heartbeat
	index := uint64(7)
	h := newTestHeartbeats(n, func(_ context.Context, addr string, hb peer.Heartbeat) (peer.HeartbeatAck, error) {
		if addr != "leader:8083" {
			return peer.HeartbeatAck{}, fmt.Errorf("sent to %s", addr)
		}
		got = hb
		return peer.HeartbeatAck{Index: index}, nil
	})
	if err := h.beat(context.Background(), n.leader, n.leaderHTTP); err != nil {
		t.Fatal(err)
	}
	if len(n.contact) != 1 || got.NodeID != "n2" || got.HTTPAddr != "me:8083" || len(got.Tasks) != 1 {
		t.Fatalf("contact %v, heartbeat %+v", n.contact, got)
	}

	// The leader is ahead (this node slept through a reassignment): no lease until caught up.
	index = 9
	if err := h.beat(context.Background(), n.leader, n.leaderHTTP); err == nil {
		t.Fatal("a heartbeat answered at a state this node has not applied renewed the lease")
	}
	if len(n.contact) != 1 {
		t.Errorf("lease renewed %d times, want still 1", len(n.contact))
	}
	n.applied = 9
	if err := h.beat(context.Background(), n.leader, n.leaderHTTP); err != nil || len(n.contact) != 2 {
		t.Errorf("after catching up: err %v, contacts %d", err, len(n.contact))
	}
}

func TestFarewellSaysHowLongTheTasksWait(t *testing.T) {
	for _, tc := range []struct {
		name          string
		leader        string
		restartWithin time.Duration
		want          *peer.Heartbeat
	}{
		{"a stop", "n1", 0, &peer.Heartbeat{NodeID: "n2", HTTPAddr: "me:8083", Tasks: []peer.TaskReport{}, Stopping: true}},
		{"a restart", "n1", 30 * time.Second, &peer.Heartbeat{NodeID: "n2", HTTPAddr: "me:8083", Tasks: []peer.TaskReport{}, Stopping: true, RestartWithinMs: 30_000}},
		{"the leader itself: nobody to tell", "n2", 30 * time.Second, nil},
		{"no leader within the farewell's time", "", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got *peer.Heartbeat
			h := newTestHeartbeats(&fakeHeartbeatNode{id: "n2", leader: tc.leader, leaderHTTP: "leader:8083"},
				func(_ context.Context, _ string, hb peer.Heartbeat) (peer.HeartbeatAck, error) {
					got = &hb
					return peer.HeartbeatAck{}, nil
				})
			h.restartWithin = tc.restartWithin
			h.farewell(context.Background())
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("farewell sent %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestFarewellWaitsForTheNewLeader: a leader that has just handed the leadership over knows no
// leader for a moment; its farewell goes to the new one once it is known.
func TestFarewellWaitsForTheNewLeader(t *testing.T) {
	n := &fakeHeartbeatNode{id: "n2"}
	var to string
	h := newTestHeartbeats(n, func(_ context.Context, addr string, hb peer.Heartbeat) (peer.HeartbeatAck, error) {
		if hb.Stopping {
			to = addr
		}
		return peer.HeartbeatAck{}, nil
	})
	time.AfterFunc(50*time.Millisecond, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.leader, n.leaderHTTP = "n1", "leader:8083"
	})
	h.farewell(context.Background())
	if to != "leader:8083" {
		t.Errorf("farewell sent to %q, want the new leader's leader:8083", to)
	}
}

// TestFarewellGoesAgainAfterAnElection: a farewell that reaches a node no longer leading goes
// again to the next leader.
func TestFarewellGoesAgainAfterAnElection(t *testing.T) {
	n := &fakeHeartbeatNode{id: "n2", leader: "n1", leaderHTTP: "old:8083"}
	var to []string
	h := newTestHeartbeats(n, func(_ context.Context, addr string, hb peer.Heartbeat) (peer.HeartbeatAck, error) {
		to = append(to, addr)
		if addr == "old:8083" {
			n.mu.Lock()
			defer n.mu.Unlock()
			n.leader, n.leaderHTTP = "n3", "new:8083"
			return peer.HeartbeatAck{}, &forward.NotLeaderError{}
		}
		return peer.HeartbeatAck{}, nil
	})
	h.farewell(context.Background())
	if want := []string{"old:8083", "new:8083"}; !reflect.DeepEqual(to, want) {
		t.Errorf("farewell sent to %v, want %v", to, want)
	}
}

func TestHeartbeatUnknownNode(t *testing.T) {
	unknown := func(context.Context, string, peer.Heartbeat) (peer.HeartbeatAck, error) {
		return peer.HeartbeatAck{}, fmt.Errorf("POST /internal/heartbeat: %w", peer.ErrUnknownNode)
	}
	t.Run("never answered: rejoin", func(t *testing.T) {
		n := &fakeHeartbeatNode{id: "n4", leader: "n1", leaderHTTP: "leader:8083"}
		h := newTestHeartbeats(n, unknown)
		rejoined := 0
		h.rejoin = func() { rejoined++ }
		if err := h.beat(context.Background(), n.leader, n.leaderHTTP); errors.Is(err, ErrRemoved) || rejoined != 1 {
			t.Errorf("err %v, rejoined %d: want a rejoin", err, rejoined)
		}
	})
	t.Run("removed while running: exit", func(t *testing.T) {
		n := &fakeHeartbeatNode{id: "n4", leader: "n1", leaderHTTP: "leader:8083"}
		answer := func(context.Context, string, peer.Heartbeat) (peer.HeartbeatAck, error) {
			return peer.HeartbeatAck{}, nil
		}
		h := newTestHeartbeats(n, answer)
		h.rejoin = func() { t.Error("a removed node rejoined by itself") }
		if err := h.beat(context.Background(), n.leader, n.leaderHTTP); err != nil {
			t.Fatal(err)
		}
		h.send = unknown
		if err := h.run(context.Background(), nil); !errors.Is(err, ErrRemoved) {
			t.Errorf("run = %v, want ErrRemoved", err)
		}
	})
	t.Run("removed, then no leader known: asks the last one", func(t *testing.T) {
		n := &fakeHeartbeatNode{id: "n4", leader: "n1", leaderHTTP: "leader:8083"}
		answer := func(context.Context, string, peer.Heartbeat) (peer.HeartbeatAck, error) {
			return peer.HeartbeatAck{}, nil
		}
		h := newTestHeartbeats(n, answer)
		if err := h.beat(context.Background(), n.leader, n.leaderHTTP); err != nil {
			t.Fatal(err)
		}
		// Out of the configuration, the node stops hearing from the leader and forgets it.
		n.mu.Lock()
		n.leader, n.leaderHTTP = "", ""
		n.mu.Unlock()
		h.send = func(ctx context.Context, addr string, hb peer.Heartbeat) (peer.HeartbeatAck, error) {
			if addr != "leader:8083" {
				return peer.HeartbeatAck{}, fmt.Errorf("sent to %q", addr)
			}
			return unknown(ctx, addr, hb)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.run(ctx, nil); !errors.Is(err, ErrRemoved) {
			t.Errorf("run = %v, want ErrRemoved", err)
		}
	})
	t.Run("the leader itself says unknown", func(t *testing.T) {
		n := &fakeHeartbeatNode{id: "n1", leader: "n1"}
		h := newTestHeartbeats(n, nil)
		h.answered = true
		h.local = func(context.Context, peer.Heartbeat) (peer.HeartbeatAck, error) {
			return peer.HeartbeatAck{}, fmt.Errorf("heartbeat: %w", peer.ErrUnknownNode) // as peerNode says it
		}
		if err := h.beat(context.Background(), n.leader, n.leaderHTTP); !errors.Is(err, ErrRemoved) {
			t.Errorf("beat = %v, want ErrRemoved", err)
		}
	})
}

func TestHeartbeatGoesAtOnceToANewLeader(t *testing.T) {
	n := &fakeHeartbeatNode{id: "n2", leader: "n1", leaderHTTP: "n1:8083"}
	sent := make(chan string, 10)
	h := newTestHeartbeats(n, func(_ context.Context, addr string, _ peer.Heartbeat) (peer.HeartbeatAck, error) {
		sent <- addr
		return peer.HeartbeatAck{}, nil
	})
	h.interval = time.Hour // only a leader change may send a second one
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.run(ctx, nil) }()
	if got := <-sent; got != "n1:8083" {
		t.Fatalf("first heartbeat to %s", got)
	}
	select {
	case got := <-sent:
		t.Fatalf("second heartbeat to %s within the interval", got)
	case <-time.After(150 * time.Millisecond):
	}
	n.mu.Lock()
	n.leader, n.leaderHTTP = "n3", "n3:8083"
	n.mu.Unlock()
	select {
	case got := <-sent:
		if got != "n3:8083" {
			t.Errorf("heartbeat to %s, want the new leader", got)
		}
	case <-time.After(time.Second):
		t.Error("no heartbeat to the new leader")
	}
	cancel()
	<-done
}

// TestQuitLetsTheHeartbeatInFlightFinish: a stopping node quits its heartbeats before its
// farewell; a heartbeat already sent must be answered first, not abandoned for the leader to
// take after the farewell, which would call the node alive again.
func TestQuitLetsTheHeartbeatInFlightFinish(t *testing.T) {
	n := &fakeHeartbeatNode{id: "n2", leader: "n1", leaderHTTP: "n1:8083"}
	inFlight, answer := make(chan struct{}), make(chan struct{})
	var answered atomic.Bool
	h := newTestHeartbeats(n, func(ctx context.Context, _ string, _ peer.Heartbeat) (peer.HeartbeatAck, error) {
		close(inFlight)
		select {
		case <-answer:
			answered.Store(true)
			return peer.HeartbeatAck{}, nil
		case <-ctx.Done():
			return peer.HeartbeatAck{}, ctx.Err()
		}
	})
	h.interval = time.Hour
	quit, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- h.run(context.Background(), quit) }()
	<-inFlight
	close(quit)
	select {
	case err := <-done:
		t.Fatalf("run returned (%v) with a heartbeat in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(answer)
	if err := <-done; err != nil || !answered.Load() {
		t.Fatalf("run returned %v, heartbeat answered: %t", err, answered.Load())
	}
}

// TestJoinerStopsWhenRefused: an unanswered join is tried again, a refused one (another
// cluster.id, a wrong cluster.secret) is not: the node stops with the cluster's reason.
func TestJoinerStopsWhenRefused(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	join := func(_ context.Context, addr string, req peer.JoinRequest) (peer.JoinResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			return peer.JoinResponse{}, errors.New("connection refused")
		}
		return peer.JoinResponse{}, fmt.Errorf("POST /internal/join on %s: %w: HTTP 403: node n4 is of cluster.id %q", addr, peer.ErrRefused, req.ClusterID)
	}
	j := newJoiner([]string{"a:8083"}, peer.JoinRequest{ClusterID: "green", NodeID: "n4"}, join, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); j.run(ctx) }()
	select {
	case err := <-j.refusals():
		if !errors.Is(err, peer.ErrRefused) || !strings.Contains(err.Error(), `"green"`) {
			t.Errorf("refusal %v, want ErrRefused with the cluster's reason", err)
		}
	case <-ctx.Done():
		t.Fatal("no refusal delivered")
	}
	<-done
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Errorf("%d join calls, want 2: one unanswered, tried again, then refused for good", calls)
	}
	if (*joiner)(nil).refusals() != nil {
		t.Error("a node without --join has refusals")
	}
}
