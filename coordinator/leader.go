package coordinator

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mongorelay/mongorelay/coordinator/assign"

	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// run follows Raft's leadership changes: each term this node leads gets its
// own goroutine and context, cancelled (and waited for) when leadership is
// lost.
func (n *Node) run(ctx context.Context) {
	var current *termRun
	stop := func() {
		if current != nil {
			current.cancel()
			<-current.done
			current = nil
		}
	}
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case leading := <-n.notify:
			stop()
			if !leading {
				storeMax(&n.leaderSeen, time.Now().Add(-raftLeaderLease))
				n.log.Info("lost leadership")
				continue
			}
			// A new leader has no heartbeat history (DESIGN.md section 6).
			n.mu.Lock()
			clear(n.beats)
			clear(n.stopped)
			clear(n.resets)
			clear(n.httpAddrs)
			n.mu.Unlock()
			current = n.startTerm(ctx, n.raft.CurrentTerm())
		}
	}
}

// termRun is the goroutine doing one term's leader work.
type termRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (n *Node) startTerm(ctx context.Context, term uint64) *termRun {
	ctx, cancel := context.WithCancel(ctx)
	t := &termRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		n.lead(ctx, term)
	}()
	return t
}

// leaderTerm is the leader's work during one term.
type leaderTerm struct {
	n   *Node
	log *slog.Logger
	// start is when the term's work began, after the barrier: nodes not
	// heard from get a grace period from then before they count as dead.
	start    time.Time
	status   map[string]status // what the leader made of each node, for logging changes
	expanded map[string]expandKey
	inflight map[string]bool
	results  chan expansion
	wg       sync.WaitGroup // expansions in flight
}

// expandKey identifies what a task listing was made for: a connector's
// incarnation, config generation and restart count.
type expandKey struct {
	created, generation, restarts uint64
}

func keyOf(c *Connector) expandKey {
	return expandKey{created: c.Created, generation: c.Generation, restarts: c.Restarts}
}

type expansion struct {
	connector string
	key       expandKey
	tasks     []taskid.Spec
	err       error
}

// lead does the leader's duties until ctx ends with the term.
func (n *Node) lead(ctx context.Context, term uint64) {
	log := n.log.With("term", term)
	// The barrier makes every entry of earlier terms applied here before the
	// state is read and acted on.
	for {
		err := waitFuture(ctx, n.raft.Barrier(applyTimeout))
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("leader barrier failed, retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	l := &leaderTerm{
		n:        n,
		log:      log,
		start:    time.Now(),
		status:   map[string]status{},
		expanded: map[string]expandKey{},
		inflight: map[string]bool{},
		results:  make(chan expansion),
	}
	log.Info("leading", "index", n.State().Index())
	if err := n.stampClusterID(ctx); err != nil {
		log.Error("the cluster's id", "err", err)
	}
	defer l.wg.Wait()
	l.loop(ctx)
}

func (l *leaderTerm) loop(ctx context.Context) {
	// Half a heartbeat interval: a dead node is noticed at most that late.
	tick := time.NewTicker(l.n.cfg.HeartbeatInterval / 2)
	defer tick.Stop()
	expandTick := time.NewTicker(l.n.cfg.ExpandInterval)
	defer expandTick.Stop()
	members, expandAll := true, false
	for {
		if members {
			l.reconcileMembers(ctx)
			members = false
		}
		st, changed := l.n.Watch()
		l.scheduleExpansions(ctx, st, expandAll)
		expandAll = false
		l.rebalance(ctx, st)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick.C:
			members = true
		case <-l.n.kick:
			members = true
		case <-expandTick.C:
			expandAll = true
		case r := <-l.results:
			l.applyExpansion(ctx, r)
		}
	}
}

// timing is what statusOf needs this term. A node not heard from this term
// counts as heard at start+grace-SessionTimeout, so that, silent, it is
// declared dead grace into the term, grace being Lease plus Raft's leader
// lease. By then a node that reached no leader this term has fenced itself:
// its last answered heartbeat came at the latest from the previous leader,
// which stepped down within two Raft leader leases of losing its quorum, and
// followers wait as long (raftHeartbeatTimeout) before electing this one; the
// extra leader lease is margin.
func (l *leaderTerm) timing() timing {
	cfg := l.n.cfg
	return timing{self: cfg.NodeID, session: cfg.SessionTimeout, unheardSince: l.start.Add(cfg.Lease + raftLeaderLease - cfg.SessionTimeout)}
}

