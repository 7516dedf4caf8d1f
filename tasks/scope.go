package tasks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mongorelay/mongorelay/tasks/changestream"
	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/envelope"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/resumetoken"
)

// A scope task (capture.scope=database or deployment) streams the collections of its scope
// through one change stream, but copies them as collections' shards do: each collection of the
// scope that exists when the scope is first planned gets its own snapshot plan (planner.go),
// under its own offset keys, and shard i of the scope copies its ranges r with r mod n == i.
//
// Shard 0 plans: it records the scope stream's present position S, then lists the scope's
// collections and plans those without a plan, then commits the scope's snapshot marker (the key
// {"db","coll":"*","snapshot":"0-of-1"}, holding S, done) once every plan is committed. The
// other shards wait for the marker, so they never wait for the plan of a collection shard 0 did
// not list. Once the marker exists no one plans again: a restarted copy copies the same plans.
// Every shard then streams from the oldest of S and the plans' start points, and drops each
// collection's events at or before its own plan's start point, which its copy holds
// (scopeFilter). A collection created after the listing has no plan: it streams from S, before
// its creation. Each shard lists the collections again to find the plans; a collection dropped
// meanwhile may miss some shard's listing, so its ranges are waited for only while it exists.

// scopeCollections is what a scope task reads of its scope's collections: the reader of the
// scope's stream (scopeReader) lists them and reads each as a collection's task would.
type scopeCollections interface {
	collections(ctx context.Context) ([]namespace, error)
	exists(ctx context.Context, ns namespace) (bool, error)
	collection(ns namespace) mongoReader
}

// copyScope copies this shard's part of the scope's collections, planning them first (shard 0)
// or waiting for their plans, and returns where the scope's stream starts.
func (t *Task) copyScope(ctx context.Context) (*offsets.Value, error) {
	sc, ok := t.planner.mongo.(scopeCollections)
	if !ok {
		return nil, fmt.Errorf("task %s reads no scope", t.spec.Name())
	}
	marker := offsets.SnapshotKey(t.cfg.Name, t.spec.DB, t.spec.Coll, 0, 1)
	start, err := t.planner.getOffset(marker)
	switch {
	case err != nil:
		return nil, err
	case start == nil && t.spec.Shard == 0:
		start, err = t.planScope(ctx, sc, marker)
	case start == nil:
		start, err = t.awaitScopePlan(ctx, marker)
	}
	if err != nil {
		return nil, err
	}
	startPos, err := start.Position()
	if err != nil {
		return nil, fmt.Errorf("scope snapshot marker %s: %w", marker, err)
	}
	nss, err := sc.collections(ctx)
	if err != nil {
		return nil, err
	}
	for _, ns := range nss {
		p := t.collectionPlanner(sc, ns)
		sp := p.loadPlan()
		if sp == nil {
			continue // created after the plans: streamed from the start point, before its creation
		}
		if err := t.collectionSnapshot(sc, ns).copyRanges(ctx, sp); err != nil {
			return nil, fmt.Errorf("copy %s: %w", ns, err)
		}
		if sp, err = t.awaitCopied(ctx, sc, p, ns, sp); err != nil {
			return nil, fmt.Errorf("copy %s: %w", ns, err)
		}
		v := sp.start()
		pos, err := v.Position()
		if err != nil {
			return nil, fmt.Errorf("snapshot plan of %s: %w", ns, err)
		}
		if resumetoken.Compare(pos, startPos) < 0 {
			start, startPos = v, pos
		}
	}
	// At a cluster time rather than after a token: the oldest start point may be a collection
	// stream's token, and events at it that were copied are dropped by the scope filter.
	return &offsets.Value{Version: offsets.FormatVersion,
		ClusterTime: &offsets.ClusterTime{T: startPos.ClusterTime.T, I: startPos.ClusterTime.I}}, nil
}

// awaitCopied waits until every range of collection ns's plan sp is done, by any shard, as
// resumePlanner.awaitDone does, or until the collection is gone: a shard whose listing missed
// it never copies its ranges. It returns the plan as it is then.
func (t *Task) awaitCopied(ctx context.Context, sc scopeCollections, p *resumePlanner, ns namespace, sp plan) (plan, error) {
	for !sp.done() {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(snapshotPoll):
		}
		if sp = p.loadPlan(); sp == nil {
			return nil, errors.New("the snapshot plan disappeared while waiting for it")
		}
		if exists, err := sc.exists(ctx, ns); err != nil || !exists {
			if err == nil {
				t.log.Info("a collection was dropped during the scope's copy: not waiting for the rest of it", "ns", ns.String())
			}
			return sp, err
		}
	}
	return sp, nil
}

