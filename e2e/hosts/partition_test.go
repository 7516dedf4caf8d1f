//go:build e2e

package hosts

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mongorelay/mongorelay/e2e/internal/clusterapi"
	"github.com/mongorelay/mongorelay/e2e/internal/traffic"
)

// TestThreeHostsThroughPartitionsRestartsAndALostMajority runs 3 nodes on 3 hosts of their own (network namespaces on
// one bridge) under a steady 1,000 writes/s, and, one after another: cuts a follower off (its
// link down), then the leader, then only the link between the two followers, healing each
// before the next; then restarts every node in turn (SIGTERM, start, healthy, next). After
// each step every write acknowledged since the tasks first streamed must be on Kafka (lost 0).
// A cut-off node must fence itself within worker.lease of the cut, the others must run its
// tasks, and once healed it must rejoin and hold tasks again; severing two followers must
// change nothing; during the rolling restart no task may be without a running owner for
// longer than the failover bound. Last, two nodes die for good, and the survivor, recovered
// from a peers.json, runs every task alone. The figures measured go to the log, gathered at
// the end.
func TestThreeHostsThroughPartitionsRestartsAndALostMajority(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	began := time.Now()
	b := newBed(ctx, t)
	sum := &summary{}

	t.Run("cut off a follower", func(t *testing.T) {
		leader := b.leader(bound, b.nodes...)
		b.cutOff(ctx, t, sum, "follower", b.busiest(b.others(leader)))
	})
	t.Run("cut off the leader", func(t *testing.T) {
		b.cutOff(ctx, t, sum, "leader", b.leader(bound, b.nodes...))
	})
	t.Run("sever two followers", func(t *testing.T) { b.severFollowers(ctx, t, sum) })
	t.Run("rolling restart", func(t *testing.T) { b.rollingRestart(ctx, t, sum) })
	t.Run("lose a majority and recover", func(t *testing.T) { b.loseMajority(ctx, t, sum) })

	t.Logf("measured (worker.lease %s, worker.session.timeout %s, %d tasks, %d writes/s):", lease, sessionTimeout, totalTasks, writeRate)
	for _, l := range sum.lines {
		t.Logf("  %s", l)
	}
	t.Logf("the whole test took %s", time.Since(began).Round(time.Second))
}

// busiest returns the node of among holding the most tasks.
func (b *bed) busiest(among []*node) *node {
	b.t.Helper()
	ov, err := clusterapi.GetOverview(among[0].http)
	if err != nil {
		b.t.Fatal(err)
	}
	best := among[0]
	for _, n := range among[1:] {
		if ov.PerNode()[n.id] > ov.PerNode()[best.id] {
			best = n
		}
	}
	return best
}

