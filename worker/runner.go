package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
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
// or the task fails; degraded reports the run alive but stalled, "" clearing it
// (connector.Task.Degraded).
type runTaskFunc func(ctx context.Context, a coordinator.Assignment, degraded func(reason string)) error

// retryTiming is how the runner paces the attempts of a failing task; each task's own
// connector.Retry (errors.retry.*) bounds the backoff and the streak.
type retryTiming struct {
	// first is the wait after a first failure; it doubles with each failure in a row, up to
	// the task's errors.retry.delay.max.ms.
	first time.Duration
	// healthyRun is how long a run must stay healthy to end its task's streak of failures.
	healthyRun time.Duration
	// fencedWait is the least wait after a run fenced by a newer owner of its task: longer
	// than the leader takes to move a task (worker.session.timeout), so that the assignment
	// moves away first and this node never fences the new owner back.
	fencedWait time.Duration
}

var defaultRetryTiming = retryTiming{first: time.Second, healthyRun: connector.HealthyRun, fencedWait: 10 * time.Second}

// delay is the wait before the next attempt after failures failures in a row.
func (p retryTiming) delay(failures int, limit time.Duration) time.Duration {
	d := min(p.first, limit)
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// runner runs exactly the tasks the cluster state assigns to this node, of RUNNING
// connectors (DESIGN.md 3): it starts a task when it is assigned here, stops it the moment its
// assignment changes (owner, epoch, config generation or restart count), never runs two
// instances of one task at once (a new run waits for the old one to finish), retries failed
// tasks with backoff (DESIGN.md 13: retriable failures for as long as they last, unless the
// task's errors.retry.timeout bounds them; permanent ones not at all), and stops every task
// while the node is fenced, that is out of touch with the leader for worker.lease.
type runner struct {
	src   assignmentSource
	run   runTaskFunc
	log   *slog.Logger
	retry retryTiming
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
	retry  connector.Retry    // the assignment's errors.retry.* keys
	cancel context.CancelFunc // nil while not running
	done   chan struct{}      // closed when the current (or last) run returned
	// seq counts the runs started, so that a late report of an earlier run is ignored.
	seq int
	// state is "" until the first run starts.
	state taskState
	trace string
	// degraded is why the running run is stalled, "" while it is healthy.
	degraded string
	// healthySince is when the current run last became healthy (its start, or the end of
	// its last degraded spell); zero while degraded.
	healthySince time.Time
	// failures counts the failed runs in a row since failingSince, the first of them.
	failures     int
	failingSince time.Time
	retryAt      time.Time
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
		src: src, run: run, log: log, retry: defaultRetryTiming, tick: 100 * time.Millisecond,
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
			run = &taskRun{a: a, id: runIDOf(a), retry: r.retryOf(a)}
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

// retryOf reads how a's task is retried. Its kind validated the keys when the config was
// stored; a bad value nonetheless (a config stored by another version) keeps the defaults.
func (r *runner) retryOf(a coordinator.Assignment) connector.Retry {
	retry, problems := connector.ParseRetry(a.Config)
	for _, p := range problems {
		r.log.Warn("ignoring a bad retry setting: using its default", "connector", a.Connector, "task", a.Task, "problem", p.String())
	}
	return retry
}

func (r *runner) startLocked(ctx context.Context, k string, run *taskRun) {
	runCtx, cancel := context.WithCancel(ctx)
	prev := r.ending[k]
	done := make(chan struct{})
	run.cancel, run.done = cancel, done
	run.seq++
	a, attempt, seq := run.a, run.failures+1, run.seq
	log := r.log.With("connector", a.Connector, "task", a.Task, "epoch", a.Epoch)
	degraded := func(reason string) { r.degraded(run, seq, reason, log) }
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
			run.state, run.trace, run.degraded, run.healthySince = taskRunning, "", "", time.Now()
		}
		r.mu.Unlock()
		if runCtx.Err() != nil {
			return
		}
		log.Info("task starting", "attempt", attempt)
		err := runRecovered(runCtx, r.run, a, degraded)
		if runCtx.Err() != nil {
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Warn("task stopped with an error", "err", err)
			} else {
				log.Info("task stopped")
			}
			return
		}
		r.failed(run, err, log)
	})
}

// runRecovered runs a task, turning a panic into the task's error: a panic fails that task
// only (DESIGN.md 13), at once, since the same input would make it panic again.
func runRecovered(ctx context.Context, run runTaskFunc, a coordinator.Assignment, degraded func(string)) (err error) {
	defer connector.Recover(&err)
	return run(ctx, a, degraded)
}

