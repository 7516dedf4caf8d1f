// Package taskmetrics counts what a node's tasks do, in atomics that a task's hot path updates
// without a lock, a map lookup or an allocation, for the node's /metrics to read when scraped.
//
// A Set holds the metrics of the tasks assigned to one node, by connector and task id; a Task
// holds one task's, a Unit per collection shard it streams. They outlive the task's runs, so
// that counters survive a restart or a pause, until the node drops them (Set.Retain).
package taskmetrics

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Set is the metrics of the tasks of one node. Safe for concurrent use.
type Set struct {
	mu    sync.Mutex
	tasks map[Key]*Task
}

// Key names a task as the REST API does: its connector and its dense integer id.
type Key struct {
	Connector string
	Task      int
}

// NewSet returns an empty set.
func NewSet() *Set { return &Set{tasks: map[Key]*Task{}} }

// Task returns the metrics of task k, creating them on first use. prefix is the connector's
// topic.prefix, which Debezium's metrics name their server by.
func (s *Set) Task(k Key, prefix string) *Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[k]
	if !ok || t.Prefix != prefix {
		t = &Task{Key: k, Prefix: prefix, units: map[string]*Unit{}}
		s.tasks[k] = t
	}
	return t
}

// Retain drops the metrics of every task keep refuses: a deleted connector's, or a task now
// assigned to another node.
func (s *Set) Retain(keep func(Key) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	maps.DeleteFunc(s.tasks, func(k Key, _ *Task) bool { return !keep(k) })
}

// Lookup returns the metrics of task k, nil when the set has none.
func (s *Set) Lookup(k Key) *Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tasks[k]
}

// Tasks lists the tasks, by connector then id.
func (s *Set) Tasks() []*Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.SortedFunc(maps.Values(s.tasks), func(a, b *Task) int {
		if a.Connector != b.Connector {
			if a.Connector < b.Connector {
				return -1
			}
			return 1
		}
		return a.Task - b.Task
	})
}

// Task is the metrics of one task, a Unit per collection shard it streams.
type Task struct {
	Key
	// Prefix is the connector's topic.prefix.
	Prefix string

	mu    sync.Mutex
	units map[string]*Unit
}

// Unit returns the metrics of the collection shard name (<db>.<coll>#<i>-of-<n>), creating
// them on first use. A nil Task gives a Unit of its own that nothing reads, so that a task run
// without metrics needs no check on its hot path.
func (t *Task) Unit(name string) *Unit {
	if t == nil {
		return new(Unit)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	u, ok := t.units[name]
	if !ok {
		u = new(Unit)
		t.units[name] = u
	}
	return u
}

// NamedUnit is a collection shard's metrics and its name.
type NamedUnit struct {
	Name string
	*Unit
}

// Units lists the task's collection shards, by name.
func (t *Task) Units() []NamedUnit {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]NamedUnit, 0, len(t.units))
	for _, name := range slices.Sorted(maps.Keys(t.units)) {
		out = append(out, NamedUnit{name, t.units[name]})
	}
	return out
}

// Figures sums up a task for its status (GET /connectors/{name}/status, the status page):
// the events its collection shards have seen, and how far behind the source the furthest
// behind of them is (MilliSecondsBehindSource).
type Figures struct {
	EventsSeen     int64
	BehindSourceMs int64
}

// Figures sums up the task at now. A nil Task has none.
func (t *Task) Figures(now time.Time) (Figures, bool) {
	if t == nil {
		return Figures{}, false
	}
	var f Figures
	units := t.Units()
	for _, u := range units {
		f.EventsSeen += u.EventsSeen.Load()
		f.BehindSourceMs = max(f.BehindSourceMs, u.BehindSource(now))
	}
	return f, len(units) > 0
}

// Unit is the metrics of one collection shard of a task. The counters only grow (a
// Prometheus counter's reset is a new Unit); times are Unix milliseconds, 0 for never.
type Unit struct {
	// EventsSeen counts the change events of this shard the stream delivered
	// (Debezium's TotalNumberOfEventsSeen in the streaming context).
	EventsSeen atomic.Int64
	// EventsFiltered counts the events the stream delivered that produced no record: another
	// shard's (shard.filter=client), one an earlier shard generation had delivered, one
	// without a document (drop, rename) (NumberOfEventsFiltered).
	EventsFiltered atomic.Int64
	// RowsScanned counts the documents the snapshot copied (Debezium's RowsScanned).
	RowsScanned atomic.Int64
	// Records and Bytes count the records produced (tombstones included) and their key and
	// value bytes, the dead letter topic's excepted.
	Records atomic.Int64
	Bytes   atomic.Int64
	// TxnCommits and TxnAborts count the task's Kafka transactions by outcome.
	TxnCommits atomic.Int64
	TxnAborts  atomic.Int64
	// Failed counts the records that could not be converted, skipped under
	// errors.tolerance=all; Oversize those skipped under oversize.handling=skip;
	// DeadLettered how many of either went to the dead letter topic.
	Failed       atomic.Int64
	Oversize     atomic.Int64
	DeadLettered atomic.Int64

	connected         atomic.Bool
	snapshotRunning   atomic.Bool
	snapshotCompleted atomic.Bool
	snapshotStartMs   atomic.Int64
	snapshotEndMs     atomic.Int64
	lastEventMs       atomic.Int64 // when the last event was processed
	reachedMs         atomic.Int64 // the time up to which the task has read every change
	behindMs          atomic.Int64 // how far behind the last batch left the stream
	committedMs       atomic.Int64 // when an offset was last committed
	queue             atomic.Pointer[queue]
}

