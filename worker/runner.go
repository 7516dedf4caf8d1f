package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/mongorelay/mongorelay/api/peer"
	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/tasks/connector"
)

// assignmentSource is what the runner needs of the coordinator (nodeAssignments).
type assignmentSource interface {
	// Assigned returns this node's assignments and a channel closed when they may have
	// changed.
	Assigned() ([]coordinator.Assignment, <-chan struct{})
	// Fenced reports whether the node must run no task at now.
	Fenced(now time.Time) bool
}

// nodeAssignments is the assignmentSource of a coordinator node.
type nodeAssignments struct{ *coordinator.Node }

func (n nodeAssignments) Assigned() ([]coordinator.Assignment, <-chan struct{}) {
	st, changed := n.Watch()
	return st.Assigned(n.ID()), changed
}

// neverFenced is the assignment source of a standalone process: the node is alone, so it is
// never out of touch with its leader.
type neverFenced struct{ assignmentSource }

func (neverFenced) Fenced(time.Time) bool { return false }

// runTaskFunc runs one assigned task until ctx ends (then it stops cleanly and returns nil)
// or the task fails.
type runTaskFunc func(ctx context.Context, a coordinator.Assignment) error

// restartPolicy says how a failed task is retried: after first, doubling up to max, at most
// limit runs in a row (none after a connector.Permanent error); then it stays FAILED until its assignment changes (a new owner, a
// config change, a restart request). A run that lasted longer than max counts as a fresh
// start.
type restartPolicy struct {
	first, max time.Duration
	limit      int
}

var defaultRestarts = restartPolicy{first: time.Second, max: 30 * time.Second, limit: 5}

func (p restartPolicy) delay(failures int) time.Duration {
	d := p.first
	for i := 1; i < failures && d < p.max; i++ {
		d *= 2
	}
	return min(d, p.max)
}

// runner runs exactly the tasks the cluster state assigns to this node, of RUNNING
// connectors (DESIGN.md 3): it starts a task when it is assigned here, stops it the moment its
// assignment changes (owner, epoch, config generation or restart count), never runs two
// instances of one task at once (a new run waits for the old one to finish), restarts failed
// tasks with backoff, and stops every task while the node is fenced, that is out of touch
// with the leader for worker.lease.
type runner struct {
	src      assignmentSource
	run      runTaskFunc
	log      *slog.Logger
	restarts restartPolicy
	// tick is how often fencing and retry times are checked between state changes.
	tick time.Duration

	mu     sync.Mutex
	runs   map[string]*taskRun      // by taskKey, the tasks this node should run
	ending map[string]chan struct{} // by taskKey, runs stopped and not finished yet
	fenced bool
	// failedAtStop are the tasks whose last run had failed when Run stopped them.
	failedAtStop []error
	exits        chan struct{}
	wg           sync.WaitGroup
}

// taskState is a task run's state on this node, as its heartbeats report it (the words Kafka
// Connect uses; the REST API shows them as they are).
type taskState string

// The states of a task run.
const (
	taskRunning    taskState = "RUNNING"
	taskRestarting taskState = "RESTARTING"
	taskFailed     taskState = "FAILED"
)

// taskRun is one assignment of a task to this node.
type taskRun struct {
	a      coordinator.Assignment
	id     runID
	cancel context.CancelFunc // nil while not running
	done   chan struct{}      // closed when the current (or last) run returned
	// state is "" until the first run starts.
	state    taskState
	trace    string
	failures int
	retryAt  time.Time
}

// runID is what makes a task run a new one: the owner, epoch, config generation and restart
// count of its assignment.
type runID struct {
	node                        string
	epoch, generation, restarts uint64
}

func runIDOf(a coordinator.Assignment) runID {
	return runID{node: a.Node, epoch: a.Epoch, generation: a.Generation, restarts: a.Restarts}
}

func taskKey(connector, task string) string { return connector + "\x00" + task }

func newRunner(src assignmentSource, run runTaskFunc, log *slog.Logger) *runner {
	return &runner{
		src: src, run: run, log: log, restarts: defaultRestarts, tick: 100 * time.Millisecond,
		runs: map[string]*taskRun{}, ending: map[string]chan struct{}{}, exits: make(chan struct{}, 1),
		fenced: true, // until the first heartbeat is answered
	}
}

// Run follows the assignments until ctx ends, then stops every task and waits for them.
func (r *runner) Run(ctx context.Context) {
	tick := time.NewTicker(r.tick)
	defer tick.Stop()
	defer r.stopAll()
	for {
		assigned, changed := r.src.Assigned()
		r.reconcile(ctx, assigned, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		case <-r.exits:
		}
	}
}

