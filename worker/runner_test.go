package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

func (f *fakeTasks) run(ctx context.Context, a coordinator.Assignment) error {
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
	r.restarts = restartPolicy{first: 10 * time.Millisecond, max: 40 * time.Millisecond, limit: 3}
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

func TestRunnerRetriesThenFails(t *testing.T) {
	src, tasks := newFakeAssignments(), newFakeTasks()
	tasks.fail["a"] = errors.New("history lost")
	src.set(assignment("a", 1, coordinator.StateRunning))
	r := startRunner(t, src, tasks)

	eventually(t, "a FAILED after 3 attempts", func() bool {
		rep := r.Reports()
		return len(rep) == 1 && rep[0].State == string(taskFailed)
	})
	rep := r.Reports()[0]
	if !strings.Contains(rep.Trace, "history lost") {
		t.Errorf("trace %q does not say why", rep.Trace)
	}
	time.Sleep(100 * time.Millisecond)
	if _, starts := tasks.snapshot(); starts["a"] != 3 {
		t.Errorf("starts = %d, want the limit (3)", starts["a"])
	}

	// A restart request (a new restart count) runs it again.
	tasks.mu.Lock()
	delete(tasks.fail, "a")
	tasks.mu.Unlock()
	again := assignment("a", 1, coordinator.StateRunning)
	again.Restarts = 1
	src.set(again)
	eventually(t, "a running after the restart request", func() bool {
		rep := r.Reports()
		return len(rep) == 1 && rep[0].State == string(taskRunning)
	})
}

func TestRestartPolicyDelay(t *testing.T) {
	p := restartPolicy{first: time.Second, max: 30 * time.Second, limit: 5}
	for failures, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 16 * time.Second, 6: 30 * time.Second, 9: 30 * time.Second} {
		if got := p.delay(failures); got != want {
			t.Errorf("delay(%d) = %s, want %s", failures, got, want)
		}
	}
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
	r.restarts = restartPolicy{first: time.Hour, max: time.Hour, limit: 3}
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

func TestRunnerTurnsAPanicIntoTheTasksFailure(t *testing.T) {
	src := newFakeAssignments()
	src.set(assignment("a", 1, coordinator.StateRunning), assignment("b", 1, coordinator.StateRunning))
	tasks := newFakeTasks()
	run := func(ctx context.Context, a coordinator.Assignment) error {
		if a.Task == "a" {
			panic("nil map")
		}
		return tasks.run(ctx, a)
	}
	r := newRunner(src, run, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.tick = 5 * time.Millisecond
	r.restarts = restartPolicy{first: 10 * time.Millisecond, max: 40 * time.Millisecond, limit: 2}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	eventually(t, "a FAILED with the panic, b running", func() bool {
		var a, b bool
		for _, rep := range r.Reports() {
			a = a || (rep.Task == "a" && rep.State == string(taskFailed) && strings.Contains(rep.Trace, "task panicked: nil map"))
			b = b || (rep.Task == "b" && rep.State == string(taskRunning))
		}
		return a && b
	})
}
