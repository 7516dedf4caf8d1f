package taskmetrics

import (
	"testing"
	"time"
)

func TestBehindSourceFollowsTheStreamAndAgesWhileItIsClosed(t *testing.T) {
	t0 := time.UnixMilli(1_000_000)
	type step struct {
		streaming bool
		// a batch at t0+at (ms): seen events, the last made at t0+source (0: none), caught up
		batch          bool
		at, source     int64
		seen, filtered int
		caughtUp       bool
		// then, read at t0+read
		read   int64
		behind int64
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"before any event it is 0", []step{{streaming: true, read: 5000, behind: 0}}},
		{"a batch is as far behind as its last event", []step{
			{streaming: true, batch: true, at: 1500, source: 1000, seen: 3, read: 9000, behind: 500},
		}},
		{"a caught-up batch without events leaves nothing behind", []step{
			{streaming: true, batch: true, at: 1500, source: 1000, seen: 1, read: 1600, behind: 500},
			{streaming: true, batch: true, at: 2000, caughtUp: true, read: 8000, behind: 0},
		}},
		{"an empty batch not caught up keeps the last value", []step{
			{streaming: true, batch: true, at: 1500, source: 1000, seen: 1, read: 1600, behind: 500},
			{streaming: true, batch: true, at: 2000, read: 8000, behind: 500},
		}},
		{"a closed stream ages from its last change", []step{
			{streaming: true, batch: true, at: 1500, source: 1000, seen: 1, read: 1600, behind: 500},
			{streaming: false, read: 4000, behind: 3000},
			{streaming: false, read: 9000, behind: 8000},
			{streaming: true, read: 9000, behind: 8000}, // reopened: as far behind as when closed
			{streaming: true, batch: true, at: 9100, source: 9050, seen: 2, read: 9200, behind: 50},
		}},
		{"a closed stream that had caught up ages from when it caught up", []step{
			{streaming: true, batch: true, at: 1500, source: 1000, seen: 1, caughtUp: true, read: 1600, behind: 500},
			{streaming: false, read: 4000, behind: 2500},
		}},
		{"an idle stream closed ages from its last caught-up batch", []step{
			{streaming: true, batch: true, at: 1500, source: 1000, seen: 1, read: 1600, behind: 500},
			{streaming: true, batch: true, at: 60000, caughtUp: true, read: 60100, behind: 0},
			{streaming: false, read: 61000, behind: 1000},
		}},
		{"a stream that never read anything is not behind", []step{
			{streaming: true, read: 100, behind: 0},
			{streaming: false, read: 9000, behind: 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var u Unit
			for i, s := range tt.steps {
				if s.streaming != u.Connected() {
					u.Streaming(t0.Add(time.Duration(s.read)*time.Millisecond), s.streaming)
				}
				if s.batch {
					var src int64
					if s.source != 0 {
						src = t0.UnixMilli() + s.source
					}
					u.Batch(t0.Add(time.Duration(s.at)*time.Millisecond), s.seen, s.filtered, src, s.caughtUp)
				}
				if got := u.BehindSource(t0.Add(time.Duration(s.read) * time.Millisecond)); got != s.behind {
					t.Fatalf("step %d: behind %d ms, want %d", i, got, s.behind)
				}
			}
		})
	}
}

func TestBatchCountsSeenAndFilteredEvents(t *testing.T) {
	var u Unit
	now := time.Now()
	u.Batch(now, 3, 1, now.UnixMilli(), false)
	u.Batch(now, 0, 2, 0, true)
	u.Batch(now, 4, 0, now.UnixMilli(), true)
	if got := u.EventsSeen.Load(); got != 7 {
		t.Errorf("seen %d, want 7", got)
	}
	if got := u.EventsFiltered.Load(); got != 3 {
		t.Errorf("filtered %d, want 3", got)
	}
	if got := u.SinceLastEvent(now.Add(time.Second)); got != 1000 {
		t.Errorf("since last event %d ms, want 1000", got)
	}
	var fresh Unit
	if got := fresh.SinceLastEvent(now); got != -1 {
		t.Errorf("since last event before any: %d, want -1", got)
	}
}

