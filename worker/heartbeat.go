package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mongorelay/mongorelay/api/peer"
)

// ErrRemoved means the node learned, while running, that it is no longer a member of the
// cluster (mongorelay worker leave, or silent for longer than the leader's dead node removal
// time). It exits rather than rejoin on its own: start it again, with --join, to add it back.
var ErrRemoved = errors.New("this node was removed from the cluster; start it again with --join <member> to add it back")

// heartbeatNode is what the heartbeat sender needs of the coordinator: *coordinator.Node.
type heartbeatNode interface {
	ID() string
	Leader() (id, httpAddr string)
	RecordLeaderContact(sent time.Time)
	WaitIndex(ctx context.Context, index uint64) error
}

// farewellTime bounds a farewell's tries, farewellRetry paces them: long enough for an
// election, short enough not to hold a stop up for long.
const (
	farewellTime  = 2 * time.Second
	farewellRetry = 50 * time.Millisecond
)

// heartbeats tells the leader, every worker.heartbeat.interval, that this node is alive and
// how its tasks are doing. Each answered heartbeat renews the node's lease
// (RecordLeaderContact) once this node has applied the cluster state the leader had when it
// answered (peer.HeartbeatAck): a node whose heartbeats go unanswered for worker.lease fences
// itself, and one that was away (paused, partitioned) cannot renew its lease on an old state.
// When the leader changes the next heartbeat goes at once, so that an election does not cost
// the followers their lease.
type heartbeats struct {
	node     heartbeatNode
	httpAddr string
	interval time.Duration
	// restartWithin is how long this node's tasks wait for it after its farewell
	// (worker.rebalance.delay).
	restartWithin time.Duration
	// send delivers a heartbeat to the leader at addr; local records one when this node leads.
	send    func(ctx context.Context, addr string, hb peer.Heartbeat) (peer.HeartbeatAck, error)
	local   func(ctx context.Context, hb peer.Heartbeat) (peer.HeartbeatAck, error)
	reports func() []peer.TaskReport
	// rejoin asks to be added again after the leader called this node unknown before any
	// heartbeat of this process was answered (a restart after removal). Nil: no --join.
	rejoin func()
	log    *slog.Logger

	answered   bool   // some heartbeat of this process was answered
	lastLeader string // the leader that answered last
	lastAddr   string // its HTTP address
}

