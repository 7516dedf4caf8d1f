package local_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/internal/testenv"
	"github.com/mongorelay/mongorelay/tasks/changestream"
)

// openCursors is serverStatus().metrics.cursor.open.total: every open cursor of the server.
func openCursors(t *testing.T, ctx context.Context, client *mongo.Client) int64 {
	t.Helper()
	var status struct {
		Metrics struct {
			Cursor struct {
				Open struct {
					Total int64 `bson:"total"`
				} `bson:"open"`
			} `bson:"cursor"`
		} `bson:"metrics"`
	}
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "serverStatus", Value: 1}}).Decode(&status); err != nil {
		t.Fatalf("serverStatus: %v", err)
	}
	return status.Metrics.Cursor.Open.Total
}

// idleCursor is the part of a $currentOp idle cursor entry the test reads.
type idleCursor struct {
	Type    string `bson:"type"`
	NS      string `bson:"ns"`
	AppName string `bson:"appName"`
	Cursor  struct {
		CursorID           int64 `bson:"cursorId"`
		OriginatingCommand struct {
			Pipeline []bson.Raw `bson:"pipeline"`
		} `bson:"originatingCommand"`
	} `bson:"cursor"`
}

// idleCursorsOf lists, with $currentOp, the idle cursors of the clients named appName.
func idleCursorsOf(t *testing.T, ctx context.Context, client *mongo.Client, appName string) []idleCursor {
	t.Helper()
	cur, err := client.Database("admin").Aggregate(ctx, mongo.Pipeline{
		{{Key: "$currentOp", Value: bson.D{{Key: "idleCursors", Value: true}}}},
		{{Key: "$match", Value: bson.D{{Key: "type", Value: "idleCursor"}, {Key: "appName", Value: appName}}}},
	})
	if err != nil {
		t.Fatalf("$currentOp: %v", err)
	}
	var ops []idleCursor
	if err := cur.All(ctx, &ops); err != nil {
		t.Fatalf("read $currentOp: %v", err)
	}
	return ops
}

func TestMongoStandinCountsOpenChangeStreams(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A private server: the shared one's cursor total moves with every other test.
	uri := testenv.StartMongo(t)
	watcher, err := mongo.Connect(options.Client().ApplyURI(uri).SetAppName("cursor-counting-test"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer func() { _ = watcher.Disconnect(context.WithoutCancel(ctx)) }()
	observer := newMongoClient(t, uri)
	// Another client's stream is counted in the total and not under the watcher's appName.
	other, err := observer.Database("counting").Collection("other").Watch(ctx, mongo.Pipeline{})
	if err != nil {
		t.Fatalf("open the observer's stream: %v", err)
	}
	defer func() { _ = other.Close(context.WithoutCancel(ctx)) }()

	before := openCursors(t, ctx, observer)
	if n := len(idleCursorsOf(t, ctx, observer, "cursor-counting-test")); n != 0 {
		t.Fatalf("%d cursors of the watcher before it opened any", n)
	}
	// Collection, database and cluster streams.
	const n = 5
	var streams []*mongo.ChangeStream
	for i := range n {
		var cs *mongo.ChangeStream
		switch i % 3 {
		case 0:
			cs, err = watcher.Database("counting").Collection("docs").Watch(ctx, mongo.Pipeline{})
		case 1:
			cs, err = watcher.Database("counting").Watch(ctx, mongo.Pipeline{})
		default:
			cs, err = watcher.Watch(ctx, mongo.Pipeline{})
		}
		if err != nil {
			t.Fatalf("open stream %d: %v", i, err)
		}
		streams = append(streams, cs)
	}

	if got := openCursors(t, ctx, observer); got != before+n {
		t.Errorf("serverStatus metrics.cursor.open.total %d with %d streams open, want %d", got, n, before+n)
	}
	ops := idleCursorsOf(t, ctx, observer, "cursor-counting-test")
	if len(ops) != n {
		t.Fatalf("$currentOp lists %d cursors of the watcher, want %d: %v", len(ops), n, ops)
	}
	for _, op := range ops {
		pipeline := op.Cursor.OriginatingCommand.Pipeline
		if op.Cursor.CursorID == 0 || len(pipeline) == 0 || pipeline[0].Lookup("$changeStream").Type != bson.TypeEmbeddedDocument {
			t.Errorf("idle cursor %+v has no id or no $changeStream command", op)
		}
	}

	for _, cs := range streams {
		if err := cs.Close(ctx); err != nil {
			t.Fatalf("close stream: %v", err)
		}
	}
	if got := openCursors(t, ctx, observer); got != before {
		t.Errorf("serverStatus metrics.cursor.open.total %d after closing the streams, want %d", got, before)
	}
	if ops := idleCursorsOf(t, ctx, observer, "cursor-counting-test"); len(ops) != 0 {
		t.Errorf("$currentOp still lists %d cursors of the watcher after it closed them", len(ops))
	}
}

func TestMongoStandinIsTooOldToSplitLargeEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	split, err := changestream.ServerSplitsLargeEvents(ctx, newMongoClient(t, testenv.Mongo(t)))
	if err != nil {
		t.Fatal(err)
	}
	if split {
		t.Error("the stand-in (MongoDB 6.0.0) is taken to run $changeStreamSplitLargeEvent: tasks would send it the stage it refuses")
	}
}