// planScope records the scope's stream start point, plans every collection of the scope that
// has no plan, and commits the marker that says so.
func (t *Task) planScope(ctx context.Context, sc scopeCollections, marker offsets.Key) (*offsets.Value, error) {
	t.stalls.begin(waitStreamOpen)
	s, err := t.planner.mongo.watch(ctx, streamOptions(t.cfg), changestream.Start{})
	t.stalls.end(waitStreamOpen)
	if err != nil {
		return nil, err
	}
	tok := s.ResumeToken()
	_ = s.Close(ctx)
	if tok == nil {
		return nil, fmt.Errorf("record the change stream start point of %s: the server returned no postBatchResumeToken", t.spec.Name())
	}
	start, err := valueAt(tok)
	if err != nil {
		return nil, err
	}
	nss, err := sc.collections(ctx)
	if err != nil {
		return nil, err
	}
	for _, ns := range nss {
		p := t.collectionPlanner(sc, ns)
		if p.loadPlan() != nil {
			continue
		}
		if _, err := p.createPlan(ctx); err != nil {
			return nil, fmt.Errorf("plan the snapshot of %s: %w", ns, err)
		}
	}
	v := *start
	v.Snapshot = &offsets.Snapshot{Done: true}
	if err := t.planner.offsets.Commit(ctx, marker, &v); err != nil {
		return nil, fmt.Errorf("commit the scope's snapshot marker %s: %w", marker, err)
	}
	t.log.Info("scope snapshot planned", "collections", len(nss), "start_t", start.ClusterTime.T, "start_i", start.ClusterTime.I)
	return start, nil
}

// awaitScopePlan waits until shard 0 has committed the scope's snapshot marker.
func (t *Task) awaitScopePlan(ctx context.Context, marker offsets.Key) (*offsets.Value, error) {
	t.log.Info("waiting for shard 0 to plan the scope's snapshot")
	for {
		v, err := t.planner.getOffset(marker)
		if err != nil || v != nil {
			return v, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(snapshotPoll):
		}
	}
}

// collectionSpec is this scope shard's share of one collection.
func (t *Task) collectionSpec(ns namespace) Spec {
	s := t.spec
	s.DB, s.Coll = ns.db, ns.coll
	return s
}

// collectionPlanner plans and follows collection ns's snapshot as its shard's task would.
func (t *Task) collectionPlanner(sc scopeCollections, ns namespace) *resumePlanner {
	spec := t.collectionSpec(ns)
	return &resumePlanner{spec: spec, cfg: t.cfg, offsets: t.planner.offsets, mongo: sc.collection(ns), log: t.log.With("ns", ns.String()),
		streamKey: offsets.ShardKey(t.cfg.Name, spec.DB, spec.Coll, spec.Shard, spec.Shards), stalls: t.stalls}
}

// collectionSnapshot copies this shard's ranges of collection ns into the task's writer.
func (t *Task) collectionSnapshot(sc scopeCollections, ns namespace) *snapshotSource {
	return &snapshotSource{spec: t.collectionSpec(ns), cfg: t.cfg, mongo: sc.collection(ns), w: t.writer,
		offsets: t.planner.offsets, log: t.log.With("ns", ns.String()), stalls: t.stalls, metrics: t.snapshot.metrics}
}

// errScopeHistoryLost refuses to copy a scope again after its history was lost.
var errScopeHistoryLost = errors.New("copying a database or deployment again after its change stream history was lost is not built: " +
	"reset the connector's offsets (DELETE /connectors/{name}/offsets while STOPPED) to copy it from the start")

// scopeFilter decides, for a scope task's stream, which events become records: those of the
// connector's collections (the server filters by the same lists, in MongoDB's regular
// expression dialect: this is the authoritative check), past the start point of their
// collection's snapshot plan when it has one. Its answers are kept per collection, so an event
// costs two map lookups, and a token decode only until its collection's stream has passed its
// plan's start point.
type scopeFilter struct {
	cfg     *config.Config
	offsets OffsetStore
	byNS    map[string]map[string]*scopeNS
}

// scopeNS is what scopeFilter knows of one collection.
type scopeNS struct {
	included bool
	// fence is the start point of the collection's snapshot plan while events at or before it
	// may still come; nil once past it, or without a plan.
	fence *resumetoken.Position
}

func newScopeFilter(cfg *config.Config, store OffsetStore) *scopeFilter {
	return &scopeFilter{cfg: cfg, offsets: store, byNS: map[string]map[string]*scopeNS{}}
}

// keep reports whether ev becomes a record.
func (f *scopeFilter) keep(ev *envelope.Event) (bool, error) {
	ns, ok := f.byNS[string(ev.DB)][string(ev.Collection)]
	if !ok {
		ns = f.learn(string(ev.DB), string(ev.Collection))
	}
	if !ns.included {
		return false, nil
	}
	if ns.fence == nil {
		return true, nil
	}
	pos, err := resumetoken.Decode(string(ev.ResumeToken))
	if err != nil {
		return false, fmt.Errorf("decode change event token: %w", err)
	}
	if resumetoken.Compare(pos, *ns.fence) <= 0 {
		return false, nil // the collection's copy holds it
	}
	ns.fence = nil // positions only grow
	return true, nil
}

// learn reads what the filter needs of collection coll of db.
func (f *scopeFilter) learn(db, coll string) *scopeNS {
	ns := &scopeNS{included: f.cfg.Includes(db, coll)}
	if ns.included {
		if sp := loadPlan(f.offsets, f.cfg.Name, db, coll); sp != nil && sp.done() {
			if pos, err := sp.start().Position(); err == nil {
				ns.fence = &pos
			}
		}
	}
	if f.byNS[db] == nil {
		f.byNS[db] = map[string]*scopeNS{}
	}
	f.byNS[db][coll] = ns
	return ns
}
