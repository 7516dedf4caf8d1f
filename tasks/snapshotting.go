package tasks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/tasks/changestream"
	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/envelope"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/resumetoken"
	"github.com/mongorelay/mongorelay/tasks/snapshot"
)

// A collection's snapshot (DESIGN.md 4) is planned once, by shard 0: it records where the
// change stream stands, then cuts the collection into m _id ranges (m = the shard count then),
// one offset key each ({"snapshot":"r-of-m"}), all holding that start point. Shard i copies
// the ranges r with r mod n == i, in parallel with the others, committing its progress per
// page; every shard streams from the start point once all ranges are done, so no change made
// during the copy is missed and every change follows its document's snapshot record.

// snapshotPoll is how often a shard waiting on other shards' snapshot ranges checks on them.
const snapshotPoll = 500 * time.Millisecond

// plan is a collection's snapshot ranges as committed, by range index.
type plan []offsets.Entry

func (p plan) done() bool {
	for _, e := range p {
		if e.Value.Snapshot == nil || !e.Value.Snapshot.Done {
			return false
		}
	}
	return true
}

// start is where the stream begins once the plan is done: the point recorded before copying.
func (p plan) start() *offsets.Value {
	v := *p[0].Value
	v.Snapshot = nil
	return &v
}

// loadPlan returns the collection's snapshot plan, nil if there is none or it is still being
// written. When keys of more than one plan exist (a crash while replacing one), the newest
// complete one wins.
func (t *Task) loadPlan() plan {
	byCount := map[int]plan{}
	for _, e := range t.offsets.List(t.cfg.Name) {
		if e.Key.Snapshot && e.Key.DB == t.spec.DB && e.Key.Coll == t.spec.Coll && e.Value != nil {
			byCount[e.Key.Count] = append(byCount[e.Key.Count], e)
		}
	}
	var best plan
	for m, p := range byCount {
		if len(p) != m {
			continue
		}
		slices.SortFunc(p, func(a, b offsets.Entry) int { return a.Key.Index - b.Key.Index })
		if best == nil || clusterTimeOf(p[0].Value).After(clusterTimeOf(best[0].Value)) {
			best = p
		}
	}
	return best
}

func clusterTimeOf(v *offsets.Value) time.Time {
	if v.ClusterTime == nil {
		return time.Time{}
	}
	return time.Unix(int64(v.ClusterTime.T), int64(v.ClusterTime.I))
}

// createPlan records the stream's present position, splits the collection, and commits one
// key per range; keys of an earlier plan are removed.
func (t *Task) createPlan(ctx context.Context) (plan, error) {
	s, err := changestream.Open(ctx, t.coll, t.streamOptions(), changestream.Start{})
	if err != nil {
		return nil, err
	}
	tok := s.ResumeToken()
	_ = s.Close(ctx)
	if tok == nil {
		return nil, fmt.Errorf("record the change stream start point of %s.%s: the server returned no postBatchResumeToken", t.spec.DB, t.spec.Coll)
	}
	start, err := valueAt(tok)
	if err != nil {
		return nil, err
	}
	cuts, err := snapshot.Splits(ctx, t.coll, t.spec.Shards)
	if err != nil {
		return nil, err
	}
	m := len(cuts) + 1
	p := make(plan, m)
	for r := range p {
		v := *start
		var rng offsets.Snapshot
		if r > 0 {
			if rng.MinID, err = offsets.EncodeID(cuts[r-1]); err != nil {
				return nil, err
			}
		}
		if r < len(cuts) {
			if rng.MaxID, err = offsets.EncodeID(cuts[r]); err != nil {
				return nil, err
			}
		}
		v.Snapshot = &rng
		p[r] = offsets.Entry{Key: offsets.SnapshotKey(t.cfg.Name, t.spec.DB, t.spec.Coll, r, m), Value: &v}
	}
	for _, e := range t.offsets.List(t.cfg.Name) {
		if e.Key.Snapshot && e.Key.DB == t.spec.DB && e.Key.Coll == t.spec.Coll && e.Key.Count != m {
			if err := t.offsets.Commit(ctx, e.Key, nil); err != nil {
				return nil, fmt.Errorf("remove the earlier snapshot range %s: %w", e.Key, err)
			}
		}
	}
	for _, e := range p {
		if err := t.offsets.Commit(ctx, e.Key, e.Value); err != nil {
			return nil, fmt.Errorf("commit snapshot range %s: %w", e.Key, err)
		}
	}
	t.log.Info("snapshot planned", "ranges", m, "start_t", start.ClusterTime.T, "start_i", start.ClusterTime.I)
	return p, nil
}

