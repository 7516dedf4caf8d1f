package local_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/internal/testenv"
)

// These tests prove the MongoDB stand-in (deploy/local/mongo-standin) serves change streams the
// way the project relies on: real event shapes, resume tokens that resume exactly where they
// should, post-batch resume tokens that move while idle, and a lost resume point that fails
// with error 286 like a real server.

// newMongoClient connects to uri and disconnects when the test ends.
func newMongoClient(t *testing.T, uri string) *mongo.Client {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatalf("connect to %s: %v", uri, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Disconnect(ctx)
	})
	return client
}

var nonWord = regexp.MustCompile(`\W+`)

// testCollection returns a collection only this test uses on the shared stand-in.
func testCollection(t *testing.T, client *mongo.Client) *mongo.Collection {
	t.Helper()
	db := fmt.Sprintf("envtest_%s_%d", nonWord.ReplaceAllString(t.Name(), "_"), time.Now().UnixNano())
	if len(db) > 60 {
		db = db[len(db)-60:]
	}
	return client.Database(db).Collection("docs")
}

func watch(t *testing.T, ctx context.Context, target interface {
	Watch(context.Context, any, ...options.Lister[options.ChangeStreamOptions]) (*mongo.ChangeStream, error)
}, opts *options.ChangeStreamOptionsBuilder) *mongo.ChangeStream {
	t.Helper()
	cs, err := target.Watch(ctx, mongo.Pipeline{}, opts)
	if err != nil {
		t.Fatalf("open change stream: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close(context.Background()) })
	return cs
}

// changeEvent is the part of a change event the tests look at.
type changeEvent struct {
	ID                bson.Raw       `bson:"_id"`
	OperationType     string         `bson:"operationType"`
	ClusterTime       bson.Timestamp `bson:"clusterTime"`
	WallTime          time.Time      `bson:"wallTime"`
	NS                bson.M         `bson:"ns"`
	DocumentKey       bson.M         `bson:"documentKey"`
	FullDocument      bson.Raw       `bson:"fullDocument"`
	UpdateDescription *struct {
		UpdatedFields   bson.M   `bson:"updatedFields"`
		RemovedFields   []string `bson:"removedFields"`
		TruncatedArrays []bson.M `bson:"truncatedArrays"`
	} `bson:"updateDescription"`
}

func nextEvent(t *testing.T, ctx context.Context, cs *mongo.ChangeStream) changeEvent {
	t.Helper()
	if !cs.Next(ctx) {
		t.Fatalf("change stream ended: %v", cs.Err())
	}
	var ev changeEvent
	if err := cs.Decode(&ev); err != nil {
		t.Fatalf("decode change event %s: %v", cs.Current, err)
	}
	return ev
}

// readIDs reads n events and returns their documentKey._id values, then checks that no further
// event is waiting.
func readIDs(t *testing.T, ctx context.Context, cs *mongo.ChangeStream, n int) []int32 {
	t.Helper()
	ids := make([]int32, 0, n)
	for range n {
		ids = append(ids, nextEvent(t, ctx, cs).DocumentKey["_id"].(int32))
	}
	if cs.TryNext(ctx) {
		t.Fatalf("unexpected extra event %s", cs.Current)
	}
	if err := cs.Err(); err != nil {
		t.Fatalf("change stream: %v", err)
	}
	return ids
}

func insertIDs(t *testing.T, ctx context.Context, coll *mongo.Collection, from, to int) {
	t.Helper()
	docs := make([]any, 0, to-from+1)
	for id := from; id <= to; id++ {
		docs = append(docs, bson.D{{Key: "_id", Value: int32(id)}, {Key: "n", Value: id}})
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatalf("insert %d..%d: %v", from, to, err)
	}
}

func rawDoc(t *testing.T, v any) string {
	t.Helper()
	b, err := bson.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %v: %v", v, err)
	}
	return bson.Raw(b).String()
}

// tokenTime decodes the cluster time at the front of a resume token's _data: the KeyString
// type byte 0x82 (timestamp) and the timestamp's 8 bytes, big-endian.
func tokenTime(t *testing.T, token bson.Raw) bson.Timestamp {
	t.Helper()
	data, ok := token.Lookup("_data").StringValueOK()
	if !ok {
		t.Fatalf("resume token %s has no string _data", token)
	}
	b, err := hex.DecodeString(data)
	if err != nil || len(b) < 9 || b[0] != 0x82 {
		t.Fatalf("resume token _data %q does not start with a KeyString timestamp", data)
	}
	return bson.Timestamp{
		T: uint32(b[1])<<24 | uint32(b[2])<<16 | uint32(b[3])<<8 | uint32(b[4]),
		I: uint32(b[5])<<24 | uint32(b[6])<<16 | uint32(b[7])<<8 | uint32(b[8]),
	}
}

func TestMongoChangeStreamEventShapes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	coll := testCollection(t, newMongoClient(t, testenv.Mongo(t)))
	lookup := watch(t, ctx, coll, options.ChangeStream().SetFullDocument(options.UpdateLookup))
	plain := watch(t, ctx, coll, options.ChangeStream())

	type updateDescription struct {
		updated bson.M
		removed []string
	}
	steps := []struct {
		name     string
		write    func() error
		op       string
		fullDoc  any // the document after the write, for insert, replace and (looked up) update
		describe *updateDescription
	}{
		{
			name: "insert",
			write: func() error {
				_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1},
					{Key: "nested", Value: bson.D{{Key: "x", Value: 1}}}, {Key: "tags", Value: bson.A{"t1"}}})
				return err
			},
			op:      "insert",
			fullDoc: bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1}, {Key: "nested", Value: bson.D{{Key: "x", Value: 1}}}, {Key: "tags", Value: bson.A{"t1"}}},
		},
		{
			name: "set nested path",
			write: func() error {
				_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}},
					bson.D{{Key: "$set", Value: bson.D{{Key: "nested.y", Value: 2}, {Key: "a", Value: 2}}}})
				return err
			},
			op:       "update",
			fullDoc:  bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 2}, {Key: "nested", Value: bson.D{{Key: "x", Value: 1}, {Key: "y", Value: 2}}}, {Key: "tags", Value: bson.A{"t1"}}},
			describe: &updateDescription{updated: bson.M{"nested.y": int32(2), "a": int32(2)}, removed: []string{}},
		},
		{
			name: "unset",
			write: func() error {
				_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$unset", Value: bson.D{{Key: "a", Value: ""}}}})
				return err
			},
			op:       "update",
			fullDoc:  bson.D{{Key: "_id", Value: 1}, {Key: "nested", Value: bson.D{{Key: "x", Value: 1}, {Key: "y", Value: 2}}}, {Key: "tags", Value: bson.A{"t1"}}},
			describe: &updateDescription{updated: bson.M{}, removed: []string{"a"}},
		},
		{
			name: "push",
			write: func() error {
				_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$push", Value: bson.D{{Key: "tags", Value: "t2"}}}})
				return err
			},
			op:       "update",
			fullDoc:  bson.D{{Key: "_id", Value: 1}, {Key: "nested", Value: bson.D{{Key: "x", Value: 1}, {Key: "y", Value: 2}}}, {Key: "tags", Value: bson.A{"t1", "t2"}}},
			describe: &updateDescription{updated: bson.M{"tags.1": "t2"}, removed: []string{}},
		},
		{
			name: "findOneAndUpdate",
			write: func() error {
				return coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "count", Value: 1}}}}).Err()
			},
			op:       "update",
			fullDoc:  bson.D{{Key: "_id", Value: 1}, {Key: "nested", Value: bson.D{{Key: "x", Value: 1}, {Key: "y", Value: 2}}}, {Key: "tags", Value: bson.A{"t1", "t2"}}, {Key: "count", Value: 1}},
			describe: &updateDescription{updated: bson.M{"count": int32(1)}, removed: []string{}},
		},
		{
			name: "replace",
			write: func() error {
				_, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 1}, {Key: "replaced", Value: true}})
				return err
			},
			op:      "replace",
			fullDoc: bson.D{{Key: "_id", Value: 1}, {Key: "replaced", Value: true}},
		},
		{
			name: "delete",
			write: func() error {
				_, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: 1}})
				return err
			},
			op: "delete",
		},
		{
			name: "upsert",
			write: func() error {
				_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "u", Value: true}}}},
					options.UpdateOne().SetUpsert(true))
				return err
			},
			op:      "insert",
			fullDoc: bson.D{{Key: "_id", Value: 1}, {Key: "u", Value: true}},
		},
	}

	var last bson.Timestamp
	for _, step := range steps {
		if err := step.write(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		// updateLookup reads the document when the event is read: read it before the next write.
		ev := nextEvent(t, ctx, lookup)
		if ev.OperationType != step.op {
			t.Fatalf("%s: operationType %q, want %q", step.name, ev.OperationType, step.op)
		}
		if ev.DocumentKey["_id"] != int32(1) {
			t.Errorf("%s: documentKey %v, want {_id: 1}", step.name, ev.DocumentKey)
		}
		if ev.NS["db"] != coll.Database().Name() || ev.NS["coll"] != coll.Name() {
			t.Errorf("%s: ns %v", step.name, ev.NS)
		}
		if !last.Before(ev.ClusterTime) || ev.WallTime.IsZero() || len(ev.ID.Lookup("_data").StringValue()) == 0 {
			t.Errorf("%s: clusterTime %v (previous %v), wallTime %v, _id %s", step.name, ev.ClusterTime, last, ev.WallTime, ev.ID)
		}
		if got := tokenTime(t, ev.ID); got != ev.ClusterTime {
			t.Errorf("%s: token time %v, clusterTime %v", step.name, got, ev.ClusterTime)
		}
		last = ev.ClusterTime
		switch {
		case step.fullDoc == nil && ev.FullDocument != nil:
			t.Errorf("%s: unexpected fullDocument %s", step.name, ev.FullDocument)
		case step.fullDoc != nil && ev.FullDocument.String() != rawDoc(t, step.fullDoc):
			t.Errorf("%s: fullDocument %s, want %s", step.name, ev.FullDocument, rawDoc(t, step.fullDoc))
		}
		switch {
		case step.describe == nil && ev.UpdateDescription != nil:
			t.Errorf("%s: unexpected updateDescription %+v", step.name, ev.UpdateDescription)
		case step.describe != nil && ev.UpdateDescription == nil:
			t.Errorf("%s: no updateDescription", step.name)
		case step.describe != nil:
			d := ev.UpdateDescription
			// Both sides are maps: compare them as such, not as bytes in iteration order.
			if !reflect.DeepEqual(d.UpdatedFields, step.describe.updated) ||
				strings.Join(d.RemovedFields, ",") != strings.Join(step.describe.removed, ",") || len(d.TruncatedArrays) != 0 {
				t.Errorf("%s: updateDescription %+v, want updatedFields %v removedFields %v truncatedArrays []",
					step.name, *d, step.describe.updated, step.describe.removed)
			}
		}

		// Without updateLookup, update events carry no document at all.
		plainEv := nextEvent(t, ctx, plain)
		if plainEv.OperationType != step.op || (step.op == "update" && plainEv.FullDocument != nil) {
			t.Errorf("%s without updateLookup: operationType %q, fullDocument %s", step.name, plainEv.OperationType, plainEv.FullDocument)
		}
	}
}

