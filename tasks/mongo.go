package tasks

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongorelay/mongorelay/tasks/changestream"
	"github.com/mongorelay/mongorelay/tasks/snapshot"
)

// mongoReader is everything a task reads from MongoDB: its collection's change stream, the
// split points of a snapshot, snapshot pages, and incremental snapshot chunks. It is the state machine's seam to MongoDB;
// collectionReader is the real one.
type mongoReader interface {
	watch(ctx context.Context, opts changestream.Options, start changestream.Start) (changeStream, error)
	splits(ctx context.Context, m int) ([]bson.RawValue, error)
	pages(ctx context.Context, rng snapshot.Range, after bson.RawValue, pageSize int) (pageReader, error)
	// chunk reads an incremental snapshot's chunk (snapshot.Chunk).
	chunk(ctx context.Context, after bson.RawValue, limit int) ([]bson.Raw, bson.Timestamp, error)
}

// changeStream is an open change stream; *changestream.Stream is one.
type changeStream interface {
	NextBatch(ctx context.Context, fn func(event bson.Raw) error) (bson.Raw, error)
	CaughtUp() bool
	ResumeToken() bson.Raw
	Close(ctx context.Context) error
}

// pageReader reads a snapshot range page by page; *snapshot.Reader is one.
type pageReader interface {
	NextPage(ctx context.Context, fn func(doc bson.Raw) error) (last bson.RawValue, n int, err error)
	Close(ctx context.Context) error
}

// collectionReader reads one collection of a MongoDB deployment.
type collectionReader struct {
	coll *mongo.Collection
	// splitLargeEvents ends every change stream with $changeStreamSplitLargeEvent: the
	// deployment has the stage (Deps.SplitLargeEvents).
	splitLargeEvents bool
}

func (c collectionReader) watch(ctx context.Context, opts changestream.Options, start changestream.Start) (changeStream, error) {
	opts.SplitLargeEvents = c.splitLargeEvents
	s, err := changestream.Open(ctx, c.coll, opts, start)
	if err != nil {
		return nil, err // not a nil *Stream in a non-nil interface
	}
	return s, nil
}

func (c collectionReader) splits(ctx context.Context, m int) ([]bson.RawValue, error) {
	return snapshot.Splits(ctx, c.coll, m)
}

func (c collectionReader) pages(ctx context.Context, rng snapshot.Range, after bson.RawValue, pageSize int) (pageReader, error) {
	r, err := snapshot.NewReader(ctx, c.coll, rng, after, pageSize)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (c collectionReader) chunk(ctx context.Context, after bson.RawValue, limit int) ([]bson.Raw, bson.Timestamp, error) {
	return snapshot.Chunk(ctx, c.coll, after, limit)
}