// cutOff takes victim's link down, measures how long it takes to fence itself and the others
// to run its tasks, heals the link, and measures how long until it runs tasks again.
func (b *bed) cutOff(ctx context.Context, t *testing.T, sum *summary, role string, victim *node) {
	majority := b.others(victim)
	b.settled(bound, b.nodes, holding(victim))
	ov, err := clusterapi.GetOverview(majority[0].http)
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]bool{}
	for _, a := range ov.Assignments {
		if a.Node == victim.id {
			held[connector+"."+a.Task] = true // its records' topic#shard: the topic prefix is the connector's name
		}
	}

	t0 := time.Now()
	if err := b.lab.Cut(ctx, victim.host); err != nil {
		t.Fatal(err)
	}
	healed := false
	defer func() {
		if !healed {
			_ = b.lab.Heal(context.Background(), victim.host)
		}
	}()
	elected := "no election"
	if role == "leader" {
		next := b.leader(10*time.Second, majority...)
		elected = fmt.Sprintf("%s elected after %s", next.id, time.Since(t0).Round(time.Millisecond))
	}
	// Both clocks run from the cut: the victim's log says when it fenced itself, the
	// majority's status when every task ran on one of them.
	var fenced, moved time.Duration
	deadline := t0.Add(bound + 10*time.Second)
	for fenced == 0 || moved == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s cut off: fenced after %s, every task on %v after %s (0: not yet) at the deadline",
				victim.id, fenced, ids(majority), moved)
		}
		if fenced == 0 {
			if at, ok := victim.loggedAfter(t0, "fenced: "); ok {
				fenced = max(at.Sub(t0), time.Millisecond)
			}
		}
		if moved == 0 {
			if _, ok, _ := b.allRunning(majority); ok {
				moved = time.Since(t0)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if fenced > lease+fenceSlack {
		t.Errorf("%s fenced itself %s after the cut, want within worker.lease (%s, give or take %s)",
			victim.id, fenced.Round(time.Millisecond), lease, fenceSlack)
	}
	first := "none within 10s"
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		r, ok := b.cons.FirstAfter(t0, func(r traffic.Record) bool { return held[r.Task()] && !strings.HasPrefix(r.Writer, victim.id+"/") })
		if ok {
			first = fmt.Sprintf("%s (%s by %s)", r.At.Sub(t0).Round(time.Millisecond), r.Task(), r.Writer)
			// No two owners: the old owner had stopped before the first record of a new one arrived.
			if r.At.Sub(t0) <= fenced {
				t.Errorf("%s wrote a record of a task of %s %s after the cut, before %s fenced itself (%s)",
					r.Writer, victim.id, r.At.Sub(t0).Round(time.Millisecond), victim.id, fenced.Round(time.Millisecond))
			}
			break
		}
	}
	t.Logf("%s %s cut off (%d tasks): %s; it fenced itself after %s; %v ran all its tasks after %s; first record of a moved task after %s",
		role, victim.id, len(held), elected, fenced.Round(time.Millisecond), ids(majority), moved.Round(time.Millisecond), first)

	th := time.Now()
	if err := b.lab.Heal(ctx, victim.host); err != nil {
		t.Fatal(err)
	}
	healed = true
	recovered := b.settled(60*time.Second, b.nodes, holding(victim))
	rejoined := "not logged"
	if at, ok := victim.loggedAfter(th, "in touch with the leader"); ok {
		rejoined = at.Sub(th).Round(time.Millisecond).String()
	}
	t.Logf("%s healed: in touch with the leader after %s; every task RUNNING with %s holding some again after %s",
		victim.id, rejoined, victim.id, recovered.Round(time.Millisecond))
	b.delivered(t, 60*time.Second)
	sum.add("cut off the %s (%s, %d tasks): fenced after %s; the majority ran its tasks after %s (first moved record %s); healed: rejoined after %s, full recovery after %s; lost 0",
		role, victim.id, len(held), fenced.Round(time.Millisecond), moved.Round(time.Millisecond), first, rejoined, recovered.Round(time.Millisecond))
}