func TestSnapshotReportsItsRunAndDuration(t *testing.T) {
	t0 := time.Now()
	var u Unit
	if running, completed, took := u.Snapshot(t0); running || completed || took != 0 {
		t.Fatalf("before any snapshot: %v %v %v", running, completed, took)
	}
	u.SnapshotStarted(t0)
	if running, completed, took := u.Snapshot(t0.Add(2 * time.Second)); !running || completed || took != 2*time.Second {
		t.Fatalf("running: %v %v %v", running, completed, took)
	}
	u.SnapshotEnded(t0.Add(3*time.Second), true)
	if running, completed, took := u.Snapshot(t0.Add(time.Minute)); running || !completed || took != 3*time.Second {
		t.Fatalf("completed: %v %v %v", running, completed, took)
	}
	u.SnapshotEnded(t0.Add(time.Hour), false) // no snapshot runs: nothing changes
	if _, completed, took := u.Snapshot(t0.Add(time.Minute)); !completed || took != 3*time.Second {
		t.Fatalf("after a second end: %v %v", completed, took)
	}
	u.SnapshotStarted(t0.Add(time.Hour))
	u.SnapshotEnded(t0.Add(time.Hour+time.Second), false)
	if running, completed, took := u.Snapshot(t0.Add(2 * time.Hour)); running || completed || took != time.Second {
		t.Fatalf("stopped: %v %v %v", running, completed, took)
	}
}

func TestQueueAndCommittedAge(t *testing.T) {
	var u Unit
	if _, _, ok := u.Queue(); ok {
		t.Fatal("a queue before SetQueue")
	}
	pending := 30
	u.SetQueue(100, func() int { return pending })
	if c, left, ok := u.Queue(); !ok || c != 100 || left != 70 {
		t.Fatalf("queue %d %d %v, want 100 70", c, left, ok)
	}
	pending = 150
	if _, left, _ := u.Queue(); left != 0 {
		t.Fatalf("remaining %d past capacity, want 0", left)
	}
	now := time.Now()
	if _, ok := u.CommittedAge(now); ok {
		t.Fatal("an age before any commit")
	}
	u.Committed(now)
	if age, ok := u.CommittedAge(now.Add(1500 * time.Millisecond)); !ok || age != 1500*time.Millisecond {
		t.Fatalf("age %v %v", age, ok)
	}
}

func TestSetKeepsTasksUntilRetainDropsThem(t *testing.T) {
	s := NewSet()
	a := s.Task(Key{"orders", 1}, "shop")
	a.Unit("shop.orders#0-of-2").EventsSeen.Add(5)
	if again := s.Task(Key{"orders", 1}, "shop"); again != a {
		t.Fatal("a second Task call made new metrics")
	}
	if a.Unit("shop.orders#0-of-2").EventsSeen.Load() != 5 {
		t.Fatal("a second Unit call made a new unit")
	}
	a.Unit("shop.orders#1-of-2")
	s.Task(Key{"orders", 0}, "shop")
	s.Task(Key{"audit", 3}, "log")
	var got []Key
	for _, task := range s.Tasks() {
		got = append(got, task.Key)
	}
	want := []Key{{"audit", 3}, {"orders", 0}, {"orders", 1}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("tasks %v, want %v", got, want)
	}
	if units := a.Units(); len(units) != 2 || units[0].Name != "shop.orders#0-of-2" {
		t.Fatalf("units %v", units)
	}
	s.Retain(func(k Key) bool { return k.Connector == "orders" })
	if n := len(s.Tasks()); n != 2 {
		t.Fatalf("%d tasks after Retain, want 2", n)
	}
	if renamed := s.Task(Key{"orders", 1}, "shop2"); renamed == a {
		t.Fatal("a new topic.prefix kept the old metrics")
	}
}

func TestNilTaskGivesADetachedUnit(t *testing.T) {
	var task *Task
	u := task.Unit("x")
	u.Records.Add(1) // must not panic
}

// BenchmarkHotPath is what a task adds to each record and batch: the cost the metrics must
// keep out of the events/s.
func BenchmarkHotPath(b *testing.B) {
	u := NewSet().Task(Key{"c", 0}, "p").Unit("db.coll#0-of-1")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		u.Records.Add(1)
		u.Bytes.Add(200)
		u.Batch(now, 1, 0, now.UnixMilli(), false)
	}
}
