package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/registry"
	"github.com/mongorelay/mongorelay/registry/registrytest"
	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/envelope"
)

// racingRegistry registers another task's schema right before a chosen registration of ours:
// the other task read the same latest version as we did and wrote first.
type racingRegistry struct {
	*registry.Registry
	before func(ctx context.Context) // run once, before the next value-schema registration
}

func (r *racingRegistry) Register(ctx context.Context, subject, schema string) (int, error) {
	if r.before != nil && strings.HasSuffix(subject, "-value") {
		before := r.before
		r.before = nil
		before(ctx)
	}
	return r.Registry.Register(ctx, subject, schema)
}

func insertEvent(t *testing.T, doc bson.D) *envelope.Event {
	t.Helper()
	raw, err := bson.Marshal(bson.D{
		{Key: "_id", Value: bson.D{{Key: "_data", Value: "8200000001000000012B0229296E04"}}},
		{Key: "operationType", Value: "insert"},
		{Key: "clusterTime", Value: bson.Timestamp{T: 1, I: 1}},
		{Key: "ns", Value: bson.D{{Key: "db", Value: "db"}, {Key: "coll", Value: "coll"}}},
		{Key: "documentKey", Value: bson.D{{Key: "_id", Value: 1}}},
		{Key: "fullDocument", Value: doc},
	})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := envelope.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &ev
}

// Two tasks of one topic evolve the schema at the same moment, each adding a field: whichever
// registers last must not leave the other's field out of the latest version, or consumers
// reading with the latest version lose it.
func TestEvolveKeepsFieldsRegisteredInBetween(t *testing.T) {
	ctx := context.Background()
	reg, err := registry.New(ctx, registrytest.NewStore(), registry.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	racing := &racingRegistry{Registry: reg}
	cfg := &config.Config{DocumentMode: config.DocumentTyped, TopicPrefix: "p"}
	ours, err := newRecordEncoder(ctx, racing, cfg, "db", "coll")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := newRecordEncoder(ctx, reg, cfg, "db", "coll")
	if err != nil {
		t.Fatal(err)
	}
	racing.before = func(ctx context.Context) {
		if _, err := theirs.appendValue(ctx, nil, insertEvent(t, bson.D{{Key: "_id", Value: 1}, {Key: "theirs", Value: "x"}}), 0); err != nil {
			t.Fatalf("the other task's document: %v", err)
		}
	}
	if _, err := ours.appendValue(ctx, nil, insertEvent(t, bson.D{{Key: "_id", Value: 1}, {Key: "ours", Value: int64(2)}}), 0); err != nil {
		t.Fatalf("our document: %v", err)
	}
	latest, err := reg.Latest(ctx, "p.db.coll-value")
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"name":"ours"`, `"name":"theirs"`} {
		if !strings.Contains(latest.Schema, field) {
			t.Errorf("latest version %d lacks %s:\n%s", latest.Version, field, latest.Schema)
		}
	}
	if ours.valueID != latest.ID {
		t.Errorf("our task encodes with schema %d, not the latest %d", ours.valueID, latest.ID)
	}
}

// Tasks of one process sharing Evolutions evolve one subject at once, each with a field of its
// own: the latest version ends with every field.
func TestConcurrentEvolutionsConverge(t *testing.T) {
	ctx := context.Background()
	reg, err := registry.New(ctx, registrytest.NewStore(), registry.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{DocumentMode: config.DocumentTyped, TopicPrefix: "p"}
	const topic, tasks = "p.db.coll", 8
	evolutions := NewEvolutions()
	encs := make([]*recordEncoder, tasks)
	for i := range encs {
		if encs[i], err = newRecordEncoder(ctx, reg, cfg, "db", "coll"); err != nil {
			t.Fatal(err)
		}
		encs[i].evolutions = evolutions
	}
	var wg sync.WaitGroup
	for i, enc := range encs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			doc := bson.D{{Key: "_id", Value: 1}, {Key: fmt.Sprintf("f%d", i), Value: int64(i)}}
			if _, err := enc.appendValue(ctx, nil, insertEvent(t, doc), 0); err != nil {
				t.Errorf("task %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	latest, err := reg.Latest(ctx, topic+"-value")
	if err != nil {
		t.Fatal(err)
	}
	for i := range tasks {
		if field := fmt.Sprintf(`"name":"f%d"`, i); !strings.Contains(latest.Schema, field) {
			t.Errorf("latest version %d lacks %s", latest.Version, field)
		}
	}
}

// In output.shape=document the registered schema is the document record with the added fields
// last: a task that starts later merges its documents into the registered document, without
// taking the added fields for document fields.
func TestTheDocumentShapeEvolvesFromTheRegisteredDocument(t *testing.T) {
	ctx := context.Background()
	reg, err := registry.New(ctx, registrytest.NewStore(), registry.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{DocumentMode: config.DocumentTyped, TopicPrefix: "p", OutputShape: config.ShapeDocument,
		DocumentFields: []string{"op", "source.collection"}}
	const topic = "p.db.coll"
	for i, doc := range []bson.D{{{Key: "_id", Value: 1}, {Key: "a", Value: "x"}}, {{Key: "_id", Value: 1}, {Key: "b", Value: int64(2)}}} {
		enc, err := newRecordEncoder(ctx, reg, cfg, "db", "coll")
		if err != nil {
			t.Fatal(err)
		}
		out, err := enc.appendValue(ctx, nil, insertEvent(t, doc), 0)
		if err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		v, err := registry.NewDecoder(reg).Decode(ctx, out)
		if err != nil {
			t.Fatal(err)
		}
		if m := v.(map[string]any); m["__op"] != "c" || m["__source_collection"] != "coll" {
			t.Errorf("document %d: added fields %v, %v", i, m["__op"], m["__source_collection"])
		}
	}
	latest, err := reg.Latest(ctx, topic+"-value")
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"name":"a"`, `"name":"b"`, `"name":"__op"`, `"name":"__source_collection"`} {
		if n := strings.Count(latest.Schema, field); n != 1 {
			t.Errorf("latest version %d has %s %d times:\n%s", latest.Version, field, n, latest.Schema)
		}
	}
	if !strings.HasSuffix(latest.Schema, `{"name":"__op","type":["null","string"],"default":null},{"name":"__source_collection","type":["null","string"],"default":null}]}`) {
		t.Errorf("the added fields are not last:\n%s", latest.Schema)
	}
}