// run sends heartbeats until ctx ends or quit is closed (nil), or the node finds it was
// removed (ErrRemoved). Quit lets the heartbeat in flight finish, so that the leader has taken
// it by the time run returns: one it took after the node's farewell would call the node alive
// again, and keep or move back the tasks the farewell moved.
func (h *heartbeats) run(ctx context.Context, quit <-chan struct{}) error {
	poll := time.NewTicker(min(100*time.Millisecond, h.interval))
	defer poll.Stop()
	var last time.Time
	warned := time.Time{}
	for {
		leader, addr := h.node.Leader()
		if leader == "" && h.lastAddr != "" && h.lastLeader != h.node.ID() {
			// A node removed from the configuration stops hearing from the leader and soon
			// knows none: it asks the last one it knew, which tells it it was removed.
			leader, addr = h.lastLeader, h.lastAddr
		}
		if leader != "" && (time.Since(last) >= h.interval || leader != h.lastLeader) {
			last = time.Now()
			err := h.beat(ctx, leader, addr)
			switch {
			case err == nil:
			case errors.Is(err, ErrRemoved):
				return err
			case ctx.Err() != nil:
				return nil
			case time.Since(warned) >= 10*h.interval:
				warned = time.Now()
				h.log.Warn("heartbeat not answered", "leader", leader, "err", err)
			default:
				h.log.Debug("heartbeat not answered", "leader", leader, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-quit:
			return nil
		case <-poll.C:
		}
	}
}

// beat sends one heartbeat to leader, at HTTP address addr.
func (h *heartbeats) beat(ctx context.Context, leader, addr string) error {
	sent := time.Now()
	ctx, cancel := context.WithTimeout(ctx, h.interval)
	defer cancel()
	ack, err := h.deliver(ctx, leader, addr, peer.Heartbeat{NodeID: h.node.ID(), HTTPAddr: h.httpAddr, Tasks: h.reports()})
	if err == nil {
		h.answered, h.lastLeader, h.lastAddr = true, leader, addr
		if err := h.node.WaitIndex(ctx, ack.Index); err != nil {
			return fmt.Errorf("heartbeat answered, but this node is behind the leader's state (index %d): %w", ack.Index, err)
		}
		h.node.RecordLeaderContact(sent)
		return nil
	}
	if errors.Is(err, peer.ErrUnknownNode) {
		if h.answered {
			return ErrRemoved
		}
		if h.rejoin == nil {
			return fmt.Errorf("the leader %s does not know this node: add it with --join <member> (or --peers on the bootstrap node): %w", leader, err)
		}
		h.rejoin()
	}
	return err
}

// deliver sends hb to leader, at HTTP address addr, or records it when this node leads.
func (h *heartbeats) deliver(ctx context.Context, leader, addr string, hb peer.Heartbeat) (peer.HeartbeatAck, error) {
	switch {
	case leader == h.node.ID():
		return h.local(ctx, hb)
	case addr == "":
		return peer.HeartbeatAck{}, fmt.Errorf("the leader %s has not told its HTTP address yet", leader)
	}
	return h.send(ctx, addr, hb)
}

// farewell tells the leader that this node is stopping, its tasks stopped and committed, so
// that they move at once, or wait restartWithin for the node to come back. Run it after run
// has returned on quit: a heartbeat after it would call the node alive again. A leader that
// has just handed the leadership over waits to learn who has it, and a farewell that finds an
// election under way goes again to the next leader, for up to farewellTime. Without an answer
// the tasks move as a dead node's do: when the leader finds its connection refused once this
// process has exited, or after the session timeout if it cannot reach this node at all.
func (h *heartbeats) farewell(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, max(h.interval, farewellTime))
	defer cancel()
	hb := peer.Heartbeat{NodeID: h.node.ID(), HTTPAddr: h.httpAddr, Tasks: []peer.TaskReport{}, Stopping: true, RestartWithinMs: h.restartWithin.Milliseconds()}
	err := errors.New("no leader known")
	for {
		leader, addr := h.awaitLeader(ctx)
		switch {
		case leader == h.node.ID():
			return // no other node to hand the tasks to
		case leader == "":
			h.log.Warn("could not tell the leader this node is stopping: its tasks move once the leader finds it gone", "err", err)
			return
		}
		if _, err = h.deliver(ctx, leader, addr, hb); err == nil {
			if h.restartWithin > 0 {
				h.log.Info("told the leader this node is stopping to restart: its tasks wait for it", "leader", leader, "for", h.restartWithin)
				return
			}
			h.log.Info("told the leader this node is stopping: its tasks move now", "leader", leader)
			return
		}
		select {
		case <-ctx.Done():
			h.log.Warn("could not tell the leader this node is stopping: its tasks move once the leader finds it gone", "leader", leader, "err", err)
			return
		case <-time.After(farewellRetry):
		}
	}
}

// awaitLeader returns the leader and its HTTP address once one is known, or "" when ctx ends
// first.
func (h *heartbeats) awaitLeader(ctx context.Context) (id, httpAddr string) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if id, httpAddr = h.node.Leader(); id != "" {
			return id, httpAddr
		}
		select {
		case <-ctx.Done():
			return "", ""
		case <-tick.C:
		}
	}
}

// joiner asks members to add this node, one after another, until one of them (forwarding to
// the leader) does. Adding a member again is harmless, so a node with --join always asks at
// start.
type joiner struct {
	targets []string
	req     peer.JoinRequest
	join    func(ctx context.Context, addr string, req peer.JoinRequest) (peer.JoinResponse, error)
	log     *slog.Logger
	kick    chan struct{}
	refused chan error // a join the cluster refused for good (peer.ErrRefused): the node stops
}

func newJoiner(targets []string, req peer.JoinRequest, join func(context.Context, string, peer.JoinRequest) (peer.JoinResponse, error), log *slog.Logger) *joiner {
	j := &joiner{targets: targets, req: req, join: join, log: log, kick: make(chan struct{}, 1), refused: make(chan error, 1)}
	j.again()
	return j
}

// refusals delivers the error of a join the cluster refused for good, after which j stops
// trying; a nil j never delivers.
func (j *joiner) refusals() <-chan error {
	if j == nil {
		return nil
	}
	return j.refused
}

// again asks for one more round of joining.
func (j *joiner) again() {
	select {
	case j.kick <- struct{}{}:
	default:
	}
}

// run joins whenever asked to, until ctx ends.
func (j *joiner) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-j.kick:
		}
		if err := j.joinOnce(ctx); err != nil {
			j.refused <- err
			return
		}
	}
}

// joinOnce asks the targets in turn until one adds the node or ctx ends, and returns nil, or
// the error of a refusal (peer.ErrRefused: another cluster.id, a wrong cluster.secret).
func (j *joiner) joinOnce(ctx context.Context) error {
	backoff := 250 * time.Millisecond
	for i := 0; ; i++ {
		addr := j.targets[i%len(j.targets)]
		callCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
		res, err := j.join(callCtx, addr, j.req)
		cancel()
		if err == nil {
			j.log.Info("joined the cluster", "via", addr, "voter", res.Voter)
			return nil
		}
		if errors.Is(err, peer.ErrRefused) {
			return fmt.Errorf("join the cluster via %s: %w", addr, err)
		}
		if ctx.Err() != nil {
			return nil
		}
		j.log.Info("joining the cluster: no answer yet, trying again", "via", addr, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
