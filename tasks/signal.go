package tasks

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/tasks/envelope"
	"github.com/mongorelay/mongorelay/tasks/offsets"
)

// executeSnapshot is the type of Debezium's signal asking for an ad-hoc snapshot.
const executeSnapshot = "execute-snapshot"

// snapshotSignal reads the execute-snapshot signal an event of the signal collection
// (signal.data.collection) carries, as Debezium writes them:
//
//	{_id: <any>, type: "execute-snapshot", data: {"data-collections": ["db.coll", ...], type: "incremental"}}
//
// (data may also be that object as a JSON string, as Debezium's signal tables hold it) and
// returns its collections and its _id as extended JSON (the signal's identity). ok is false
// for an event that is no such signal: not an insert, or another type. A signal without
// collections is an error, for the caller to log. Debezium's "blocking" snapshots, which pause
// the stream, are copied as incremental ones: the stream never pauses.
func snapshotSignal(ev *envelope.Event) (collections []string, id string, ok bool, err error) {
	if ev.Op != envelope.OpInsert || ev.FullDocument == nil {
		return nil, "", false, nil
	}
	doc := ev.FullDocument
	if t, _ := doc.Lookup("type").StringValueOK(); t != executeSnapshot {
		return nil, "", false, nil
	}
	if id, err = offsets.EncodeID(doc.Lookup("_id")); err != nil {
		return nil, "", true, err
	}
	data, _ := doc.Lookup("data").DocumentOK()
	if text, isString := doc.Lookup("data").StringValueOK(); isString {
		if err := bson.UnmarshalExtJSON([]byte(text), false, &data); err != nil {
			return nil, id, true, fmt.Errorf("signal %s: data is not a JSON object: %w", id, err)
		}
	}
	list, _ := data.Lookup("data-collections").ArrayOK()
	values, _ := list.Values()
	for _, v := range values {
		if ns, isString := v.StringValueOK(); isString && ns != "" {
			collections = append(collections, ns)
		}
	}
	if len(collections) == 0 {
		return nil, id, true, fmt.Errorf(`signal %s names no collection: give data: {"data-collections": ["<database>.<collection>", ...]}`, id)
	}
	return collections, id, true, nil
}

// readSignal records ev's execute-snapshot signal, if it is one (s.signal); a malformed
// signal is logged and dropped.
func (s *streamSource) readSignal(ctx context.Context, ev *envelope.Event) error {
	collections, id, ok, err := snapshotSignal(ev)
	switch {
	case !ok:
		return nil
	case err != nil:
		s.log.Warn("execute-snapshot signal ignored", "err", err)
		return nil
	}
	s.log.Info("execute-snapshot signal read", "signal", id, "collections", collections)
	return s.signal(ctx, collections, id)
}
