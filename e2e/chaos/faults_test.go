//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/mongorelay/mongorelay/e2e/internal/clusterapi"
	"github.com/mongorelay/mongorelay/e2e/internal/taskrecords"
)

// fault is one injected fault: a kill -9 (the node restarted after a while) or a SIGSTOP (the
// node continued after a while).
type fault struct {
	kind     string // "kill -9" or "SIGSTOP"
	node     string
	leader   bool      // the node led the cluster when the fault hit it
	at, back time.Time // the signal; the restart or SIGCONT
	held     []string  // the tasks the node held, as topic#shard
}

// schedule injects faults from its seed every so often: a kill -9 halfway through each period
// of every, a SIGSTOP at its end. Each fault picks the leader (one draw in 4) or one of n1..n3;
// a killed node restarts after 2–7 s and a paused one continues after 2–9 s (at most half a
// period), so one voter at most is down at a time: 3 voters tolerate that.
type schedule struct {
	c     *cluster
	rng   *rand.Rand
	every time.Duration
	// taskOf maps an assignment (connector, task name) to the records' topic#shard.
	taskOf func(connector, task string) string
}

// run injects faults from start until done is closed, and returns them once the last is over.
func (s *schedule) run(ctx context.Context, start time.Time, done <-chan struct{}) ([]fault, error) {
	var faults []fault
	half := s.every / 2
	for cycle := 0; ; cycle++ {
		// The draws of a cycle, in a fixed order: the same seed gives the same schedule.
		killPick, pausePick := s.rng.IntN(4), s.rng.IntN(4)
		down := min(2*time.Second+time.Duration(s.rng.IntN(6))*time.Second, half-time.Second)
		paused := min(2*time.Second+time.Duration(s.rng.IntN(8))*time.Second, half-time.Second)
		base := start.Add(time.Duration(cycle) * s.every)
		for _, step := range []struct {
			at   time.Time
			kill bool
			pick int
			wait time.Duration
		}{{base.Add(half), true, killPick, down}, {base.Add(s.every), false, pausePick, paused}} {
			select {
			case <-ctx.Done():
				return faults, ctx.Err()
			case <-done:
				return faults, nil
			case <-time.After(time.Until(step.at)):
			}
			f, err := s.inject(ctx, step.kill, step.pick, step.wait)
			if err != nil {
				return faults, err
			}
			faults = append(faults, f)
		}
	}
}

// inject hits the picked node (0: the leader, i: n<i>) and undoes the fault after wait.
func (s *schedule) inject(ctx context.Context, kill bool, pick int, wait time.Duration) (fault, error) {
	f := fault{kind: "SIGSTOP"}
	if kill {
		f.kind = "kill -9"
	}
	leader, ov := s.leader(ctx)
	victim := s.c.nodes[max(pick, 1)-1]
	if pick == 0 && leader != nil {
		victim = leader
	}
	f.node, f.leader = victim.id, leader == victim
	for _, a := range ov.Assignments {
		if a.Node == victim.id {
			f.held = append(f.held, s.taskOf(a.Connector, a.Task))
		}
	}
	f.at = time.Now()
	var err error
	if kill {
		err = s.c.kill9(victim)
	} else {
		err = s.c.pause(victim, true)
	}
	if err != nil {
		return f, err
	}
	select {
	case <-ctx.Done():
		return f, ctx.Err()
	case <-time.After(wait):
	}
	f.back = time.Now()
	if kill {
		err = s.c.start(victim)
	} else {
		err = s.c.pause(victim, false)
	}
	return f, err
}

// leader asks the live nodes for the leader and the assignments, for up to 5 s (a previous
// fault may have left an election going); nil if they do not agree by then.
func (s *schedule) leader(ctx context.Context) (*node, clusterapi.Overview) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, ov, err := s.c.view()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return n, ov
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// failover is how long after a fault the first record of a task the node held came from
// another process than the one hit: a new writer (another node, or a new epoch), or, after a
// kill, the node itself once restarted. Records after until (the next fault) do not count.
func failover(recs []taskrecords.Record, f fault, until time.Time) (time.Duration, string, bool) {
	held := map[string]bool{}
	for _, t := range f.held {
		held[t] = true
	}
	before := map[string]string{} // task → its writer before the fault
	for _, r := range recs {
		task := r.Topic + "#" + r.Shard
		switch {
		case !held[task]:
		case !r.At.After(f.at):
			before[task] = r.Writer
		case r.At.After(until):
			return 0, "", false
		case r.Writer != before[task] || (f.kind == "kill -9" && r.At.After(f.back)):
			return r.At.Sub(f.at), fmt.Sprintf("%s by %s", task, r.Writer), true
		}
	}
	return 0, "", false
}

// describe is one line about a fault and its failover.
func describe(recs []taskrecords.Record, f fault, until, t0 time.Time) (string, time.Duration, bool) {
	who := f.node
	if f.leader {
		who += " (leader)"
	}
	line := fmt.Sprintf("%6.1fs %-7s %-12s %d tasks, back after %.1fs", f.at.Sub(t0).Seconds(), f.kind, who, len(f.held), f.back.Sub(f.at).Seconds())
	took, what, ok := failover(recs, f, until)
	if !ok {
		return line + "; no task moved", 0, false
	}
	return line + fmt.Sprintf("; first record of a moved task after %s (%s)", took.Round(time.Millisecond), what), took, true
}
