package local_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/internal/testenv"
)

// maxBatchBytes is a real server's cap on the documents of one cursor batch (maxBsonObjectSize).
const maxBatchBytes = 16 << 20

// batchSizes records, per reply of a cursor command, the bytes and count of its batch.
type batchSizes struct {
	mu      sync.Mutex
	replies []batchReply
}

type batchReply struct {
	command string
	bytes   int
	docs    int
}

func (b *batchSizes) succeeded(_ context.Context, e *event.CommandSucceededEvent) {
	if e.CommandName != "find" && e.CommandName != "getMore" && e.CommandName != "aggregate" {
		return
	}
	batch, err := e.Reply.LookupErr("cursor", "firstBatch")
	if err != nil {
		batch, err = e.Reply.LookupErr("cursor", "nextBatch")
	}
	if err != nil {
		return
	}
	values, err := batch.Array().Values()
	if err != nil {
		return
	}
	r := batchReply{command: e.CommandName, docs: len(values)}
	for _, v := range values {
		r.bytes += len(v.Document())
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.replies = append(b.replies, r)
}

func (b *batchSizes) take() []batchReply {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.replies
	b.replies = nil
	return r
}

// TestMongoStandinCapsBatchesAt16MiB reads a collection of 1 MiB documents with a batch size
// worth 30 MiB: as a real server, the stand-in must cap every batch at 16 MiB of documents and
// still return every document once, in order.
func TestMongoStandinCapsBatchesAt16MiB(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sizes := &batchSizes{}
	client, err := mongo.Connect(options.Client().ApplyURI(testenv.Mongo(t)).
		SetMonitor(&event.CommandMonitor{Succeeded: sizes.succeeded}))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	coll := testCollection(t, client)
	t.Cleanup(func() { _ = coll.Database().Drop(context.Background()) })

	const docs = 40
	pad := strings.Repeat("x", 1<<20)
	for i := 0; i < docs; i += 10 {
		var batch []any
		for j := i; j < i+10; j++ {
			batch = append(batch, bson.D{{Key: "_id", Value: j}, {Key: "pad", Value: pad}})
		}
		if _, err := coll.InsertMany(ctx, batch); err != nil {
			t.Fatalf("insert documents %d+: %v", i, err)
		}
	}

	tests := []struct {
		name string
		open func() (*mongo.Cursor, error)
	}{
		{"find", func() (*mongo.Cursor, error) {
			return coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(30).SetSort(bson.D{{Key: "_id", Value: 1}}))
		}},
		{"aggregate", func() (*mongo.Cursor, error) {
			return coll.Aggregate(ctx, mongo.Pipeline{{{Key: "$sort", Value: bson.D{{Key: "_id", Value: 1}}}}},
				options.Aggregate().SetBatchSize(30))
		}},
		{"find without batch size", func() (*mongo.Cursor, error) {
			return coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sizes.take()
			cur, err := tt.open()
			if err != nil {
				t.Fatalf("open cursor: %v", err)
			}
			defer func() { _ = cur.Close(ctx) }()
			next := 0
			for cur.Next(ctx) {
				var doc struct {
					ID int `bson:"_id"`
				}
				if err := cur.Decode(&doc); err != nil {
					t.Fatalf("decode document %d: %v", next, err)
				}
				if doc.ID != next {
					t.Fatalf("document %d: got _id %d", next, doc.ID)
				}
				next++
			}
			if err := cur.Err(); err != nil {
				t.Fatalf("read: %v", err)
			}
			if next != docs {
				t.Fatalf("read %d documents, want %d", next, docs)
			}
			replies := sizes.take()
			if len(replies) < 3 {
				t.Errorf("%d batches for 40 MiB of documents, want at least 3: %+v", len(replies), replies)
			}
			for i, r := range replies {
				t.Logf("%s batch %d: %d documents, %d bytes", r.command, i, r.docs, r.bytes)
				if r.bytes > maxBatchBytes {
					t.Errorf("%s batch %d: %d bytes of documents, over the 16 MiB cap", r.command, i, r.bytes)
				}
			}
		})
	}
}
