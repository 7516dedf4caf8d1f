package tasks

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongorelay/mongorelay/tasks/changestream"
	"github.com/mongorelay/mongorelay/tasks/snapshot"
	"github.com/mongorelay/mongorelay/tasks/taskid"
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
	s, err := changestream.Open(ctx, c.coll, c.coll.Database().Name()+"."+c.coll.Name(), opts, start)
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

// errScopeRanges is a scope's answer to a request for snapshot ranges: a scope has none of
// its own; each of its collections is split and copied through its own reader (scopeReader.
// collection).
var errScopeRanges = errors.New("a database or deployment has no snapshot ranges of its own: its collections are copied one by one")

// scopeReader reads a database's change stream (db.watch()) or the whole deployment's
// (client.watch()), filtered on the server to the connector's collections
// (config.Config.ScopeStages), and reads each collection of its scope as collectionReader does
// for their snapshots.
type scopeReader struct {
	mc *mongo.Client
	db string // "" for the deployment
	// stages come before every other stage of the stream (the user's, the shard filter's).
	stages           []bson.D
	includes         func(db, coll string) bool
	splitLargeEvents bool
}

func newScopeReader(mc *mongo.Client, spec Spec, splitLargeEvents bool) scopeReader {
	db := spec.DB
	if db == taskid.AllCollections {
		db = ""
	}
	return scopeReader{mc: mc, db: db, stages: spec.Connector.ScopeStages(db), includes: spec.Connector.Includes,
		splitLargeEvents: splitLargeEvents}
}

func (s scopeReader) watch(ctx context.Context, opts changestream.Options, start changestream.Start) (changeStream, error) {
	opts.SplitLargeEvents = s.splitLargeEvents
	opts.Pipeline = append(append([]bson.D(nil), s.stages...), opts.Pipeline...)
	var w changestream.Watcher = s.mc
	name := "the deployment"
	if s.db != "" {
		w, name = s.mc.Database(s.db), "database "+s.db
	}
	cs, err := changestream.Open(ctx, w, name, opts, start)
	if err != nil {
		return nil, err
	}
	return cs, nil
}

func (s scopeReader) splits(context.Context, int) ([]bson.RawValue, error) {
	return nil, errScopeRanges
}

func (s scopeReader) pages(context.Context, snapshot.Range, bson.RawValue, int) (pageReader, error) {
	return nil, errScopeRanges
}

// chunk refuses: incremental snapshots copy one collection's task's collection, and a scope
// task takes no snapshot requests (newTask).
func (s scopeReader) chunk(context.Context, bson.RawValue, int) ([]bson.Raw, bson.Timestamp, error) {
	return nil, bson.Timestamp{}, errScopeRanges
}

// collections lists the connector's collections in the scope, sorted by database, then name.
func (s scopeReader) collections(ctx context.Context) ([]namespace, error) {
	dbs := []string{s.db}
	if s.db == "" {
		var err error
		if dbs, err = s.mc.ListDatabaseNames(ctx, bson.D{}); err != nil {
			return nil, fmt.Errorf("list databases: %w", err)
		}
		slices.Sort(dbs)
	}
	var out []namespace
	for _, db := range dbs {
		colls, err := s.mc.Database(db).ListCollectionNames(ctx, bson.D{})
		if err != nil {
			return nil, fmt.Errorf("list collections of %s: %w", db, err)
		}
		slices.Sort(colls)
		for _, coll := range colls {
			if s.includes(db, coll) {
				out = append(out, namespace{db: db, coll: coll})
			}
		}
	}
	return out, nil
}

// exists reports whether collection ns exists. The names are filtered here rather than by the
// server: the stand-in ignores listCollections' filter.
func (s scopeReader) exists(ctx context.Context, ns namespace) (bool, error) {
	names, err := s.mc.Database(ns.db).ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return false, fmt.Errorf("look for collection %s: %w", ns, err)
	}
	return slices.Contains(names, ns.coll), nil
}

// collection reads one collection of the scope.
func (s scopeReader) collection(ns namespace) mongoReader {
	return collectionReader{coll: s.mc.Database(ns.db).Collection(ns.coll), splitLargeEvents: s.splitLargeEvents}
}

// namespace is a collection of a database.
type namespace struct{ db, coll string }

func (n namespace) String() string { return n.db + "." + n.coll }

func (c collectionReader) chunk(ctx context.Context, after bson.RawValue, limit int) ([]bson.Raw, bson.Timestamp, error) {
	return snapshot.Chunk(ctx, c.coll, after, limit)
}