// degraded records what run number seq of a task reported (connector.Task.Degraded), if that
// run is still the one running.
func (r *runner) degraded(run *taskRun, seq int, reason string, log *slog.Logger) {
	r.mu.Lock()
	was := run.degraded
	if run.seq != seq || run.state != taskRunning || was == reason {
		r.mu.Unlock()
		return
	}
	run.degraded = reason
	switch {
	case reason == "":
		run.healthySince = time.Now()
	case was == "":
		run.healthySince = time.Time{}
	}
	r.mu.Unlock()
	switch {
	case reason == "":
		log.Info("task healthy again", "was", was)
	case was == "":
		log.Warn("task degraded: running but stalled", "reason", reason)
	}
}

// failed records a run that ended without being asked to: the task is FAILED when the error
// is permanent or the task has failed for longer than its errors.retry.timeout, else it is
// RESTARTING until its next attempt, after a backoff.
func (r *runner) failed(run *taskRun, err error, log *slog.Logger) {
	if err == nil {
		err = errors.New("the task stopped by itself")
	}
	now := time.Now()
	r.mu.Lock()
	run.cancel = nil
	healthy := !run.healthySince.IsZero() && now.Sub(run.healthySince) >= r.retry.healthyRun
	run.degraded = ""
	if healthy || run.failures == 0 {
		run.failures, run.failingSince = 0, now
	}
	run.failures++
	var why string // why the task is FAILED rather than retried; "" retries it
	switch {
	case connector.IsPermanent(err):
		why = "a restart cannot fix this error"
	case run.retry.Timeout == 0:
		why = fmt.Sprintf("%s=0 fails a task at its first error", connector.RetryTimeoutKey)
	case run.retry.Timeout > 0 && now.Sub(run.failingSince) >= run.retry.Timeout:
		why = fmt.Sprintf("failing since %s, longer than %s=%d allows", stamp(run.failingSince), connector.RetryTimeoutKey, run.retry.Timeout.Milliseconds())
	}
	if why != "" {
		run.state, run.trace = taskFailed, failedTrace(err, why, run.failures)
		log.Error("task FAILED", "attempts", run.failures, "why", why, "err", err)
	} else {
		delay := r.retry.delay(run.failures, run.retry.DelayMax)
		if connector.IsFenced(err) {
			delay = max(delay, r.retry.fencedWait)
		}
		run.state, run.retryAt = taskRestarting, now.Add(delay)
		run.trace = restartingTrace(err, run, delay)
		log.Warn("task failed; restarting it", "err", err, "in", delay, "attempt", run.failures, "failing_since", run.failingSince)
	}
	r.mu.Unlock()
	select {
	case r.exits <- struct{}{}:
	default:
	}
}

// failedTrace is a FAILED task's trace: the error, which says its fix when it is permanent,
// and why the runner gave up when the error alone does not.
func failedTrace(err error, why string, attempts int) string {
	if connector.IsPermanent(err) {
		return err.Error()
	}
	return fmt.Sprintf("%s\n\nFAILED after %d attempt(s): %s. Fix the cause, then restart the task "+
		"(POST /connectors/{name}/tasks/{id}/restart), or raise %s.", err, attempts, why, connector.RetryTimeoutKey)
}

// restartingTrace is the trace of a task waiting to retry: the error, since when the task has
// been failing, how often, when the next attempt is and whether it will ever give up.
func restartingTrace(err error, run *taskRun, delay time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nRetrying: failing since %s, %d failed attempt(s); next attempt at %s (in %s). ",
		err, stamp(run.failingSince), run.failures, stamp(run.retryAt), delay)
	if connector.IsFenced(err) {
		b.WriteString("A newer owner of the task fenced this run: waiting for the assignment to move before trying again. ")
	}
	if run.retry.Timeout < 0 {
		fmt.Fprintf(&b, "Retried for as long as the failure lasts (%s=-1).", connector.RetryTimeoutKey)
	} else {
		fmt.Fprintf(&b, "FAILED if still failing at %s (%s=%d).", stamp(run.failingSince.Add(run.retry.Timeout)),
			connector.RetryTimeoutKey, run.retry.Timeout.Milliseconds())
	}
	return b.String()
}

// stamp is how a trace shows a time: UTC, to the second.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

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
		out = append(out, peer.TaskReport{Connector: run.a.Connector, Task: run.a.Task, Epoch: run.a.Epoch,
			State: string(run.state), Trace: run.trace, Degraded: run.degraded})
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
