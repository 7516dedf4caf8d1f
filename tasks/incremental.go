package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/tasks/connector"
	"github.com/mongorelay/mongorelay/tasks/envelope"
	"github.com/mongorelay/mongorelay/tasks/incremental"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/shard"
	"github.com/mongorelay/mongorelay/tasks/taskmetrics"
)

// requestPoll is how often a streaming task looks for a new ad-hoc snapshot request.
const requestPoll = time.Second

// incrementalSnapshot copies a task's shard of its collection again, while the stream runs,
// for each ad-hoc snapshot request naming the collection: chunk by chunk in _id order (chunks
// of max.batch.size documents), each chunk's rows of this shard delivered as op "r" events
// (source.snapshot "incremental") when its watermark window closes (package incremental).
// Its progress rides in the stream's checkpoints (offsets.Incremental), so a restarted task
// goes on from the last chunk delivered. With shards > 1 every shard reads each chunk whole and
// keeps its own documents (a hash shard cannot be range-scanned), so that each document's
// read goes through the task that streams its changes.
type incrementalSnapshot struct {
	spec     Spec
	mongo    mongoReader
	requests func() []connector.SnapshotRequest
	offsets  OffsetStore
	key      offsets.Key
	log      *slog.Logger
	stalls   *stalls
	metrics  *taskmetrics.Unit

	progress  offsets.Incremental
	changed   bool // progress moved since state last returned it
	window    *incremental.Window
	chunkLast string // the _id (offsets.EncodeID) of the last document of the window's chunk
	polled    time.Time
}

// load reads the progress the stream's offset holds, as the stream (re)starts from it; a
// window left open by a stream that stopped is read again from its chunk's start. A shard
// whose offset has none (it has never streamed with it) is done with every request made so
// far: its own snapshot, or the stream since its collection was created, has delivered the
// documents they asked for.
func (s *incrementalSnapshot) load() error {
	s.progress, s.window, s.changed = offsets.Incremental{}, nil, true
	v, err := s.offsets.Get(s.key)
	switch {
	case errors.Is(err, offsets.ErrNotFound):
	case err != nil:
		return fmt.Errorf("read offset %s: %w", s.key, err)
	case v.Incremental != nil:
		s.progress = *v.Incremental
	}
	if v == nil || v.Incremental == nil {
		if reqs := s.requests(); len(reqs) > 0 {
			s.progress.Handled = reqs[len(reqs)-1].ID
		}
	}
	return nil
}

// state is the progress to commit with the stream's next checkpoint, and whether it moved
// since the last call (a checkpoint that moves it is not an idle one).
func (s *incrementalSnapshot) state() (*offsets.Incremental, bool) {
	p, changed := s.progress, s.changed
	s.changed = false
	return &p, changed
}

// next picks the oldest request after the last one handled that names the collection, at
// most once per requestPoll, and reports whether one is being copied.
func (s *incrementalSnapshot) next(now time.Time) bool {
	if s.progress.Request != 0 {
		return true
	}
	if now.Sub(s.polled) < requestPoll {
		return false
	}
	s.polled = now
	ns := s.spec.DB + "." + s.spec.Coll
	for _, r := range s.requests() {
		if r.ID > s.progress.Handled && slices.Contains(r.Collections, ns) {
			s.progress.Request, s.progress.LastID, s.progress.Copied = r.ID, "", 0
			s.changed = true
			s.log.Info("incremental snapshot requested: copying the collection while it streams", "request", r.ID)
			return true
		}
	}
	return false
}

// open reads the next chunk and opens its window, unless a window is open or no request is
// being copied. After the collection's last chunk, the request is done.
func (s *incrementalSnapshot) open(ctx context.Context, now time.Time, limit int) error {
	if s.window != nil || !s.next(now) {
		return nil
	}
	var after bson.RawValue
	if s.progress.LastID != "" {
		var err error
		if after, err = offsets.DecodeID(s.progress.LastID); err != nil {
			return fmt.Errorf("incremental snapshot progress of %s: %w", s.key, err)
		}
	}
	s.stalls.begin(waitSnapshotRead)
	docs, high, err := s.mongo.chunk(ctx, after, limit)
	s.stalls.end(waitSnapshotRead)
	if err != nil {
		return err
	}
	if len(docs) == 0 {
		s.log.Info("incremental snapshot copied", "request", s.progress.Request, "documents", s.progress.Copied)
		s.progress, s.changed = offsets.Incremental{Handled: s.progress.Request}, true
		return nil
	}
	last, err := offsets.EncodeID(docs[len(docs)-1].Lookup("_id"))
	if err != nil {
		return err
	}
	mine := docs[:0]
	for _, d := range docs {
		if s.spec.Shards > 1 {
			i, err := shard.ForID(d.Lookup("_id"), s.spec.Shards)
			if err != nil {
				return fmt.Errorf("incremental snapshot: shard of a document of %s.%s: %w", s.spec.DB, s.spec.Coll, err)
			}
			if i != s.spec.Shard {
				continue
			}
		}
		mine = append(mine, d)
	}
	if len(mine) == 0 {
		s.progress.LastID, s.changed = last, true
		return nil
	}
	if s.window, err = incremental.Open(high, mine); err != nil {
		return err
	}
	s.chunkLast = last
	return nil
}

// observe applies a change read from the stream to the open window: a change after its high
// watermark first delivers the chunk's rows into g (they come before it); one inside drops its
// document's row.
func (s *incrementalSnapshot) observe(ctx context.Context, w recordWriter, g *ackGroup[checkpoint], ev *envelope.Event, now time.Time) error {
	if s.window == nil {
		return nil
	}
	if !s.window.Within(ev.ClusterTime) {
		return s.deliver(ctx, w, g, now)
	}
	switch {
	case ev.Kind() == envelope.KindRecord:
		s.window.Changed(ev.ID(), true)
	case ev.Op == envelope.OpDrop, ev.Op == envelope.OpRename, ev.Op == envelope.OpDropDatabase, ev.Op == envelope.OpInvalidate:
		s.window.Changed(bson.RawValue{}, false)
	}
	return nil
}

// passed delivers the open window's rows into g when the batch's post-batch resume token, the
// position of v, is past its high watermark.
func (s *incrementalSnapshot) passed(ctx context.Context, w recordWriter, g *ackGroup[checkpoint], v *offsets.Value, caughtUp bool, now time.Time) error {
	if s.window == nil {
		return nil
	}
	pos, err := v.Position()
	if err != nil || !s.window.PassedBy(pos, caughtUp) {
		return nil
	}
	return s.deliver(ctx, w, g, now)
}

// deliver writes the open window's rows into g as op "r" events and closes it.
func (s *incrementalSnapshot) deliver(ctx context.Context, w recordWriter, g *ackGroup[checkpoint], now time.Time) error {
	rows := s.window.Rows()
	s.window = nil
	db, coll := []byte(s.spec.DB), []byte(s.spec.Coll)
	for _, doc := range rows {
		ev, err := envelope.Snapshot(doc, db, coll, envelope.SnapshotIncremental)
		if err != nil {
			err = w.reject(ctx, g, doc, &ev, err)
		} else {
			err = w.write(ctx, g, doc, &ev, now)
		}
		if err != nil {
			return err
		}
	}
	s.metrics.RowsScanned.Add(int64(len(rows)))
	s.progress.LastID = s.chunkLast
	s.progress.Copied += int64(len(rows))
	s.changed = true
	return nil
}
