// Package snapshot copies a collection's existing documents in _id order, in pages, resumable
// after the last _id copied.
package snapshot

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Reader reads one collection. It is not safe for concurrent use.
type Reader struct {
	coll     *mongo.Collection
	pageSize int
	cur      *mongo.Cursor
	done     bool
}

// NewReader reads coll from the start, or after the document whose _id is after when it is
// set (a resumed copy).
func NewReader(ctx context.Context, coll *mongo.Collection, after bson.RawValue, pageSize int) (*Reader, error) {
	if pageSize <= 0 {
		pageSize = 1024
	}
	filter := bson.D{}
	if after.Type != 0 {
		filter = AfterID(after)
	}
	cur, err := coll.Find(ctx, filter, options.Find().
		SetSort(bson.D{{Key: "_id", Value: 1}}).
		SetBatchSize(int32(pageSize)))
	if err != nil {
		return nil, fmt.Errorf("query %s.%s for its snapshot: %w", coll.Database().Name(), coll.Name(), err)
	}
	return &Reader{coll: coll, pageSize: pageSize, cur: cur}, nil
}

// NextPage passes up to one page of documents to fn, in _id order, and returns the _id of the
// last one (a copy, safe to keep) and how many there were. n == 0 means the copy is complete.
// The document bytes are only valid during fn.
func (r *Reader) NextPage(ctx context.Context, fn func(doc bson.Raw) error) (last bson.RawValue, n int, err error) {
	if r.done {
		return bson.RawValue{}, 0, nil
	}
	for n < r.pageSize && r.cur.Next(ctx) {
		doc := r.cur.Current
		if err := fn(doc); err != nil {
			return bson.RawValue{}, n, err
		}
		last = doc.Lookup("_id")
		n++
	}
	if err := r.cur.Err(); err != nil {
		return bson.RawValue{}, n, fmt.Errorf("read snapshot of %s.%s: %w", r.coll.Database().Name(), r.coll.Name(), err)
	}
	if n < r.pageSize {
		r.done = true
	}
	if n > 0 {
		last = bson.RawValue{Type: last.Type, Value: append([]byte(nil), last.Value...)}
	}
	return last, n, nil
}

// Close releases the server cursor.
func (r *Reader) Close(ctx context.Context) error {
	return r.cur.Close(ctx)
}

// typeOrder lists BSON types by MongoDB's comparison/sort order (numbers share one bracket).
// Query operators like $gt only compare values within a bracket, so "after this _id" is
// "greater in its bracket, or in any later bracket".
var typeOrder = [][]string{
	{"minKey"},
	{"null"},
	{"int", "long", "double", "decimal"},
	{"string", "symbol"},
	{"object"},
	{"array"},
	{"binData"},
	{"objectId"},
	{"bool"},
	{"date"},
	{"timestamp"},
	{"regex"},
	{"maxKey"},
}

// bracketOf maps a BSON type to its index in typeOrder.
func bracketOf(t bson.Type) int {
	switch t {
	case bson.TypeMinKey:
		return 0
	case bson.TypeNull, bson.TypeUndefined:
		return 1
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble, bson.TypeDecimal128:
		return 2
	case bson.TypeString, bson.TypeSymbol:
		return 3
	case bson.TypeEmbeddedDocument:
		return 4
	case bson.TypeArray:
		return 5
	case bson.TypeBinary:
		return 6
	case bson.TypeObjectID:
		return 7
	case bson.TypeBoolean:
		return 8
	case bson.TypeDateTime:
		return 9
	case bson.TypeTimestamp:
		return 10
	case bson.TypeRegex:
		return 11
	default:
		return 12
	}
}

// AfterID is the filter matching every document whose _id sorts after id.
func AfterID(id bson.RawValue) bson.D {
	var later bson.A
	for _, bracket := range typeOrder[bracketOf(id.Type)+1:] {
		for _, name := range bracket {
			later = append(later, name)
		}
	}
	gt := bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: id}}}}
	if len(later) == 0 {
		return gt
	}
	return bson.D{{Key: "$or", Value: bson.A{gt, bson.D{{Key: "_id", Value: bson.D{{Key: "$type", Value: later}}}}}}}
}
