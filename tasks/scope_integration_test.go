package tasks_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/tasks"
	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// runScope runs shard i of n of the scope task of database db ("*": the deployment's),
// creating the collections' topics as they come; it returns a stop that returns Run's error.
func (e *env) runScope(cfg *config.Config, db string, i, n int) func() error {
	e.t.Helper()
	spec := tasks.Spec{Connector: cfg, DB: db, Coll: taskid.AllCollections, Shard: i, Shards: n}
	adm := kadm.NewClient(e.kafka)
	task := tasks.New(spec, tasks.Deps{
		Mongo: e.mongo, Offsets: e.offsets, Registry: e.reg,
		Transactional: &tasks.Transactional{
			ID:         e.txnID(spec.Name()),
			ClientOpts: []kgo.Opt{kgo.SeedBrokers(e.brokers...)},
			RetiredID:  e.txnID,
		},
		Logger: slog.New(slog.NewTextHandler(testLogOutput(), nil)),
		CreateTopic: func(ctx context.Context, topic string) (int, error) {
			resp, err := adm.CreateTopic(ctx, 1, 1, nil, topic)
			if err == nil {
				err = resp.Err
			}
			if errors.Is(err, kerr.TopicAlreadyExists) {
				err = nil
			}
			return 0, err
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- task.Run(ctx) }()
	return func() error {
		cancel()
		return <-done
	}
}

// TestScopeTasksCopyThenStreamEveryCollectionToItsTopic: two shards of a database's (or the
// deployment's) scope task copy the captured collections that exist (op r), then stream their
// changes and those of a collection created meanwhile, each on its collection's topic, in
// order per document; a collection of the database that is not captured gets no topic.
func TestScopeTasksCopyThenStreamEveryCollectionToItsTopic(t *testing.T) {
	for _, scope := range []string{"database", "deployment"} {
		t.Run(scope, func(t *testing.T) { testScopeTask(t, scope) })
	}
}

func testScopeTask(t *testing.T, scope string) {
	e := newEnv(t)
	unit := e.db
	if scope == "deployment" {
		unit = taskid.AllCollections
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := e.mongo.Database(e.db)
	for _, coll := range []string{"a", "b", "x"} {
		var docs []any
		for i := range 20 {
			docs = append(docs, bson.D{{Key: "_id", Value: int32(i)}, {Key: "v", Value: int32(0)}})
		}
		if _, err := db.Collection(coll).InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
	}
	cfg := e.connector(map[string]string{
		"capture.scope":           scope,
		"collection.include.list": fmt.Sprintf(`%s\.(a|b|c)`, e.db),
		"snapshot.mode":           "initial",
		"shards":                  "2",
		"shard.filter":            "client",
	})
	var stops []func() error
	for i := range 2 {
		stops = append(stops, e.runScope(cfg, unit, i, 2))
	}
	defer func() {
		for _, stop := range stops {
			if err := stop(); err != nil {
				t.Errorf("stop: %v", err)
			}
		}
	}()
	for i := range 2 {
		awaitCommitted(ctx, t, e.offsets, offsets.ShardKey(cfg.Name, unit, taskid.AllCollections, i, 2))
	}

	for i := range 20 {
		if _, err := db.Collection("a").UpdateOne(ctx, bson.D{{Key: "_id", Value: int32(i)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: int32(1)}}}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, coll := range []string{"c", "x"} {
		if _, err := db.Collection(coll).InsertOne(ctx, bson.D{{Key: "_id", Value: "new"}}); err != nil {
			t.Fatal(err)
		}
	}

	ops := func(recs []rec) map[string]string {
		out := map[string]string{}
		for _, r := range recs {
			out[r.key] += r.op
		}
		return out
	}
	a := ops(e.consumeSettled(cfg.Topic(e.db, "a"), 40, time.Second))
	b := ops(e.consumeSettled(cfg.Topic(e.db, "b"), 20, time.Second))
	c := ops(e.consumeSettled(cfg.Topic(e.db, "c"), 1, time.Second))
	for i := range 20 {
		key := fmt.Sprintf(`{"$numberInt":"%d"}`, i) // canonical extended JSON of the _id
		if got := a[key]; got != "ru" {
			t.Errorf("a %d: records %q, want r then u", i, got)
		}
		if got := b[key]; got != "r" {
			t.Errorf("b %d: records %q, want r", i, got)
		}
	}
	if len(a) != 20 || len(b) != 20 || len(c) != 1 || c[`"new"`] != "c" {
		t.Errorf("keys: a %d, b %d, c %v; want 20, 20 and the created document as c", len(a), len(b), c)
	}
	topics, err := kadm.NewClient(e.kafka).ListTopics(ctx, cfg.Topic(e.db, "x"))
	if err != nil {
		t.Fatal(err)
	}
	if topics.Has(cfg.Topic(e.db, "x")) {
		t.Errorf("the collection that is not captured has a topic")
	}
}

// awaitCommitted waits until key has a committed offset.
func awaitCommitted(ctx context.Context, t *testing.T, store *offsets.Store, key offsets.Key) {
	t.Helper()
	for {
		if err := store.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Get(key); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no offset committed for %s", key)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