// liveNodes returns the members that keep their tasks, sorted, logging each
// change of what the leader makes of a node.
func (l *leaderTerm) liveNodes(st *State, now time.Time) []string {
	m, t := l.n.memory(), l.timing()
	var live []string
	for _, id := range slices.Sorted(maps.Keys(st.nodes)) {
		s := statusOf(id, m, t, now)
		if prev := l.status[id]; s != prev {
			l.logStatus(id, prev, s, m)
		}
		l.status[id] = s
		if s.live() {
			live = append(live, id)
		}
	}
	for id := range l.status {
		if _, member := st.nodes[id]; !member {
			delete(l.status, id)
		}
	}
	return live
}

// logStatus logs that node id went from prev to s.
func (l *leaderTerm) logStatus(id string, prev, s status, m memory) {
	switch s {
	case statusAlive:
		l.log.Info("node is back", "member", id)
	case statusRestarting:
		l.log.Info("node restarting: its tasks wait for it", "member", id, "until", m.stopped[id])
	case statusStopped:
		if prev == statusRestarting {
			l.log.Warn("node did not come back in time after its restart: moving its tasks", "member", id)
			return
		}
		l.log.Info("node stopping: moving its tasks", "member", id)
	case statusGone:
		l.log.Warn("node gone: its connection to the leader was refused or reset, moving its tasks",
			"member", id, "at", m.resets[id], "last_heartbeat", m.beats[id])
	case statusSilent:
		l.log.Warn("node declared dead: no heartbeat within the session timeout, moving its tasks",
			"member", id, "last_heartbeat", m.beats[id], "session_timeout", l.n.cfg.SessionTimeout)
	}
}

// rebalance assigns every task of the RUNNING and PAUSED connectors to a live
// node and moves the tasks of the others, in one command and one new epoch.
func (l *leaderTerm) rebalance(ctx context.Context, st *State) {
	live := l.liveNodes(st, time.Now())
	if len(live) == 0 {
		return
	}
	type ref struct{ connector, task, from string }
	var (
		tasks []assign.Task
		refs  = map[string]ref{}
		prev  = map[string]string{}
	)
	for _, name := range slices.Sorted(maps.Keys(st.connectors)) {
		c := st.connectors[name]
		if c.State == StateStopped {
			continue // unassigned when it stopped
		}
		for _, t := range c.Tasks {
			key := name + "\x00" + t.Name()
			tasks = append(tasks, assign.Task{ID: key, Group: name})
			refs[key] = ref{connector: name, task: t.Name(), from: t.Node}
			if t.Node != "" {
				prev[key] = t.Node
			}
		}
	}
	next := assign.Assign(tasks, live, prev)
	var moves []moveV1
	for _, t := range tasks {
		if r := refs[t.ID]; next[t.ID] != r.from {
			moves = append(moves, moveV1{Connector: r.connector, Task: r.task, Node: next[t.ID]})
		}
	}
	if len(moves) == 0 {
		return
	}
	if _, err := l.n.apply(ctx, &assignV1{Moves: moves}); err != nil {
		if ctx.Err() == nil {
			l.log.Warn("assign tasks failed", "moves", len(moves), "err", err)
		}
		return
	}
	epoch := l.n.State().Epoch()
	for _, m := range moves {
		l.log.Info("task assigned", "connector", m.Connector, "task", m.Task, "owner", m.Node,
			"from", refs[m.Connector+"\x00"+m.Task].from, "epoch", epoch)
	}
}