// Keys and values in a JSON format register nothing; deletes and updates without their
// document come back as the errors the writer turns into a tombstone and into nothing.
func TestFormatsChosenOnce(t *testing.T) {
	ctx := context.Background()
	reg, err := registry.New(ctx, registrytest.NewStore(), registry.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{DocumentMode: config.DocumentTyped, TopicPrefix: "p", OutputShape: config.ShapeDocument,
		ValueFormat: config.ValueJSON, KeyFormat: config.KeyString}
	enc, err := newRecordEncoder(ctx, reg, cfg, "db", "coll")
	if err != nil {
		t.Fatal(err)
	}
	ev := insertEvent(t, bson.D{{Key: "_id", Value: 1}, {Key: "s", Value: nil}})
	key, err := enc.appendKey(nil, ev)
	if err != nil || string(key) != `{"$numberInt":"1"}` {
		t.Errorf("key %s, %v", key, err)
	}
	value, err := enc.appendValue(ctx, nil, ev, 0)
	if err != nil || string(value) != `{"_id":{"$numberInt":"1"},"s":null}` {
		t.Errorf("value %s, %v", value, err)
	}
	if subjects := reg.Subjects(true); len(subjects) != 0 {
		t.Errorf("subjects registered: %v", subjects)
	}
	ev.Op, ev.FullDocument = envelope.OpDelete, nil
	if _, err := enc.appendValue(ctx, nil, ev, 0); !errors.Is(err, envelope.ErrTombstone) {
		t.Errorf("a delete: %v, want ErrTombstone", err)
	}
	ev.Op = envelope.OpUpdate
	if _, err := enc.appendValue(ctx, nil, ev, 0); !errors.Is(err, envelope.ErrNoDocument) {
		t.Errorf("an update without its document: %v, want ErrNoDocument", err)
	}
}

// A document with a field named as an added field is a document error (errors.tolerance
// decides), not a registry one, even before the topic has a schema.
func TestADocumentTakingAnAddedFieldsNameIsAConversionError(t *testing.T) {
	ctx := context.Background()
	reg, err := registry.New(ctx, registrytest.NewStore(), registry.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{DocumentMode: config.DocumentTyped, TopicPrefix: "p", OutputShape: config.ShapeDocument, DocumentFields: []string{"op"}}
	enc, err := newRecordEncoder(ctx, reg, cfg, "db", "coll")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // before the first schema, then with one
		_, err := enc.appendValue(ctx, nil, insertEvent(t, bson.D{{Key: "_id", Value: 1}, {Key: "__op", Value: "x"}}), 0)
		if !isConversion(err) || !errors.Is(err, envelope.ErrFieldTaken) {
			t.Errorf("attempt %d: %v, want a conversion error with ErrFieldTaken", i, err)
		}
		if _, err := enc.appendValue(ctx, nil, insertEvent(t, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: "x"}}), 0); err != nil {
			t.Fatal(err)
		}
	}
}