// severFollowers drops only what the two followers send each other for two session timeouts:
// each still reaches the leader and the servers, so nothing may change: no node fences
// itself, no task moves, the leader stays.
func (b *bed) severFollowers(ctx context.Context, t *testing.T, sum *summary) {
	b.settled(bound, b.nodes, nil)
	leader := b.leader(bound, b.nodes...)
	f := b.others(leader)
	before, err := clusterapi.GetOverview(leader.http)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := b.lab.Sever(ctx, f[0].host, f[1].host); err != nil {
		t.Fatal(err)
	}
	mended := false
	defer func() {
		if !mended {
			_ = b.lab.Mend(context.Background(), f[0].host, f[1].host)
		}
	}()
	samples, bad := 0, 0
	var firstBad string
	for time.Since(t0) < 2*sessionTimeout {
		ov, ok, why := b.allRunning(b.nodes)
		samples++
		switch {
		case !ok:
			bad++
			firstBad = firstOf(firstBad, fmt.Sprintf("after %s: %s", time.Since(t0).Round(time.Millisecond), why))
		case ov.Leader != leader.id:
			bad++
			firstBad = firstOf(firstBad, fmt.Sprintf("after %s: leader %s, was %s", time.Since(t0).Round(time.Millisecond), ov.Leader, leader.id))
		case !sameOwners(ov.Owners(), before.Owners()):
			bad++
			firstBad = firstOf(firstBad, fmt.Sprintf("after %s: tasks moved: %v", time.Since(t0).Round(time.Millisecond), ov.PerNode()))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := b.lab.Mend(ctx, f[0].host, f[1].host); err != nil {
		t.Fatal(err)
	}
	mended = true
	var fencedNodes []string
	for _, n := range b.nodes {
		if _, ok := n.loggedAfter(t0, "fenced: "); ok {
			fencedNodes = append(fencedNodes, n.id)
		}
	}
	if bad > 0 || len(fencedNodes) > 0 {
		t.Errorf("severing %s and %s changed the cluster: %d of %d samples off (first %s), fenced: %v",
			f[0].id, f[1].id, bad, samples, firstBad, fencedNodes)
	}
	t.Logf("%s and %s severed for %s: %d samples, every task RUNNING where it was, leader %s throughout, nobody fenced",
		f[0].id, f[1].id, 2*sessionTimeout, samples, leader.id)
	b.settled(bound, b.nodes, nil)
	b.delivered(t, 60*time.Second)
	sum.add("sever the followers %s and %s for %s: no fencing, no task moved, no election (%d samples); lost 0", f[0].id, f[1].id, 2*sessionTimeout, samples)
}

// firstOf keeps the first of two explanations.
func firstOf(first, next string) string {
	if first != "" {
		return first
	}
	return next
}

// rollingRestart restarts every node in turn, the followers first: SIGTERM, wait for the
// exit, start, wait for GET /health to say healthy and for the node to hold tasks again, next.
// A sampler reads the connector's status every 100 ms meanwhile and times how long each task
// goes without a RUNNING owner that is up (a node counts as down from its SIGTERM until it is
// healthy again).
func (b *bed) rollingRestart(ctx context.Context, t *testing.T, sum *summary) {
	b.settled(bound, b.nodes, nil)
	leader := b.leader(bound, b.nodes...)
	order := append(b.others(leader), leader)
	s := &ownerSampler{nodes: b.nodes, down: map[string]bool{}, since: map[int]time.Time{}, longest: map[int]time.Duration{}}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { s.run(sampleCtx) })
	began := time.Now()
	var steps []string
	for _, n := range order {
		s.setDown(n.id, true)
		t0 := time.Now()
		n.p.Stop(45 * time.Second)
		if err := n.p.Err(); err != nil {
			t.Errorf("%s exited with %v after SIGTERM, want 0", n.id, err)
		}
		stopped := time.Since(t0)
		b.start(n)
		clusterapi.WaitFor(t, 60*time.Second, n.id+" healthy", func() (bool, string) {
			hctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			status, err := clusterapi.Call(hctx, http.MethodGet, n.http, "/health", nil, nil)
			return status == http.StatusOK, fmt.Sprint(status, err)
		})
		healthy := time.Since(t0)
		s.setDown(n.id, false)
		b.settled(60*time.Second, b.nodes, holding(n))
		steps = append(steps, fmt.Sprintf("%s: exited %s after SIGTERM, healthy %s after it, holding tasks %s after it",
			n.id, stopped.Round(time.Millisecond), healthy.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond)))
		t.Log(steps[len(steps)-1])
	}
	stopSampling()
	wg.Wait()
	worst, task, samples := s.worst()
	t.Logf("rolling restart took %s; longest time a task went without a running owner: %s (task %d), over %d status samples",
		time.Since(began).Round(time.Millisecond), worst.Round(time.Millisecond), task, samples)
	if worst > bound {
		t.Errorf("task %d went %s without a running owner, more than the failover bound %s", task, worst.Round(time.Millisecond), bound)
	}
	if samples < 50 {
		t.Errorf("only %d status samples during the rolling restart: the sampler could not see the cluster", samples)
	}
	b.delivered(t, 60*time.Second)
	sum.add("rolling restart (%s): longest a task went without a running owner %s (bound %s, %d samples); lost 0",
		strings.Join(steps, "; "), worst.Round(time.Millisecond), bound, samples)
}

// ownerSampler times, per task, the spells without a RUNNING owner that is up.
type ownerSampler struct {
	nodes []*node

	mu      sync.Mutex
	down    map[string]bool
	since   map[int]time.Time // task id → when its current spell without an owner began
	longest map[int]time.Duration
	samples int
}

func (s *ownerSampler) setDown(id string, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down[id] = down
}

func (s *ownerSampler) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			s.close(time.Now())
			return
		case <-time.After(100 * time.Millisecond):
		}
		s.sample()
	}
}

// sample reads the status from the first node up that answers and updates the spells.
func (s *ownerSampler) sample() {
	s.mu.Lock()
	var up []*node
	for _, n := range s.nodes {
		if !s.down[n.id] {
			up = append(up, n)
		}
	}
	s.mu.Unlock()
	for _, n := range up {
		st, err := quickStatus(n.http)
		if err != nil || len(st.Tasks) != totalTasks {
			continue
		}
		now := time.Now()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.samples++
		for _, task := range st.Tasks {
			owned := task.State == "RUNNING" && task.WorkerID != "" && !s.down[task.WorkerID]
			since, open := s.since[task.ID]
			switch {
			case !owned && !open:
				s.since[task.ID] = now
			case owned && open:
				s.longest[task.ID] = max(s.longest[task.ID], now.Sub(since))
				delete(s.since, task.ID)
			}
		}
		return
	}
}

// close ends the spells still open at now.
func (s *ownerSampler) close(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, since := range s.since {
		s.longest[id] = max(s.longest[id], now.Sub(since))
	}
	clear(s.since)
}

// worst returns the longest spell, its task and the number of samples.
func (s *ownerSampler) worst() (time.Duration, int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var worst time.Duration
	task := -1
	for _, id := range slices.Sorted(maps.Keys(s.longest)) {
		if s.longest[id] > worst {
			worst, task = s.longest[id], id
		}
	}
	return worst, task, s.samples
}