type queue struct {
	capacity int
	pending  func() int
}

// Streaming marks the change stream open (true) or closed (false) at now: Debezium's
// Connected. A stream that opens is as far behind as it was when it closed, until its first
// batch says otherwise.
func (u *Unit) Streaming(now time.Time, open bool) {
	if open {
		u.behindMs.Store(u.closedBehind(now))
	}
	u.connected.Store(open)
}

// Batch records a change stream batch processed at now: seen events of which filtered made no
// record, the last of them made by MongoDB at sourceMs (0 when the batch had none), and
// whether the stream had nothing more to deliver then (caught up). A batch with events is as
// far behind as its last event was old; one without, caught up, leaves nothing behind.
func (u *Unit) Batch(now time.Time, seen, filtered int, sourceMs int64, caughtUp bool) {
	nowMs := now.UnixMilli()
	if seen > 0 {
		u.EventsSeen.Add(int64(seen))
	}
	if filtered > 0 {
		u.EventsFiltered.Add(int64(filtered))
	}
	if sourceMs > 0 {
		u.lastEventMs.Store(nowMs)
		u.behindMs.Store(max(nowMs-sourceMs, 0))
		u.reachedMs.Store(sourceMs)
	} else if caughtUp {
		u.behindMs.Store(0)
	}
	if caughtUp {
		u.reachedMs.Store(nowMs)
	}
}

// BehindSource is Debezium's MilliSecondsBehindSource at now: while the stream is open, how
// far behind its last batch left it (the age of its last event when processed, 0 once it
// found nothing new); while it is not (a paused, restarting or snapshotting task), the time
// since the moment up to which it had read every change (its last change, or its last
// caught-up batch), which grows until the stream runs again, writes or not: a closed stream
// cannot see them. It is 0 before the stream first read anything.
func (u *Unit) BehindSource(now time.Time) int64 {
	if u.connected.Load() {
		return u.behindMs.Load()
	}
	return u.closedBehind(now)
}

func (u *Unit) closedBehind(now time.Time) int64 {
	reached := u.reachedMs.Load()
	if reached == 0 {
		return 0
	}
	return max(now.UnixMilli()-reached, 0)
}

// SinceLastEvent is Debezium's MilliSecondsSinceLastEvent at now, -1 before the first event.
func (u *Unit) SinceLastEvent(now time.Time) int64 {
	last := u.lastEventMs.Load()
	if last == 0 {
		return -1
	}
	return max(now.UnixMilli()-last, 0)
}

// Connected reports whether the change stream is open.
func (u *Unit) Connected() bool { return u.connected.Load() }

// SnapshotStarted marks a snapshot copy begun at now.
func (u *Unit) SnapshotStarted(now time.Time) {
	u.snapshotStartMs.Store(now.UnixMilli())
	u.snapshotEndMs.Store(0)
	u.snapshotCompleted.Store(false)
	u.snapshotRunning.Store(true)
}

// SnapshotEnded marks the snapshot copy over at now, completed or not (a stop or a failure).
func (u *Unit) SnapshotEnded(now time.Time, completed bool) {
	if !u.snapshotRunning.Swap(false) {
		return
	}
	u.snapshotEndMs.Store(now.UnixMilli())
	u.snapshotCompleted.Store(completed)
}

// Snapshot reports whether a snapshot copy runs, whether the last one completed, and how long
// it has taken (until now while it runs); zero values before any.
func (u *Unit) Snapshot(now time.Time) (running, completed bool, took time.Duration) {
	start := u.snapshotStartMs.Load()
	if start == 0 {
		return false, false, 0
	}
	end := u.snapshotEndMs.Load()
	running = u.snapshotRunning.Load()
	if running || end == 0 {
		end = now.UnixMilli()
	}
	return running, u.snapshotCompleted.Load(), time.Duration(end-start) * time.Millisecond
}

// Committed records an offset committed at now.
func (u *Unit) Committed(now time.Time) { u.committedMs.Store(now.UnixMilli()) }

// CommittedAge is the time since an offset was last committed, and false before any.
func (u *Unit) CommittedAge(now time.Time) (time.Duration, bool) {
	ms := u.committedMs.Load()
	if ms == 0 {
		return 0, false
	}
	return time.Duration(max(now.UnixMilli()-ms, 0)) * time.Millisecond, true
}

// SetQueue makes the unit's queue the records its producer buffers: at most capacity, pending
// of them now (a function the scrape calls).
func (u *Unit) SetQueue(capacity int, pending func() int) {
	u.queue.Store(&queue{capacity: capacity, pending: pending})
}

// Queue returns the queue's capacity and what remains of it (QueueTotalCapacity and
// QueueRemainingCapacity), and false before a producer was set.
func (u *Unit) Queue() (capacity, remaining int, ok bool) {
	q := u.queue.Load()
	if q == nil {
		return 0, 0, false
	}
	return q.capacity, max(q.capacity-q.pending(), 0), true
}
