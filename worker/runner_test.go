package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mongorelay/mongorelay/api/peer"
	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/tasks/connector"
)

// fakeAssignments is an assignmentSource the test drives.
type fakeAssignments struct {
	mu      sync.Mutex
	list    []coordinator.Assignment
	changed chan struct{}
	fenced  atomic.Bool
}

func newFakeAssignments() *fakeAssignments {
	return &fakeAssignments{changed: make(chan struct{})}
}

func (f *fakeAssignments) Assigned() ([]coordinator.Assignment, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]coordinator.Assignment(nil), f.list...), f.changed
}

func (f *fakeAssignments) Fenced(time.Time) bool { return f.fenced.Load() }

func (f *fakeAssignments) set(list ...coordinator.Assignment) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.list = list
	close(f.changed)
	f.changed = make(chan struct{})
}

func assignment(task string, epoch uint64, state coordinator.TargetState) coordinator.Assignment {
	return coordinator.Assignment{Connector: "cdc", Task: task, Node: "n1", Epoch: epoch, Generation: 1, State: state}
}

// fakeTasks records the runs of tasks, each blocking until stopped or told to fail.
type fakeTasks struct {
	mu      sync.Mutex
	running map[string]uint64 // task → epoch of the run in progress
	starts  map[string]int
	overlap []string // tasks started while a run of them was in progress
	fail    map[string]error
}

func newFakeTasks() *fakeTasks {
	return &fakeTasks{running: map[string]uint64{}, starts: map[string]int{}, fail: map[string]error{}}
}

func (f *fakeTasks) run(ctx context.Context, a coordinator.Assignment, _ func(string)) error {
	f.mu.Lock()
	if _, busy := f.running[a.Task]; busy {
		f.overlap = append(f.overlap, a.Task)
	}
	f.running[a.Task] = a.Epoch
	f.starts[a.Task]++
	err := f.fail[a.Task]
	f.mu.Unlock()
	if err == nil {
		<-ctx.Done()
		// A clean stop takes a moment (flush, commit): a new run must wait for it.
		time.Sleep(20 * time.Millisecond)
	}
	f.mu.Lock()
	delete(f.running, a.Task)
	f.mu.Unlock()
	return err
}

func (f *fakeTasks) snapshot() (running map[string]uint64, starts map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	running, starts = map[string]uint64{}, map[string]int{}
	for k, v := range f.running {
		running[k] = v
	}
	for k, v := range f.starts {
		starts[k] = v
	}
	return running, starts
}

