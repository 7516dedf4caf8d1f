package tasks

import (
	"context"
	"errors"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/tasks/connector"
)

// ackTracker decides when a checkpoint may be committed: only once every record produced
// before it has been acknowledged by Kafka (DESIGN.md 5, at-least-once). Records are produced
// in groups (one change stream batch, one snapshot page); each group ends with the checkpoint
// that resumes after it. Kafka acks partitions independently, so groups can complete out of
// order; the tracker hands out checkpoints strictly in production order.
//
// franz-go calls promises serially from one goroutine and the task produces from another, so
// the mutex sees two parties at most and is held for a few instructions.
type ackTracker[C any] struct {
	mu      sync.Mutex
	groups  []*ackGroup[C] // production order; only the last may be open
	spare   []*ackGroup[C] // finished groups kept for reuse: no allocation per batch
	pending int            // records produced and not yet acked, across groups
	acked   int64          // records acked (or failed) so far
	err     error          // first produce error; every later checkpoint is withheld
	// dropped counts records failed by the task itself (see ack); they are not errors.
	dropped int64
	// stopDrops makes records failed by the stop of the task's context drops rather than
	// errors. Only a transactional task may: it aborts the transaction that lost them.
	stopDrops bool
	// release takes back a record once its promise ran (the producer is done with it).
	release func(*kgo.Record)
	ready   chan struct{} // signalled (never blocking) when a checkpoint may be committable
	drained chan struct{} // signalled (never blocking) when no record is pending
}

type ackGroup[C any] struct {
	t       *ackTracker[C]
	pending int  // records produced and not yet acked
	sealed  bool // no record will join the group
	hasCP   bool // the group ends with a checkpoint
	cp      C
	promise func(*kgo.Record, error) // bound once per group object, reused with it
}

// newAckTracker returns a tracker; release, if not nil, gets every record after its promise.
func newAckTracker[C any](release func(*kgo.Record)) *ackTracker[C] {
	return &ackTracker[C]{release: release, ready: make(chan struct{}, 1), drained: make(chan struct{}, 1)}
}

// Ready is signalled when a checkpoint may have become committable or an error occurred.
func (t *ackTracker[C]) Ready() <-chan struct{} { return t.ready }

// Drained is signalled when the last pending record is acked.
func (t *ackTracker[C]) Drained() <-chan struct{} { return t.drained }

// Pending is the number of records produced and not yet acked.
func (t *ackTracker[C]) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pending
}

// Progress is the number of records produced and not yet acked, and of those acked (or
// failed) so far: a count that stops moving while records are pending means Kafka has stalled.
func (t *ackTracker[C]) Progress() (pending int, acked int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pending, t.acked
}

// Dropped is how many records the task's own abort or stop has failed so far.
func (t *ackTracker[C]) Dropped() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dropped
}

// Err is the first produce error, if any.
func (t *ackTracker[C]) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Open starts a group. Records produced with its Promise belong to it until Seal.
func (t *ackTracker[C]) Open() *ackGroup[C] {
	t.mu.Lock()
	defer t.mu.Unlock()
	var g *ackGroup[C]
	if n := len(t.spare); n > 0 {
		g = t.spare[n-1]
		t.spare = t.spare[:n-1]
	} else {
		g = &ackGroup[C]{t: t}
		g.promise = g.ack
	}
	t.groups = append(t.groups, g)
	return g
}

// Add counts one record about to be produced with g's promise.
func (g *ackGroup[C]) Add() {
	g.t.mu.Lock()
	g.pending++
	g.t.pending++
	g.t.mu.Unlock()
}

// Promise is the produce callback for the group's records.
func (g *ackGroup[C]) Promise() func(*kgo.Record, error) { return g.promise }

// Seal closes the group with the checkpoint that follows its records.
func (g *ackGroup[C]) Seal(cp C) { g.seal(cp, true) }

// SealEmpty closes the group without a checkpoint (nothing new to commit after it).
func (g *ackGroup[C]) SealEmpty() {
	var zero C
	g.seal(zero, false)
}

func (g *ackGroup[C]) seal(cp C, hasCP bool) {
	g.t.mu.Lock()
	g.cp, g.hasCP, g.sealed = cp, hasCP, true
	done := g.pending == 0
	g.t.mu.Unlock()
	if done {
		signal(g.t.ready)
	}
}

// ack is the promise of the group's records. It runs in the producer's goroutine, so a panic
// of it becomes the tracker's error, which fails the task, rather than the process's end.
func (g *ackGroup[C]) ack(r *kgo.Record, err error) {
	var panicked error
	defer func() {
		if panicked != nil {
			g.t.fail(panicked)
		}
	}()
	defer connector.Recover(&panicked)
	t := g.t
	// Records failed by the task's own abort of its transaction, or by its stop, belong to the
	// open transaction, which is aborted (endTxn will not commit a transaction that dropped a
	// record): their groups are sealed without a checkpoint. They must not hold back the
	// checkpoints committed before them.
	dropped := errors.Is(err, kgo.ErrAborting) || (t.stopDrops && errors.Is(err, context.Canceled))
	if dropped {
		err = nil
	}
	t.mu.Lock()
	if dropped {
		t.dropped++
	}
	g.pending--
	t.pending--
	t.acked++
	if err != nil && t.err == nil {
		t.err = err
	}
	done := (g.pending == 0 && g.sealed) || err != nil
	drained := t.pending == 0
	t.mu.Unlock()
	if t.release != nil && r != nil {
		t.release(r)
	}
	if done {
		signal(t.ready)
	}
	if drained {
		signal(t.drained)
	}
}

// fail records err as the tracker's error unless it has one, as a failed produce does.
func (t *ackTracker[C]) fail(err error) {
	t.mu.Lock()
	if t.err == nil {
		t.err = err
	}
	t.mu.Unlock()
	signal(t.ready)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Committable returns the newest checkpoint whose records, and all records before them, are
// acked, and drops the groups it covers. ok is false when there is none. Once a produce has
// failed it returns the error and no checkpoint, since later records may be missing.
func (t *ackTracker[C]) Committable() (cp C, ok bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return cp, false, t.err
	}
	n := 0
	for _, g := range t.groups {
		if !g.sealed || g.pending > 0 {
			break
		}
		if g.hasCP {
			cp, ok = g.cp, true
		}
		n++
	}
	for _, g := range t.groups[:n] {
		var zero C
		g.cp, g.sealed, g.hasCP, g.pending = zero, false, false, 0
		t.spare = append(t.spare, g)
	}
	t.groups = append(t.groups[:0], t.groups[n:]...)
	return cp, ok, nil
}

// Outstanding reports how many groups are not yet committable, for flow control and tests.
func (t *ackTracker[C]) Outstanding() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.groups)
}