// awaitPlan waits until a plan exists whose start point is after notBefore (zero: any plan).
func (t *Task) awaitPlan(ctx context.Context, notBefore resumetoken.Position) (plan, error) {
	for {
		if p := t.loadPlan(); p != nil {
			pos, err := p[0].Value.Position()
			if err == nil && resumetoken.Compare(pos, notBefore) > 0 {
				return p, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(snapshotPoll):
		}
	}
}

// snapshotThenStream copies this shard's ranges of p, waits for the others' ranges, and returns
// the plan's start point (nil after an initial_only snapshot).
func (t *Task) snapshotThenStream(ctx context.Context, p plan) (*changestream.Start, error) {
	for r, e := range p {
		if r%t.spec.Shards != t.spec.Shard || e.Value.Snapshot.Done {
			continue
		}
		if err := t.copyRange(ctx, e); err != nil {
			return nil, err
		}
	}
	if !p.done() {
		t.log.Info("waiting for the other shards' snapshot ranges")
	}
	for !p.done() {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(snapshotPoll):
		}
		if p = t.loadPlan(); p == nil {
			return nil, errors.New("the snapshot plan disappeared while waiting for it (replaced after a history loss?)")
		}
	}
	if t.cfg.SnapshotMode == config.SnapshotInitialOnly {
		return nil, nil
	}
	return startFrom(p.start())
}

// copyRange copies one range as op "r" records from where it stopped, committing its progress
// page by page, and marks it done once every record is acked.
func (t *Task) copyRange(ctx context.Context, e offsets.Entry) error {
	progress := *e.Value.Snapshot
	var rng snapshot.Range
	var after bson.RawValue
	var err error
	for _, b := range []struct {
		enc string
		dst *bson.RawValue
	}{{progress.MinID, &rng.Min}, {progress.MaxID, &rng.Max}, {progress.LastID, &after}} {
		if b.enc == "" {
			continue
		}
		if *b.dst, err = offsets.DecodeID(b.enc); err != nil {
			return fmt.Errorf("snapshot offset %s: %w", e.Key, err)
		}
	}
	t.log.Info("copying a snapshot range", "range", e.Key.String(), "after_id", progress.LastID, "copied", progress.Copied)
	r, err := snapshot.NewReader(ctx, t.coll, rng, after, t.cfg.MaxBatchSize)
	if err != nil {
		return err
	}
	defer func() { _ = r.Close(context.WithoutCancel(ctx)) }()
	db, coll := []byte(t.spec.DB), []byte(t.spec.Coll)
	pace := snapshot.NewPace(t.cfg.SnapshotMaxRate)
	for {
		g := t.acks.Open()
		now := time.Now()
		last, n, err := r.NextPage(ctx, func(doc bson.Raw) error {
			ev, err := envelope.Snapshot(doc, db, coll, envelope.SnapshotTrue)
			if err != nil {
				return t.reject(ctx, g, doc, &ev, err)
			}
			return t.emit(ctx, g, doc, &ev, now)
		})
		if err != nil {
			g.SealEmpty()
			return err
		}
		if n == 0 {
			if err := t.seal(ctx, g, checkpoint{}, false, true); err != nil {
				return err
			}
			break
		}
		progress.Copied += int64(n)
		if progress.LastID, err = offsets.EncodeID(last); err != nil {
			g.SealEmpty()
			return err
		}
		v := *e.Value
		p := progress
		v.Snapshot = &p
		if err := t.seal(ctx, g, checkpoint{key: e.Key, value: &v}, true, false); err != nil {
			return err
		}
		if err := pace.Wait(ctx, n); err != nil {
			return err
		}
	}
	// Done only once every record is acked and the last progress committed, so a crash never
	// leaves a range marked done with records missing, and no older progress lands after it.
	if err := t.endTxn(ctx, true); err != nil {
		return err
	}
	if err := t.flushCommits(ctx); err != nil {
		return err
	}
	progress.Done = true
	v := *e.Value
	v.Snapshot = &progress
	if err := t.offsets.Commit(ctx, e.Key, &v); err != nil {
		return fmt.Errorf("commit snapshot range done %s: %w", e.Key, err)
	}
	t.log.Info("snapshot range copied", "range", e.Key.String(), "documents", progress.Copied)
	return nil
}
