// Package incremental keeps the watermark window of one chunk of an incremental snapshot, the
// algorithm of DBLog that Debezium's incremental snapshots use: a chunk of a collection is read
// while its change stream goes on, and its rows are delivered in the stream at a point where
// each is still the document's latest state, so that per document the snapshot read never
// overtakes a change, nor a change its snapshot read.
//
// The chunk is read between two watermarks of the stream. The low one is the stream's position
// when the read starts: every change before it was delivered already, and the read sees it.
// The high one is MongoDB's operationTime once the read is over: no change after it is in the
// chunk. A change between them may or may not be, so the chunk's row of that document is
// dropped (the change itself, read from the stream, tells its state). Once the stream has
// passed the high watermark, the rows left are delivered, before any later change.
//
// The watermarks are cluster times rather than documents written to a signal collection (as
// Debezium does, so that they appear in the stream it reads): MongoDB stamps every reply with
// the cluster time of the data it read, and change stream events and post-batch resume tokens
// carry cluster times on the same clock, so no write is needed, a read-only user can snapshot,
// and no extra events reach the oplog or the stream.
package incremental

import (
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/tasks/resumetoken"
)

// Window is one chunk between its watermarks. It is not safe for concurrent use.
type Window struct {
	high bson.Timestamp
	docs []bson.Raw     // in the chunk's order; nil once dropped
	byID map[string]int // documentKey _id (key) → index in docs
	kept int
}

// Open returns the window of a chunk read after the stream's low watermark, whose read ended at
// cluster time high (the reply's operationTime), and whose documents are docs, in _id order.
// The window keeps docs; a document without an _id is an error.
func Open(high bson.Timestamp, docs []bson.Raw) (*Window, error) {
	w := &Window{high: high, docs: docs, byID: make(map[string]int, len(docs)), kept: len(docs)}
	for i, d := range docs {
		id, err := d.LookupErr("_id")
		if err != nil {
			return nil, fmt.Errorf("incremental snapshot chunk: document %d has no _id: %w", i, err)
		}
		w.byID[key(id)] = i
	}
	return w, nil
}

func key(id bson.RawValue) string { return string(rune(id.Type)) + string(id.Value) }

// High is the window's high watermark.
func (w *Window) High() bson.Timestamp { return w.high }

// Within reports whether a change at cluster time at falls inside the window (at or before
// its high watermark): it may or may not be in the chunk. One after it closes the window.
func (w *Window) Within(at bson.Timestamp) bool { return at.Compare(w.high) <= 0 }

// Changed records a change read from the stream inside the window: the document with _id id
// is dropped from the chunk. hasKey false (a drop, rename or invalidate, which changes every
// document) drops them all.
func (w *Window) Changed(id bson.RawValue, hasKey bool) {
	if !hasKey {
		for i := range w.docs {
			w.docs[i] = nil
		}
		w.kept = 0
		return
	}
	if i, ok := w.byID[key(id)]; ok && w.docs[i] != nil {
		w.docs[i] = nil
		w.kept--
	}
}

// PassedBy reports whether the stream has passed the high watermark at its post-batch resume
// token pbrt: a later cluster time, or the same one with nothing left to read (caughtUp):
// every change at that time has then been read, as MongoDB writes a transaction's changes at
// one cluster time.
func (w *Window) PassedBy(pbrt resumetoken.Position, caughtUp bool) bool {
	c := pbrt.ClusterTime.Compare(w.high)
	return c > 0 || (c == 0 && caughtUp)
}

// Rows returns the chunk's documents no change inside the window touched, in the chunk's order:
// deliver them once the window closes.
func (w *Window) Rows() []bson.Raw {
	out := make([]bson.Raw, 0, w.kept)
	for _, d := range w.docs {
		if d != nil {
			out = append(out, d)
		}
	}
	return out
}
