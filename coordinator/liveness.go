package coordinator

import (
	"context"
	"maps"
	"time"

	"github.com/hashicorp/raft"
)

// How the leader tells live nodes from dead ones (DESIGN.md section 6). It keeps, in memory and
// for its term only, each node's last heartbeat, the nodes that said they are stopping, and
// the nodes its Raft connection to was refused or reset. A node known to be gone (a reset, as
// after kill -9, or a clean "I am stopping") loses its tasks at once: Kafka's transactional
// fence, not the lease, keeps it from writing should it still run. A node that has only gone
// silent (a paused process keeps its sockets open) is waited for up to the session timeout.

// memory is a copy of the leader's memory of the nodes, taken for one decision.
type memory struct {
	beats map[string]time.Time
	// stopped holds the nodes that said they are stopping and have not heartbeated since,
	// each with the time until which its tasks wait for it to come back (zero: they move
	// at once).
	stopped map[string]time.Time
	// resets holds the nodes whose Raft connection from the leader failed right after a
	// contact and that have not heartbeated since, each with when it failed.
	resets map[string]time.Time
}

// memory copies the leader's memory of the nodes.
func (n *Node) memory() memory {
	n.mu.Lock()
	defer n.mu.Unlock()
	return memory{beats: maps.Clone(n.beats), stopped: maps.Clone(n.stopped), resets: maps.Clone(n.resets)}
}

// status is what the leader makes of a node.
type status int

const (
	statusAlive      status = iota // heartbeating within the session timeout
	statusRestarting               // stopped cleanly to restart: its tasks wait for it
	statusStopped                  // stopped cleanly: its tasks move now
	statusGone                     // its Raft connection was refused or reset: its tasks move now
	statusSilent                   // no heartbeat within the session timeout: its tasks move
)

// live reports whether a node in status s keeps its tasks.
func (s status) live() bool { return s == statusAlive || s == statusRestarting }

// timing is what statusOf needs of the leader's configuration and term.
type timing struct {
	self    string
	session time.Duration
	// unheardSince stands in for the last heartbeat of a node not heard from this term: the
	// term's start plus a grace period, less the session timeout (see leaderTerm.timing).
	unheardSince time.Time
}

// statusOf says what node id is at now, given the leader's memory m. A farewell decides
// first (a node restarting is waited for until the time it gave, even though its connection
// is down meanwhile), then a reset, then silence.
func statusOf(id string, m memory, t timing, now time.Time) status {
	if id == t.self {
		return statusAlive
	}
	if until, ok := m.stopped[id]; ok {
		if now.Before(until) {
			return statusRestarting
		}
		return statusStopped
	}
	if _, ok := m.resets[id]; ok {
		return statusGone
	}
	last, ok := m.beats[id]
	if !ok {
		last = t.unheardSince
	}
	if now.Sub(last) <= t.session {
		return statusAlive
	}
	return statusSilent
}

// resetWithin is how soon after the last contact a failed Raft heartbeat must come to count
// as a refused or reset connection. A follower that is paused or cut off keeps the connection
// open and the heartbeat waits for the transport's timeout before failing, so a failure
// sooner than half of it is the peer's socket closing: its process is gone.
const resetWithin = transportTimeout / 2

// watchConnections records, while this node leads, the followers whose Raft connection is
// refused or reset (Raft's failed heartbeats soon after a contact), until ctx ends. Raft
// repeats a failed heartbeat every half HeartbeatTimeout at most, so an observation dropped
// while the channel was full comes again.
func (n *Node) watchConnections(ctx context.Context, observations <-chan raft.Observation) {
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-observations:
			f, ok := o.Data.(raft.FailedHeartbeatObservation)
			if ok && time.Since(f.LastContact) < resetWithin {
				n.connectionReset(string(f.PeerID))
			}
		}
	}
}

// connectionReset records that node id's Raft connection failed now, unless it already had
// since its last heartbeat, and wakes the leader's loop to move its tasks.
func (n *Node) connectionReset(id string) {
	n.mu.Lock()
	_, known := n.resets[id]
	if !known {
		n.resets[id] = time.Now()
	}
	n.mu.Unlock()
	if !known {
		n.wake()
	}
}

// wake makes the leader's loop look at the nodes again now.
func (n *Node) wake() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// failedHeartbeats keeps Raft's failed heartbeat observations only.
func failedHeartbeats(o *raft.Observation) bool {
	_, ok := o.Data.(raft.FailedHeartbeatObservation)
	return ok
}
