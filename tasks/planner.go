package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/tasks/changestream"
	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/resumetoken"
)

// A collection's snapshot (DESIGN.md 4) is planned once, by shard 0: it records where the
// change stream stands, then cuts the collection into m _id ranges (m = the shard count then),
// one offset key each ({"snapshot":"r-of-m"}), all holding that start point. Shard i copies
// the ranges r with r mod n == i, in parallel with the others, committing its progress per
// page; every shard streams from the start point once all ranges are done, so no change made
// during the copy is missed and every change follows its document's snapshot record.

// snapshotPoll is how often a shard waiting on other shards' snapshot ranges checks on them.
const snapshotPoll = 500 * time.Millisecond

// resumePlanner decides where a task resumes from its collection's offsets: its own position,
// a snapshot plan, or the positions of the shard generation before a change of the shard
// count (reshard.go). It plans snapshots and retires the offsets a handover no longer needs.
type resumePlanner struct {
	spec      Spec
	cfg       *config.Config
	offsets   OffsetStore
	mongo     mongoReader
	log       *slog.Logger
	streamKey offsets.Key
	stalls    *stalls
}

// resumeAction is what a task does before it streams.
type resumeAction int

const (
	// resumeStream streams from resumePoint.start at once.
	resumeStream resumeAction = iota
	// resumeSnapshot copies this shard's ranges of resumePoint.plan, then streams from its
	// start point.
	resumeSnapshot
	// resumePlanSnapshot plans the collection's snapshot (shard 0), then as resumeSnapshot.
	resumePlanSnapshot
	// resumeAwaitSnapshot waits for shard 0's plan, then as resumeSnapshot.
	resumeAwaitSnapshot
)

// resumePoint is the planner's decision.
type resumePoint struct {
	action resumeAction
	start  *changestream.Start // resumeStream
	plan   plan                // resumeSnapshot
	// handover holds the earlier shard generations' positions; nil when there are none.
	handover *handover
}

// resume decides where the stream starts: after the collection's snapshot when one is due, at
// the shard's committed position, or, right after a change of the shard count, at the oldest
// position of the shards before (with the handover that drops what they delivered).
func (p *resumePlanner) resume() (*resumePoint, error) {
	// The shard's own offset is read first: the store's first read may catch up with what
	// the task's previous owner committed.
	stream, err := p.getOffset(p.streamKey)
	if err != nil {
		return nil, err
	}
	h, err := p.loadHandover()
	if err != nil {
		return nil, err
	}
	rp := &resumePoint{handover: h}
	var sp plan
	if !p.spec.scoped() { // a scope's collections have the plans (scope.go)
		sp = p.loadPlan()
	}
	switch {
	case sp != nil && !sp.done():
		rp.action, rp.plan = resumeSnapshot, sp
	case stream != nil:
		rp.start, err = startFrom(stream)
	case h != nil:
		p.log.Info("the shard count changed: starting at the oldest position of the shards before",
			"old_offsets", len(h.keys), "from", h.oldest.String(), "until", h.newest.String())
		rp.start, err = startFrom(h.oldestValue)
	case sp != nil:
		rp.start, err = startFrom(sp.start()) // a shard that had not streamed yet when the copy ended
	case p.cfg.SnapshotMode == config.SnapshotNever:
		p.log.Info("no committed offset and snapshot.mode=never: streaming from now")
		rp.start = &changestream.Start{}
	case p.spec.Shard == 0:
		rp.action = resumePlanSnapshot
	default:
		rp.action = resumeAwaitSnapshot
	}
	return rp, err
}

// restart starts the collection's snapshot again after the history from lost on was lost:
// every shard drops its position; shard 0 plans the snapshot, the other shards wait for that
// plan.
func (p *resumePlanner) restart(ctx context.Context, lost resumetoken.Position) error {
	if err := p.offsets.Commit(ctx, p.streamKey, nil); err != nil {
		return fmt.Errorf("drop offset %s to copy the collection again: %w", p.streamKey, err)
	}
	var err error
	if p.spec.Shard == 0 {
		_, err = p.createPlan(ctx)
	} else {
		_, err = p.awaitPlan(ctx, lost)
	}
	return err
}

func (p *resumePlanner) getOffset(key offsets.Key) (*offsets.Value, error) {
	v, err := p.offsets.Get(key)
	if errors.Is(err, offsets.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read offset %s: %w", key, err)
	}
	return v, nil
}