func TestMongoChangeStreamResumes(t *testing.T) {
	cases := []struct {
		name string
		// from returns the options that resume after the 5th event.
		from func(token bson.Raw, fifth bson.Timestamp) *options.ChangeStreamOptionsBuilder
	}{
		{"resumeAfter", func(token bson.Raw, _ bson.Timestamp) *options.ChangeStreamOptionsBuilder {
			return options.ChangeStream().SetResumeAfter(token)
		}},
		{"startAfter", func(token bson.Raw, _ bson.Timestamp) *options.ChangeStreamOptionsBuilder {
			return options.ChangeStream().SetStartAfter(token)
		}},
		{"startAtOperationTime", func(_ bson.Raw, fifth bson.Timestamp) *options.ChangeStreamOptionsBuilder {
			// Inclusive: the first cluster time after the 5th event.
			return options.ChangeStream().SetStartAtOperationTime(&bson.Timestamp{T: fifth.T, I: fifth.I + 1})
		}},
	}
	client := newMongoClient(t, testenv.Mongo(t))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			coll := testCollection(t, client)
			cs := watch(t, ctx, coll, options.ChangeStream())
			insertIDs(t, ctx, coll, 1, 5)
			var fifth changeEvent
			for id := int32(1); id <= 5; id++ {
				if fifth = nextEvent(t, ctx, cs); fifth.DocumentKey["_id"] != id {
					t.Fatalf("event %d has documentKey %v", id, fifth.DocumentKey)
				}
			}
			token := cs.ResumeToken()
			if err := cs.Close(ctx); err != nil {
				t.Fatalf("close change stream: %v", err)
			}

			insertIDs(t, ctx, coll, 6, 10)
			resumed := watch(t, ctx, coll, tc.from(token, fifth.ClusterTime).SetMaxAwaitTime(100*time.Millisecond))
			got := readIDs(t, ctx, resumed, 5)
			if fmt.Sprint(got) != fmt.Sprint([]int32{6, 7, 8, 9, 10}) {
				t.Fatalf("resumed stream read ids %v, want [6 7 8 9 10]", got)
			}
		})
	}
}