// scheduleExpansions starts listing the tasks of every connector whose
// config, incarnation or restart count changed since its last listing this
// term, or of all of them if all; one listing per connector at a time.
func (l *leaderTerm) scheduleExpansions(ctx context.Context, st *State, all bool) {
	for name := range l.expanded {
		if _, ok := st.connectors[name]; !ok {
			delete(l.expanded, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(st.connectors)) {
		c := st.connectors[name]
		key := keyOf(c)
		if c.State == StateStopped || l.inflight[name] || (!all && l.expanded[name] == key) {
			continue
		}
		l.inflight[name] = true
		config := maps.Clone(c.Config)
		l.wg.Go(func() {
			ectx, cancel := context.WithTimeout(ctx, l.n.cfg.ExpandInterval)
			defer cancel()
			specs, err := l.n.cfg.Expand(ectx, name, config)
			select {
			case l.results <- expansion{connector: name, key: key, tasks: specs, err: err}:
			case <-ctx.Done():
			}
		})
	}
}

func (l *leaderTerm) applyExpansion(ctx context.Context, r expansion) {
	delete(l.inflight, r.connector)
	l.expanded[r.connector] = r.key
	log := l.log.With("connector", r.connector)
	if r.err != nil {
		log.Warn("listing the connector's tasks failed; keeping its current tasks until the next try",
			"err", r.err, "retry_in", l.n.cfg.ExpandInterval)
		return
	}
	c, ok := l.n.State().connectors[r.connector]
	if !ok || keyOf(c) != r.key {
		delete(l.expanded, r.connector) // changed meanwhile: list again
		return
	}
	if c.TasksGeneration == c.Generation && sameTasks(c.Tasks, r.tasks) {
		return
	}
	_, err := l.n.apply(ctx, &setTasksV1{Connector: r.connector, Generation: r.key.generation, Tasks: r.tasks})
	switch {
	case errors.Is(err, ErrStaleGeneration), errors.Is(err, ErrConnectorNotFound):
		delete(l.expanded, r.connector)
	case err != nil:
		if ctx.Err() == nil {
			log.Warn("recording the connector's tasks failed", "err", err)
		}
	default:
		log.Info("connector tasks listed", "tasks", len(r.tasks), "generation", r.key.generation)
	}
}

func sameTasks(have []Task, specs []taskid.Spec) bool {
	if len(have) != len(specs) {
		return false
	}
	names := make(map[string]bool, len(have))
	for _, t := range have {
		names[t.Name()] = true
	}
	for _, s := range specs {
		if !names[s.Name()] {
			return false
		}
	}
	return true
}

// reconcileMembers keeps the node registry in line with the Raft
// configuration, removes nodes silent for DeadNodeRemoval and promotes live
// non-voters while there are fewer than Voters voters.
func (l *leaderTerm) reconcileMembers(ctx context.Context) {
	cf := l.n.raft.GetConfiguration()
	if err := waitFuture(ctx, cf); err != nil {
		if ctx.Err() == nil {
			l.log.Warn("read raft configuration failed", "err", err)
		}
		return
	}
	servers := slices.SortedFunc(slices.Values(cf.Configuration().Servers), func(a, b raft.Server) int { return cmp.Compare(a.ID, b.ID) })
	st := l.n.State()
	now := time.Now()
	beats := l.n.memory().beats
	l.n.mu.Lock()
	heard := maps.Clone(l.n.httpAddrs)
	l.n.mu.Unlock()

	inRaft := map[string]bool{}
	voters := 0
	for _, s := range servers {
		id := string(s.ID)
		inRaft[id] = true
		if s.Suffrage == raft.Voter {
			voters++
		}
		have, recorded := st.nodes[id]
		want := NodeInfo{ID: id, RaftAddr: string(s.Address), HTTPAddr: have.HTTPAddr, Voter: s.Suffrage == raft.Voter}
		switch {
		case id == l.n.cfg.NodeID:
			want.HTTPAddr = l.n.cfg.HTTPAdvertise
		case heard[id] != "":
			want.HTTPAddr = heard[id]
		case want.HTTPAddr == "":
			want.HTTPAddr = l.n.httpAddrOf(st, id)
		}
		if recorded && have == want {
			continue
		}
		if _, err := l.n.apply(ctx, &putNodeV1{Node: want}); err != nil {
			l.log.Warn("record node failed", "member", id, "err", err)
			continue
		}
		l.log.Info("node recorded", "member", id, "raft_addr", want.RaftAddr, "http_addr", want.HTTPAddr, "voter", want.Voter)
	}
	for id := range st.nodes {
		if inRaft[id] {
			continue
		}
		if _, err := l.n.apply(ctx, &removeNodeV1{ID: id}); err != nil {
			l.log.Warn("forget removed node failed", "member", id, "err", err)
		}
	}

	if l.n.cfg.DeadNodeRemoval > 0 {
		for _, s := range servers {
			id := string(s.ID)
			last, ok := beats[id]
			if !ok {
				last = l.start
			}
			if id == l.n.cfg.NodeID || now.Sub(last) <= l.n.cfg.DeadNodeRemoval {
				continue
			}
			l.log.Warn("removing a node silent for longer than the dead node removal time", "member", id, "silent_since", last)
			if err := l.n.removeMember(ctx, id); err != nil {
				l.log.Warn("remove dead node failed", "member", id, "err", err)
				continue
			}
			inRaft[id] = false
			if s.Suffrage == raft.Voter {
				voters--
			}
		}
	}

	for _, s := range servers {
		if voters >= l.n.cfg.Voters {
			break
		}
		id := string(s.ID)
		if s.Suffrage != raft.Nonvoter || !inRaft[id] {
			continue
		}
		if last, ok := beats[id]; !ok || now.Sub(last) > l.n.cfg.SessionTimeout {
			continue
		}
		if err := waitFuture(ctx, l.n.raft.AddVoter(s.ID, s.Address, 0, applyTimeout)); err != nil {
			l.log.Warn("promote non-voter failed", "member", id, "err", err)
			continue
		}
		voters++
		l.log.Info("promoted a non-voter to voter", "member", id, "voters", voters)
	}
}