// startFrom is where a committed value starts the stream: after its resume token; at its
// cluster time (inclusive) when it has only that (a start point recorded as an operation time,
// or an offset set by PATCH /connectors/{name}/offsets); else now.
func startFrom(v *offsets.Value) (*changestream.Start, error) {
	if v.ResumeToken == nil {
		if v.ClusterTime != nil {
			return &changestream.Start{AtOperationTime: &bson.Timestamp{T: v.ClusterTime.T, I: v.ClusterTime.I}}, nil
		}
		return &changestream.Start{}, nil
	}
	pos, err := v.Position()
	if err != nil {
		return nil, err
	}
	return &changestream.Start{ResumeToken: tokenDoc(v.ResumeToken.Data), Position: pos}, nil
}

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
func (p *resumePlanner) loadPlan() plan {
	return loadPlan(p.offsets, p.cfg.Name, p.spec.DB, p.spec.Coll)
}

// loadPlan returns the snapshot plan of collection coll of db, as resumePlanner.loadPlan.
func loadPlan(store OffsetStore, connector, db, coll string) plan {
	var best, cur plan
	consider := func() {
		if len(cur) > 0 && len(cur) == cur[0].Key.Count &&
			(best == nil || clusterTimeOf(cur[0].Value).After(clusterTimeOf(best[0].Value))) {
			best = cur
		}
	}
	// Ordered by range count, then index: each count's ranges are consecutive.
	for _, e := range store.SnapshotRanges(connector, db, coll) {
		if len(cur) > 0 && cur[0].Key.Count != e.Key.Count {
			consider()
			cur = nil
		}
		cur = append(cur, e)
	}
	consider()
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
func (p *resumePlanner) createPlan(ctx context.Context) (plan, error) {
	p.stalls.begin(waitStreamOpen)
	s, err := p.mongo.watch(ctx, streamOptions(p.cfg), changestream.Start{})
	p.stalls.end(waitStreamOpen)
	if err != nil {
		return nil, err
	}
	tok := s.ResumeToken()
	_ = s.Close(ctx)
	if tok == nil {
		return nil, fmt.Errorf("record the change stream start point of %s.%s: the server returned no postBatchResumeToken", p.spec.DB, p.spec.Coll)
	}
	start, err := valueAt(tok)
	if err != nil {
		return nil, err
	}
	p.stalls.begin(waitSnapshotRead)
	cuts, err := p.mongo.splits(ctx, p.spec.Shards)
	p.stalls.end(waitSnapshotRead)
	if err != nil {
		return nil, err
	}
	m := len(cuts) + 1
	sp := make(plan, m)
	for r := range sp {
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
		sp[r] = offsets.Entry{Key: offsets.SnapshotKey(p.cfg.Name, p.spec.DB, p.spec.Coll, r, m), Value: &v}
	}
	for _, e := range p.offsets.SnapshotRanges(p.cfg.Name, p.spec.DB, p.spec.Coll) {
		if e.Key.Count != m {
			if err := p.offsets.Commit(ctx, e.Key, nil); err != nil {
				return nil, fmt.Errorf("remove the earlier snapshot range %s: %w", e.Key, err)
			}
		}
	}
	for _, e := range sp {
		if err := p.offsets.Commit(ctx, e.Key, e.Value); err != nil {
			return nil, fmt.Errorf("commit snapshot range %s: %w", e.Key, err)
		}
	}
	p.log.Info("snapshot planned", "ranges", m, "start_t", start.ClusterTime.T, "start_i", start.ClusterTime.I)
	return sp, nil
}

// awaitPlan waits until a plan exists whose start point is after notBefore (zero: any plan).
func (p *resumePlanner) awaitPlan(ctx context.Context, notBefore resumetoken.Position) (plan, error) {
	for {
		if sp := p.loadPlan(); sp != nil {
			pos, err := sp[0].Value.Position()
			if err == nil && resumetoken.Compare(pos, notBefore) > 0 {
				return sp, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(snapshotPoll):
		}
	}
}

// awaitDone waits until every range of the snapshot plan is done, by any shard, and returns
// the plan as it is then. It reads the plan before it first waits: the ranges this shard has
// just copied are done there, and when they were all it has, nothing is left to wait for.
func (p *resumePlanner) awaitDone(ctx context.Context) (plan, error) {
	for waited := false; ; waited = true {
		sp := p.loadPlan()
		switch {
		case sp == nil:
			return nil, errors.New("the snapshot plan disappeared while waiting for it (replaced after a history loss?)")
		case sp.done():
			return sp, nil
		case !waited:
			p.log.Info("waiting for the other shards' snapshot ranges")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(snapshotPoll):
		}
	}
}
