package tasks

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/envelope"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/snapshot"
	"github.com/mongorelay/mongorelay/tasks/taskmetrics"
)

// snapshotSource copies a task's ranges of its collection's snapshot plan (planner.go) as op
// "r" events into the writer.
type snapshotSource struct {
	spec    Spec
	cfg     *config.Config
	mongo   mongoReader
	w       recordWriter
	offsets offsetCommitter
	log     *slog.Logger
	stalls  *stalls
	metrics *taskmetrics.Unit
}

// copyRanges copies the ranges of p that are this shard's (r mod n == i) and not done yet.
func (s *snapshotSource) copyRanges(ctx context.Context, p plan) error {
	for r, e := range p {
		if r%s.spec.Shards != s.spec.Shard || e.Value.Snapshot.Done {
			continue
		}
		if err := s.copyRange(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// copyRange copies one range as op "r" records from where it stopped, committing its progress
// page by page, and marks it done once every record is acked.
func (s *snapshotSource) copyRange(ctx context.Context, e offsets.Entry) error {
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
	s.log.Info("copying a snapshot range", "range", e.Key.String(), "after_id", progress.LastID, "copied", progress.Copied)
	s.stalls.begin(waitSnapshotRead)
	r, err := s.mongo.pages(ctx, rng, after, s.cfg.MaxBatchSize)
	s.stalls.end(waitSnapshotRead)
	if err != nil {
		return err
	}
	defer func() { _ = r.Close(context.WithoutCancel(ctx)) }()
	db, coll := []byte(s.spec.DB), []byte(s.spec.Coll)
	pace := snapshot.NewPace(s.cfg.SnapshotMaxRate)
	for {
		g := s.w.openGroup()
		now := time.Now()
		// The wait for MongoDB ends with the page's first document: writing to Kafka is not
		// part of it.
		s.stalls.begin(waitSnapshotRead)
		first := true
		last, n, err := r.NextPage(ctx, func(doc bson.Raw) error {
			if first {
				s.stalls.end(waitSnapshotRead)
				first = false
			}
			ev, err := envelope.Snapshot(doc, db, coll, envelope.SnapshotTrue)
			if err != nil {
				return s.w.reject(ctx, g, doc, &ev, err)
			}
			return s.w.write(ctx, g, doc, &ev, now)
		})
		s.stalls.end(waitSnapshotRead)
		if err != nil {
			g.SealEmpty()
			return err
		}
		s.metrics.RowsScanned.Add(int64(n))
		if n == 0 {
			if err := s.w.seal(ctx, g, checkpoint{}, false, true); err != nil {
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
		if err := s.w.seal(ctx, g, checkpoint{key: e.Key, value: &v}, true, false); err != nil {
			return err
		}
		if err := pace.Wait(ctx, n); err != nil {
			return err
		}
	}
	// Done only once every record is acked and the last progress committed, so a crash never
	// leaves a range marked done with records missing, and no older progress lands after it.
	if err := s.w.flush(ctx); err != nil {
		return err
	}
	progress.Done = true
	v := *e.Value
	v.Snapshot = &progress
	if err := s.offsets.Commit(ctx, e.Key, &v); err != nil {
		return fmt.Errorf("commit snapshot range done %s: %w", e.Key, err)
	}
	s.log.Info("snapshot range copied", "range", e.Key.String(), "documents", progress.Copied)
	return nil
}