func TestMongoPostBatchResumeTokenAdvancesWhileIdle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	coll := testCollection(t, newMongoClient(t, testenv.Mongo(t)))
	cs := watch(t, ctx, coll, options.ChangeStream().SetMaxAwaitTime(200*time.Millisecond))
	first := cs.ResumeToken()
	if first == nil {
		t.Fatal("no resume token after the aggregate: the reply had no postBatchResumeToken")
	}
	// The cluster time moves on with the wall clock while idle (as a replica set's periodic
	// no-op writes move it); after a second the token must have moved with it.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cs.TryNext(ctx) {
			t.Fatalf("unexpected event %s", cs.Current)
		}
		if err := cs.Err(); err != nil {
			t.Fatalf("change stream: %v", err)
		}
		if tokenTime(t, first).Before(tokenTime(t, cs.ResumeToken())) {
			return
		}
	}
	t.Fatalf("resume token stayed at %s for 5s on an idle stream", first)
}

func TestMongoChangeStreamEndsWithInvalidate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	coll := testCollection(t, newMongoClient(t, testenv.Mongo(t)))
	collStream := watch(t, ctx, coll, options.ChangeStream())
	dbStream := watch(t, ctx, coll.Database(), options.ChangeStream())
	insertIDs(t, ctx, coll, 1, 1)
	if err := coll.Database().Collection("other").Drop(ctx); err != nil {
		t.Fatalf("drop a collection that does not exist: %v", err)
	}
	if err := coll.Database().Drop(ctx); err != nil {
		t.Fatalf("drop database: %v", err)
	}

	for _, tc := range []struct {
		name string
		cs   *mongo.ChangeStream
		want []string
	}{
		{"collection", collStream, []string{"insert", "drop", "invalidate"}},
		{"database", dbStream, []string{"insert", "drop", "dropDatabase", "invalidate"}},
	} {
		var got []string
		for tc.cs.Next(ctx) {
			got = append(got, tc.cs.Current.Lookup("operationType").StringValue())
		}
		if tc.cs.Err() != nil || tc.cs.ID() != 0 || strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s stream: events %v (err %v, cursor %d), want %v then a closed cursor", tc.name, got, tc.cs.Err(), tc.cs.ID(), tc.want)
		}
	}
}

func TestMongoLostResumePointFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := newMongoClient(t, testenv.StartMongo(t, "--oplog-max-entries", "100"))
	coll := client.Database("lost").Collection("docs")
	behind := watch(t, ctx, coll, options.ChangeStream())
	insertIDs(t, ctx, coll, 1, 1)
	first := nextEvent(t, ctx, behind)
	// 139 more entries: the oplog keeps 100, so 2..40 are dropped before the stream reads them.
	insertIDs(t, ctx, coll, 2, 140)
	recent := watch(t, ctx, coll, options.ChangeStream())
	insertIDs(t, ctx, coll, 141, 150)
	var newest changeEvent
	for range 10 {
		newest = nextEvent(t, ctx, recent)
	}

	// A token the server never issued: a retained event's token with a cluster time no entry has.
	newestData := newest.ID.Lookup("_data").StringValue()
	unissued := fmt.Sprintf("82%08X%08X", newest.ClusterTime.T, newest.ClusterTime.I+1000) + newestData[18:]

	requireCode := func(t *testing.T, err error, code int32, name string) {
		t.Helper()
		var cmdErr mongo.CommandError
		if !errors.As(err, &cmdErr) || cmdErr.Code != code || cmdErr.Name != name {
			t.Fatalf("error %v, want code %d (%s)", err, code, name)
		}
		if !cmdErr.HasErrorLabel("NonResumableChangeStreamError") {
			t.Errorf("error %v lacks the NonResumableChangeStreamError label", err)
		}
	}

	t.Run("open stream that fell behind", func(t *testing.T) {
		if behind.Next(ctx) {
			t.Fatalf("read %s after its history was dropped", behind.Current)
		}
		requireCode(t, behind.Err(), 286, "ChangeStreamHistoryLost")
	})

	cases := []struct {
		name     string
		opts     *options.ChangeStreamOptionsBuilder
		wantCode int32
		wantName string
	}{
		{"resumeAfter a dropped event", options.ChangeStream().SetResumeAfter(first.ID), 286, "ChangeStreamHistoryLost"},
		{"startAfter a dropped event", options.ChangeStream().SetStartAfter(first.ID), 286, "ChangeStreamHistoryLost"},
		{"startAtOperationTime before the oplog", options.ChangeStream().SetStartAtOperationTime(&first.ClusterTime), 286, "ChangeStreamHistoryLost"},
		{"resumeAfter a token never issued", options.ChangeStream().SetResumeAfter(bson.D{{Key: "_data", Value: unissued}}), 280, "ChangeStreamFatalError"},
		{"resumeAfter the newest event", options.ChangeStream().SetResumeAfter(newest.ID), 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := coll.Watch(ctx, mongo.Pipeline{}, tc.opts)
			if tc.wantCode == 0 {
				if err != nil {
					t.Fatalf("watch: %v", err)
				}
				_ = cs.Close(ctx)
				return
			}
			requireCode(t, err, tc.wantCode, tc.wantName)
		})
	}
}

