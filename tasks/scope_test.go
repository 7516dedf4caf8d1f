package tasks

import (
	"testing"

	"github.com/mongorelay/mongorelay/tasks/envelope"
	"github.com/mongorelay/mongorelay/tasks/offsets"
)

// TestScopeFilterKeepsIncludedEventsPastTheirCollectionsCopy: a scope stream's event becomes
// a record when its collection is captured and, for a collection copied by a snapshot plan,
// when it comes after the plan's start point (the copy holds what came before).
func TestScopeFilterKeepsIncludedEventsPastTheirCollectionsCopy(t *testing.T) {
	_, store := testKafka(t)
	cfg := testConfig(t, map[string]string{"capture.scope": "database", "collection.include.list": `db\.(orders|people)`})
	commitAll(t, store,
		offsets.Entry{Key: offsets.SnapshotKey(cfg.Name, "db", "orders", 0, 2), Value: rangeAt(t, 100, true)},
		offsets.Entry{Key: offsets.SnapshotKey(cfg.Name, "db", "orders", 1, 2), Value: rangeAt(t, 100, true)},
		// people's plan is not done: no copy holds its events.
		offsets.Entry{Key: offsets.SnapshotKey(cfg.Name, "db", "people", 0, 1), Value: rangeAt(t, 100, false)},
	)
	f := newScopeFilter(cfg, store)
	for _, tc := range []struct {
		coll string
		ts   uint32
		keep bool
	}{
		{"orders", 99, false},
		{"orders", 100, false}, // the start point itself
		{"people", 99, true},
		{"events", 101, false}, // not captured
		{"orders", 101, true},
		{"orders", 102, true},
		{"system.views", 103, false},
	} {
		ev := envelope.Event{DB: []byte("db"), Collection: []byte(tc.coll), ResumeToken: []byte(token(tc.ts, 1))}
		keep, err := f.keep(&ev)
		if err != nil || keep != tc.keep {
			t.Errorf("db.%s at %d: keep %v, %v; want %v", tc.coll, tc.ts, keep, err, tc.keep)
		}
	}
}