func startRunner(t *testing.T, src assignmentSource, tasks *fakeTasks) *runner {
	t.Helper()
	r := newRunner(src, tasks.run, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.tick = 5 * time.Millisecond
	r.retry = retryTiming{first: 10 * time.Millisecond, healthyRun: time.Hour, fencedWait: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunnerRunsExactlyItsRunningAssignments(t *testing.T) {
	src, tasks := newFakeAssignments(), newFakeTasks()
	src.set(assignment("a", 1, coordinator.StateRunning), assignment("b", 1, coordinator.StatePaused))
	r := startRunner(t, src, tasks)

	eventually(t, "task a running", func() bool { running, _ := tasks.snapshot(); return running["a"] == 1 })
	time.Sleep(30 * time.Millisecond)
	if running, _ := tasks.snapshot(); len(running) != 1 {
		t.Errorf("running %v, want only a (b's connector is paused)", running)
	}
	eventually(t, "a reported RUNNING", func() bool {
		rep := r.Reports()
		return len(rep) == 1 && rep[0].Task == "a" && rep[0].State == string(taskRunning) && rep[0].Epoch == 1
	})

	// The task moves away: it stops at once.
	src.set(assignment("b", 1, coordinator.StateRunning))
	eventually(t, "a stopped, b running", func() bool {
		running, _ := tasks.snapshot()
		_, a := running["a"]
		return !a && running["b"] == 1
	})
}

func TestRunnerRestartsOnNewEpochWithoutOverlap(t *testing.T) {
	src, tasks := newFakeAssignments(), newFakeTasks()
	src.set(assignment("a", 1, coordinator.StateRunning))
	startRunner(t, src, tasks)
	eventually(t, "epoch 1 running", func() bool { running, _ := tasks.snapshot(); return running["a"] == 1 })

	for epoch := uint64(2); epoch <= 4; epoch++ {
		src.set(assignment("a", epoch, coordinator.StateRunning))
		eventually(t, "new epoch running", func() bool { running, _ := tasks.snapshot(); return running["a"] == epoch })
	}
	tasks.mu.Lock()
	defer tasks.mu.Unlock()
	if len(tasks.overlap) > 0 {
		t.Errorf("a new run started while the previous one was still stopping: %v", tasks.overlap)
	}
	if tasks.starts["a"] != 4 {
		t.Errorf("starts = %d, want one per epoch (4)", tasks.starts["a"])
	}
}

func TestRunnerStopsEverythingWhileFenced(t *testing.T) {
	src, tasks := newFakeAssignments(), newFakeTasks()
	src.set(assignment("a", 1, coordinator.StateRunning), assignment("b", 1, coordinator.StateRunning))
	r := startRunner(t, src, tasks)
	eventually(t, "both running", func() bool { running, _ := tasks.snapshot(); return len(running) == 2 })

	src.fenced.Store(true)
	eventually(t, "all stopped while fenced", func() bool { running, _ := tasks.snapshot(); return len(running) == 0 })
	if !r.Fenced() || r.Running() != 0 {
		t.Errorf("Fenced() = %v, Running() = %d while fenced", r.Fenced(), r.Running())
	}
	src.fenced.Store(false)
	eventually(t, "both running again", func() bool { running, _ := tasks.snapshot(); return len(running) == 2 })
}

// withConfig returns a with its config set to the key value pairs kv.
func withConfig(a coordinator.Assignment, kv ...string) coordinator.Assignment {
	a.Config = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		a.Config[kv[i]] = kv[i+1]
	}
	return a
}

// report returns what the runner reports of task, and whether it reports it.
func report(r *runner, task string) (peer.TaskReport, bool) {
	for _, rep := range r.Reports() {
		if rep.Task == task {
			return rep, true
		}
	}
	return peer.TaskReport{}, false
}

func TestRunnerRetriesARetriableFailureForAsLongAsItLasts(t *testing.T) {
	src, tasks := newFakeAssignments(), newFakeTasks()
	tasks.fail["a"] = errors.New("kafka unreachable")
	src.set(withConfig(assignment("a", 1, coordinator.StateRunning), connector.RetryDelayMaxKey, "100"))
	r := startRunner(t, src, tasks)

	// Beyond any fixed limit: the old one was 5.
	eventually(t, "a started 7 times", func() bool { _, starts := tasks.snapshot(); return starts["a"] >= 7 })
	eventually(t, "a RESTARTING", func() bool { rep, _ := report(r, "a"); return rep.State == string(taskRestarting) })
	rep, _ := report(r, "a")
	for _, want := range []string{"kafka unreachable", "failing since", "failed attempt(s)", "next attempt at", "errors.retry.timeout=-1"} {
		if !strings.Contains(rep.Trace, want) {
			t.Errorf("RESTARTING trace %q does not say %q", rep.Trace, want)
		}
	}

	// The outage ends: the next attempt runs, and the trace is gone.
	tasks.mu.Lock()
	delete(tasks.fail, "a")
	tasks.mu.Unlock()
	eventually(t, "a RUNNING with nothing left to say", func() bool {
		rep, _ := report(r, "a")
		return rep.State == string(taskRunning) && rep.Trace == "" && rep.Degraded == ""
	})
}

func TestRunnerFailsATaskFailingLongerThanItsRetryTimeout(t *testing.T) {
	src, tasks := newFakeAssignments(), newFakeTasks()
	tasks.fail["a"] = errors.New("mongodb unreachable")
	src.set(withConfig(assignment("a", 1, coordinator.StateRunning), connector.RetryTimeoutKey, "300", connector.RetryDelayMaxKey, "100"))
	r := startRunner(t, src, tasks)

	eventually(t, "a FAILED", func() bool { rep, _ := report(r, "a"); return rep.State == string(taskFailed) })
	rep, _ := report(r, "a")
	for _, want := range []string{"mongodb unreachable", "errors.retry.timeout=300", "restart the task"} {
		if !strings.Contains(rep.Trace, want) {
			t.Errorf("FAILED trace %q does not say %q", rep.Trace, want)
		}
	}
	_, starts := tasks.snapshot()
	if starts["a"] < 3 {
		t.Errorf("starts = %d: the task was not retried for its 300 ms", starts["a"])
	}
	time.Sleep(200 * time.Millisecond)
	if _, again := tasks.snapshot(); again["a"] != starts["a"] {
		t.Errorf("a FAILED task was started again (%d starts, then %d)", starts["a"], again["a"])
	}
}

func TestRunnerFailsAtTheFirstErrorWithRetryTimeoutZero(t *testing.T) {
	src, tasks := newFakeAssignments(), newFakeTasks()
	tasks.fail["a"] = errors.New("kafka unreachable")
	src.set(withConfig(assignment("a", 1, coordinator.StateRunning), connector.RetryTimeoutKey, "0"))
	r := startRunner(t, src, tasks)

	eventually(t, "a FAILED", func() bool { rep, _ := report(r, "a"); return rep.State == string(taskFailed) })
	time.Sleep(100 * time.Millisecond)
	if _, starts := tasks.snapshot(); starts["a"] != 1 {
		t.Errorf("starts = %d, want 1 with errors.retry.timeout=0", starts["a"])
	}
	if rep, _ := report(r, "a"); !strings.Contains(rep.Trace, "errors.retry.timeout=0") {
		t.Errorf("trace %q does not name errors.retry.timeout=0", rep.Trace)
	}
}

func TestRetryDelayDoublesUpToTheCap(t *testing.T) {
	p := defaultRetryTiming
	for _, tt := range []struct {
		failures int
		limit    time.Duration
		want     time.Duration
	}{
		{1, 10 * time.Second, time.Second},
		{2, 10 * time.Second, 2 * time.Second},
		{4, 10 * time.Second, 8 * time.Second},
		{5, 10 * time.Second, 10 * time.Second},
		{50, 10 * time.Second, 10 * time.Second},
		{1, 300 * time.Millisecond, 300 * time.Millisecond},
		{7, time.Minute, time.Minute},
	} {
		if got := p.delay(tt.failures, tt.limit); got != tt.want {
			t.Errorf("delay(%d, %s) = %s, want %s", tt.failures, tt.limit, got, tt.want)
		}
	}
}

// scriptedTask runs a task by a script: each run calls the next step, whose error ends it
// (nil: it runs until stopped).
type scriptedTask struct {
	mu    sync.Mutex
	steps []func(ctx context.Context, degraded func(string)) error
	runs  int
}

func (s *scriptedTask) run(ctx context.Context, _ coordinator.Assignment, degraded func(string)) error {
	s.mu.Lock()
	step := s.steps[min(s.runs, len(s.steps)-1)]
	s.runs++
	s.mu.Unlock()
	if err := step(ctx, degraded); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func startScripted(t *testing.T, src assignmentSource, task *scriptedTask, timing retryTiming) *runner {
	t.Helper()
	r := newRunner(src, task.run, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.tick = 5 * time.Millisecond
	r.retry = timing
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func TestRunnerShowsADegradedReasonWhileItLasts(t *testing.T) {
	src := newFakeAssignments()
	src.set(assignment("a", 1, coordinator.StateRunning))
	healthy := make(chan struct{})
	task := &scriptedTask{steps: []func(context.Context, func(string)) error{
		func(ctx context.Context, degraded func(string)) error {
			degraded("waiting 6s for Kafka to commit the transaction")
			<-healthy
			degraded("")
			return nil
		},
	}}
	r := startScripted(t, src, task, retryTiming{first: 10 * time.Millisecond, healthyRun: time.Hour, fencedWait: time.Hour})

	eventually(t, "a RUNNING and degraded", func() bool {
		rep, _ := report(r, "a")
		return rep.State == string(taskRunning) && rep.Degraded == "waiting 6s for Kafka to commit the transaction"
	})
	close(healthy)
	eventually(t, "a RUNNING, the reason cleared", func() bool {
		rep, _ := report(r, "a")
		return rep.State == string(taskRunning) && rep.Degraded == ""
	})
}

func TestRunnerIgnoresADegradedReportOfAnEarlierRun(t *testing.T) {
	src := newFakeAssignments()
	src.set(assignment("a", 1, coordinator.StateRunning))
	first := make(chan func(string), 1)
	task := &scriptedTask{steps: []func(context.Context, func(string)) error{
		func(_ context.Context, degraded func(string)) error {
			first <- degraded
			return errors.New("broker gone")
		},
		func(context.Context, func(string)) error { return nil },
	}}
	r := startScripted(t, src, task, retryTiming{first: 10 * time.Millisecond, healthyRun: time.Hour, fencedWait: time.Hour})
	eventually(t, "the second run RUNNING", func() bool {
		rep, _ := report(r, "a")
		task.mu.Lock()
		defer task.mu.Unlock()
		return rep.State == string(taskRunning) && task.runs == 2
	})
	(<-first)("a late report of the failed run")
	if rep, _ := report(r, "a"); rep.Degraded != "" {
		t.Errorf("the failed run's late report shows on the new one: %q", rep.Degraded)
	}
}

// attemptsIn reads the attempt count of a RESTARTING trace.
func attemptsIn(trace string) int {
	var n int
	if _, after, ok := strings.Cut(trace, "Z, "); ok {
		fmt.Sscanf(after, "%d failed attempt", &n)
	}
	return n
}

func TestRunnerEndsAStreakOfFailuresAfterAHealthyRun(t *testing.T) {
	src := newFakeAssignments()
	src.set(assignment("a", 1, coordinator.StateRunning))
	fail := func(context.Context, func(string)) error { return errors.New("unreachable") }
	healthyThenFail := func(ctx context.Context, _ func(string)) error {
		time.Sleep(100 * time.Millisecond)
		return errors.New("unreachable again")
	}
	degradedThenFail := func(ctx context.Context, degraded func(string)) error {
		degraded("waiting for MongoDB")
		time.Sleep(100 * time.Millisecond)
		return errors.New("unreachable, still")
	}
	task := &scriptedTask{steps: []func(context.Context, func(string)) error{fail, fail, healthyThenFail, degradedThenFail, func(context.Context, func(string)) error { return nil }}}
	// Each wait to retry lasts long enough for the poll below to see it.
	timing := retryTiming{first: 40 * time.Millisecond, healthyRun: 50 * time.Millisecond, fencedWait: time.Hour}
	r := startScripted(t, src, task, timing)

	var traces []string
	eventually(t, "the script played", func() bool {
		rep, _ := report(r, "a")
		if rep.State == string(taskRestarting) && (len(traces) == 0 || traces[len(traces)-1] != rep.Trace) {
			traces = append(traces, rep.Trace)
		}
		task.mu.Lock()
		defer task.mu.Unlock()
		return task.runs == 5 && rep.State == string(taskRunning)
	})
	var got []int
	for _, tr := range traces {
		got = append(got, attemptsIn(tr))
	}
	// 1, 2 in a row; a healthy run of 100 ms starts over at 1; a degraded one does not count
	// as healthy, so the streak goes on to 2.
	if want := []int{1, 2, 1, 2}; !slices.Equal(got, want) {
		t.Errorf("attempts shown = %v, want %v (traces %q)", got, want, traces)
	}
}

func TestRunnerWaitsForTheAssignmentToMoveAfterAFence(t *testing.T) {
	src, tasks := newFakeAssignments(), newFakeTasks()
	tasks.fail["a"] = connector.Fenced(errors.New("PRODUCER_FENCED"))
	src.set(assignment("a", 1, coordinator.StateRunning))
	r := startRunner(t, src, tasks)
	r.mu.Lock()
	r.retry.fencedWait = time.Hour
	r.mu.Unlock()

	eventually(t, "a RESTARTING", func() bool { rep, _ := report(r, "a"); return rep.State == string(taskRestarting) })
	time.Sleep(100 * time.Millisecond)
	if _, starts := tasks.snapshot(); starts["a"] != 1 {
		t.Errorf("starts = %d: a fenced task was started again before its assignment could move", starts["a"])
	}
	if rep, _ := report(r, "a"); !strings.Contains(rep.Trace, "fenced this run") {
		t.Errorf("trace %q does not say the task was fenced", rep.Trace)
	}
	// The assignment moves to a new epoch (here, back to this node): it runs at once.
	tasks.mu.Lock()
	delete(tasks.fail, "a")
	tasks.mu.Unlock()
	src.set(assignment("a", 2, coordinator.StateRunning))
	eventually(t, "epoch 2 running", func() bool { running, _ := tasks.snapshot(); return running["a"] == 2 })
}

func TestRunnerFailsAPermanentErrorAtOnce(t *testing.T) {
	src, tasks := newFakeAssignments(), newFakeTasks()
	tasks.fail["a"] = connector.Permanent(errors.New("history lost under offset.lost.policy=fail"))
	src.set(assignment("a", 1, coordinator.StateRunning))
	r := startRunner(t, src, tasks)

	eventually(t, "a FAILED", func() bool {
		rep := r.Reports()
		return len(rep) == 1 && rep[0].State == string(taskFailed)
	})
	time.Sleep(100 * time.Millisecond)
	if _, starts := tasks.snapshot(); starts["a"] != 1 {
		t.Errorf("starts = %d, want 1: a restart cannot fix a permanent error", starts["a"])
	}
}

func TestRunnerNamesTheTasksThatHadFailedWhenItStopped(t *testing.T) {
	src, tasks := newFakeAssignments(), newFakeTasks()
	tasks.fail["b"] = errors.New("boom")
	src.set(assignment("a", 1, coordinator.StateRunning), assignment("b", 1, coordinator.StateRunning))
	r := newRunner(src, tasks.run, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.tick = 5 * time.Millisecond
	r.retry = retryTiming{first: time.Hour, healthyRun: time.Hour, fencedWait: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	eventually(t, "b waiting to restart", func() bool {
		for _, rep := range r.Reports() {
			if rep.Task == "b" && rep.State == string(taskRestarting) {
				return true
			}
		}
		return false
	})
	cancel()
	<-done
	err := r.failures()
	if err == nil || !strings.Contains(err.Error(), "1 FAILED task") || !strings.Contains(err.Error(), "task b: boom") {
		t.Fatalf("failures() = %v, want task b named with its error", err)
	}
	if strings.Contains(err.Error(), "task a") {
		t.Errorf("failures() = %v names task a, which ran fine", err)
	}
}

func TestRunnerFailsAPanickingTaskAtOnceAndRunsTheOthers(t *testing.T) {
	src := newFakeAssignments()
	src.set(assignment("a", 1, coordinator.StateRunning), assignment("b", 1, coordinator.StateRunning))
	tasks := newFakeTasks()
	var panics atomic.Int32
	run := func(ctx context.Context, a coordinator.Assignment, degraded func(string)) error {
		if a.Task == "a" {
			panics.Add(1)
			var m map[string]int
			m["poison"]++
		}
		return tasks.run(ctx, a, degraded)
	}
	r := newRunner(src, run, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.tick = 5 * time.Millisecond
	r.retry = retryTiming{first: 10 * time.Millisecond, healthyRun: time.Hour, fencedWait: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	eventually(t, "a FAILED with the panic, b running", func() bool {
		a, _ := report(r, "a")
		b, _ := report(r, "b")
		return a.State == string(taskFailed) && b.State == string(taskRunning)
	})
	a, _ := report(r, "a")
	for _, want := range []string{"task panicked: assignment to entry in nil map", "goroutine", "runner_test.go"} {
		if !strings.Contains(a.Trace, want) {
			t.Errorf("trace of the panic lacks %q:\n%s", want, a.Trace)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := panics.Load(); n != 1 {
		t.Errorf("the panicking task ran %d times, want 1: the same input would panic again", n)
	}
}