// TestMongoStandinRefusesWhatItLacks pins the errors the stand-in gives for what a real server
// has and it does not (deploy/local/README.md lists them): each must fail plainly, never be
// accepted and then quietly behave differently.
func TestMongoStandinRefusesWhatItLacks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := newMongoClient(t, testenv.Mongo(t))
	coll := testCollection(t, client)
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatalf("insert: %v", err)
	}
	watchErr := func(pipeline mongo.Pipeline, opts *options.ChangeStreamOptionsBuilder) func() error {
		return func() error {
			cs, err := coll.Watch(ctx, pipeline, opts)
			if err == nil {
				_ = cs.Close(ctx)
			}
			return err
		}
	}
	hashedKey := bson.D{{Key: "$toHashedIndexKey", Value: "$documentKey._id"}}
	preImages := bson.D{{Key: "enabled", Value: true}}

	cases := []struct {
		name     string
		try      func() error
		wantCode int32
		wantName string
	}{
		{"$toHashedIndexKey in $addFields", watchErr(mongo.Pipeline{{{Key: "$addFields", Value: bson.D{{Key: "h", Value: hashedKey}}}}}, options.ChangeStream()),
			168, "InvalidPipelineOperator"},
		{"$toHashedIndexKey in $match", watchErr(mongo.Pipeline{{{Key: "$match", Value: bson.D{{Key: "$expr", Value: bson.D{{Key: "$eq", Value: bson.A{hashedKey, 1}}}}}}}}, options.ChangeStream()),
			168, "InvalidPipelineOperator"},
		{"fullDocumentBeforeChange required", watchErr(nil, options.ChangeStream().SetFullDocumentBeforeChange(options.Required)),
			115, "CommandNotSupported"},
		{"fullDocument required", watchErr(nil, options.ChangeStream().SetFullDocument(options.Required)),
			115, "CommandNotSupported"},
		{"showExpandedEvents", watchErr(nil, options.ChangeStream().SetShowExpandedEvents(true)),
			115, "CommandNotSupported"},
		{"$changeStreamSplitLargeEvent", watchErr(mongo.Pipeline{{{Key: "$changeStreamSplitLargeEvent", Value: bson.D{}}}}, options.ChangeStream()),
			115, "CommandNotSupported"},
		{"$group in a change stream", watchErr(mongo.Pipeline{{{Key: "$group", Value: bson.D{{Key: "_id", Value: nil}}}}}, options.ChangeStream()),
			20, "IllegalOperation"},
		{"create with pre- and post-images", func() error {
			return coll.Database().CreateCollection(ctx, "images", options.CreateCollection().SetChangeStreamPreAndPostImages(preImages))
		}, 115, "CommandNotSupported"},
		{"collMod to pre- and post-images", func() error {
			return coll.Database().RunCommand(ctx, bson.D{{Key: "collMod", Value: coll.Name()}, {Key: "changeStreamPreAndPostImages", Value: preImages}}).Err()
		}, 115, "CommandNotSupported"},
		{"update with a pipeline", func() error {
			_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, mongo.Pipeline{{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}}})
			return err
		}, 115, "CommandNotSupported"},
		{"transaction", func() error {
			sess, err := client.StartSession()
			if err != nil {
				return fmt.Errorf("start session: %w", err)
			}
			defer sess.EndSession(ctx)
			_, err = sess.WithTransaction(ctx, func(ctx context.Context) (any, error) {
				return coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}})
			})
			return err
		}, 20, "IllegalOperation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.try()
			var cmdErr mongo.CommandError
			if !errors.As(err, &cmdErr) || cmdErr.Code != tc.wantCode || cmdErr.Name != tc.wantName {
				t.Fatalf("error %v, want code %d (%s)", err, tc.wantCode, tc.wantName)
			}
			t.Logf("(%s) %s", cmdErr.Name, cmdErr.Message)
		})
	}
	if n, err := coll.CountDocuments(ctx, bson.D{}); err != nil || n != 1 {
		t.Errorf("collection holds %d documents (err %v) after the refused writes, want 1", n, err)
	}
}