func (r *runner) stopAll() {
	r.mu.Lock()
	for _, k := range slices.Sorted(maps.Keys(r.runs)) {
		run := r.runs[k]
		if run.state == taskFailed || run.state == taskRestarting {
			r.failedAtStop = append(r.failedAtStop, fmt.Errorf("connector %s task %s: %s", run.a.Connector, run.a.Task, run.trace))
		}
		r.endLocked(k, run)
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// reconcile starts, stops and restarts tasks to match this node's assignments at now.
func (r *runner) reconcile(ctx context.Context, assigned []coordinator.Assignment, now time.Time) {
	fenced := r.src.Fenced(now)
	want := map[string]coordinator.Assignment{}
	if !fenced {
		for _, a := range assigned {
			if a.State == coordinator.StateRunning {
				want[taskKey(a.Connector, a.Task)] = a
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if fenced != r.fenced {
		r.fenced = fenced
		if fenced {
			r.log.Warn("fenced: the leader has not been reached for worker.lease; stopping every task so that no two nodes write one task",
				"tasks", len(r.runs))
		} else {
			r.log.Info("in touch with the leader: running the assigned tasks", "tasks", len(want))
		}
	}
	for k := range r.ending {
		select {
		case <-r.ending[k]:
			delete(r.ending, k)
		default:
		}
	}
	for k, run := range r.runs {
		if a, ok := want[k]; ok && runIDOf(a) == run.id {
			run.a = a // the config map may be a newer copy of the same generation
			continue
		}
		r.endLocked(k, run)
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		a := want[k]
		run, ok := r.runs[k]
		switch {
		case !ok:
			run = &taskRun{a: a, id: runIDOf(a)}
			r.runs[k] = run
			r.startLocked(ctx, k, run)
		case run.cancel == nil && run.state == taskRestarting && !now.Before(run.retryAt):
			r.startLocked(ctx, k, run)
		}
	}
}

// endLocked stops run (if running) and forgets it; a later run of the task waits for it.
func (r *runner) endLocked(k string, run *taskRun) {
	delete(r.runs, k)
	if run.cancel == nil {
		return
	}
	run.cancel()
	run.cancel = nil
	r.ending[k] = run.done
	r.log.Info("stopping task: its assignment changed", "connector", run.a.Connector, "task", run.a.Task, "epoch", run.a.Epoch)
}

func (r *runner) startLocked(ctx context.Context, k string, run *taskRun) {
	runCtx, cancel := context.WithCancel(ctx)
	prev := r.ending[k]
	done := make(chan struct{})
	run.cancel, run.done = cancel, done
	a, attempt := run.a, run.failures+1
	log := r.log.With("connector", a.Connector, "task", a.Task, "epoch", a.Epoch)
	r.wg.Go(func() {
		defer close(done)
		defer cancel()
		if prev != nil {
			select {
			case <-prev:
			case <-runCtx.Done():
				return
			}
		}
		r.mu.Lock()
		if runCtx.Err() == nil {
			run.state, run.trace = taskRunning, ""
		}
		r.mu.Unlock()
		if runCtx.Err() != nil {
			return
		}
		log.Info("task starting", "attempt", attempt)
		started := time.Now()
		err := runRecovered(runCtx, r.run, a)
		if runCtx.Err() != nil {
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Warn("task stopped with an error", "err", err)
			} else {
				log.Info("task stopped")
			}
			return
		}
		r.failed(run, err, started, log)
	})
}

// runRecovered runs a task, turning a panic into the task's error: a panic fails that task
// only (DESIGN.md 13), which is then restarted like any failed task.
func runRecovered(ctx context.Context, run runTaskFunc, a coordinator.Assignment) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("task panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return run(ctx, a)
}

// failed records a run that ended without being asked to, and schedules its retry.
func (r *runner) failed(run *taskRun, err error, started time.Time, log *slog.Logger) {
	if err == nil {
		err = errors.New("the task stopped by itself")
	}
	now := time.Now()
	r.mu.Lock()
	run.cancel = nil
	if now.Sub(started) > r.restarts.max {
		run.failures = 0
	}
	run.failures++
	run.trace = err.Error()
	if run.failures >= r.restarts.limit || connector.IsPermanent(err) {
		run.state = taskFailed
		log.Error("task FAILED", "attempts", run.failures, "err", err)
	} else {
		run.state = taskRestarting
		run.retryAt = now.Add(r.restarts.delay(run.failures))
		run.trace = fmt.Sprintf("%s (restarting in %s, attempt %d of %d)", err, r.restarts.delay(run.failures), run.failures+1, r.restarts.limit)
		log.Warn("task failed; restarting it", "err", err, "in", r.restarts.delay(run.failures), "failures", run.failures)
	}
	r.mu.Unlock()
	select {
	case r.exits <- struct{}{}:
	default:
	}
}

// failures returns, once Run has returned, an error naming each task whose last run had
// failed (FAILED, or waiting to restart) when it stopped, or nil.
func (r *runner) failures() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.failedAtStop) == 0 {
		return nil
	}
	return fmt.Errorf("stopped with %d FAILED task(s); fix the cause and restart to resume them: %w",
		len(r.failedAtStop), errors.Join(r.failedAtStop...))
}

// Reports returns the state of every task this node should run, for its heartbeat. A task
// waiting for its previous run to end is not reported yet.
func (r *runner) Reports() []peer.TaskReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]peer.TaskReport, 0, len(r.runs))
	for _, k := range slices.Sorted(maps.Keys(r.runs)) {
		run := r.runs[k]
		if run.state == "" {
			continue
		}
		out = append(out, peer.TaskReport{Connector: run.a.Connector, Task: run.a.Task, Epoch: run.a.Epoch, State: string(run.state), Trace: run.trace})
	}
	return out
}

// Running counts the tasks this node runs now.
func (r *runner) Running() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, run := range r.runs {
		if run.cancel != nil {
			n++
		}
	}
	return n
}

// Fenced reports whether the runner stopped every task because the node is fenced.
func (r *runner) Fenced() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fenced
}