// TestMongoStandinReadsShowNoWriteAfterTheirOperationTime: while one client updates a document
// as fast as it can, each find's reply is stamped (operationTime) at or after the cluster time
// of the change that made the state it shows, as a real server's snapshot reads are; an
// incremental snapshot's high watermark rests on it.
func TestMongoStandinReadsShowNoWriteAfterTheirOperationTime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := newMongoClient(t, testenv.Mongo(t))
	coll := testCollection(t, client)
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 0}}); err != nil {
		t.Fatal(err)
	}
	cs := watch(t, ctx, coll, options.ChangeStream())
	defer cs.Close(context.Background())

	const updates = 2000
	wrote := make(chan error, 1)
	go func() {
		for n := 1; n <= updates; n++ {
			if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: n}}}}); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	type read struct {
		n  int32
		at bson.Timestamp
	}
	var reads []read
	for done := false; !done; {
		select {
		case err := <-wrote:
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			done = true
		default:
		}
		sess, err := client.StartSession()
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			N int32 `bson:"n"`
		}
		err = coll.FindOne(mongo.NewSessionContext(ctx, sess), bson.D{{Key: "_id", Value: 1}}).Decode(&doc)
		at := sess.OperationTime()
		sess.EndSession(ctx)
		if err != nil || at == nil {
			t.Fatalf("find: %v, operationTime %v", err, at)
		}
		reads = append(reads, read{doc.N, *at})
	}
	madeAt := map[int32]bson.Timestamp{}
	for len(madeAt) < updates && cs.Next(ctx) {
		var ev struct {
			ClusterTime bson.Timestamp `bson:"clusterTime"`
			Update      struct {
				Fields struct {
					N int32 `bson:"n"`
				} `bson:"updatedFields"`
			} `bson:"updateDescription"`
		}
		if err := cs.Decode(&ev); err != nil {
			t.Fatal(err)
		}
		madeAt[ev.Update.Fields.N] = ev.ClusterTime
	}
	if len(madeAt) < updates {
		t.Fatalf("%d update events of %d (%v)", len(madeAt), updates, cs.Err())
	}
	for _, r := range reads {
		if made, ok := madeAt[r.n]; r.n > 0 && (!ok || made.After(r.at)) {
			t.Fatalf("a read stamped %v shows n=%d, which the change at %v made: the read saw a write after its operationTime", r.at, r.n, made)
		}
	}
	t.Logf("%d reads during %d updates", len(reads), updates)
}
