// Package snapshot copies a collection's existing documents in _id order, in pages, resumable
// after the last _id copied.
package snapshot

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/tasks/prefetch"
)

// Reader reads one collection. It is not safe for concurrent use.
type Reader struct {
	coll     *mongo.Collection
	pageSize int
	cur      *mongo.Cursor
	// ahead reads the next page while the caller handles the current one; it starts with the
	// first NextPage and owns cur from then on.
	ahead *prefetch.Reader[bson.RawValue]
	done  bool
}

// Range is a slice of a collection by _id: Min <= _id < Max in MongoDB's sort order. A zero
// bound (Type 0) leaves that side open.
type Range struct {
	Min, Max bson.RawValue
}

// NewReader reads the documents of rng, from its start or, when after is set (a resumed copy),
// from after the document whose _id is after.
func NewReader(ctx context.Context, coll *mongo.Collection, rng Range, after bson.RawValue, pageSize int) (*Reader, error) {
	if pageSize <= 0 {
		pageSize = 1024
	}
	var bounds bson.A
	switch {
	case after.Type != 0:
		bounds = append(bounds, AfterID(after))
	case rng.Min.Type != 0:
		bounds = append(bounds, atOrAfterID(rng.Min))
	}
	if rng.Max.Type != 0 {
		bounds = append(bounds, beforeID(rng.Max))
	}
	filter := bson.D{}
	switch len(bounds) {
	case 1:
		filter = bounds[0].(bson.D)
	case 2:
		filter = bson.D{{Key: "$and", Value: bounds}}
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
// The document bytes are only valid during fn. The next page is being read while fn runs.
func (r *Reader) NextPage(ctx context.Context, fn func(doc bson.Raw) error) (last bson.RawValue, n int, err error) {
	if r.done {
		return bson.RawValue{}, 0, nil
	}
	if r.ahead == nil {
		// The reader's context is not ctx: a caller may pass a shorter-lived one per call.
		r.ahead = prefetch.Start(context.WithoutCancel(ctx), 1, r.fill)
	}
	page, err := r.ahead.Next(ctx)
	if err != nil {
		return bson.RawValue{}, 0, err
	}
	defer r.ahead.Release(page)
	r.done = page.Last
	for i := range page.Len() {
		if err := fn(page.Doc(i)); err != nil {
			return bson.RawValue{}, i, err
		}
	}
	return page.Meta, page.Len(), nil
}

// fill reads one page into p; it runs in the prefetch goroutine.
func (r *Reader) fill(ctx context.Context, p *prefetch.Batch[bson.RawValue]) (bool, error) {
	var last bson.RawValue
	for p.Len() < r.pageSize && r.cur.Next(ctx) {
		p.Add(r.cur.Current)
		last = r.cur.Current.Lookup("_id")
	}
	if err := r.cur.Err(); err != nil {
		return true, fmt.Errorf("read snapshot of %s.%s: %w", r.coll.Database().Name(), r.coll.Name(), err)
	}
	if p.Len() > 0 {
		p.Meta = bson.RawValue{Type: last.Type, Value: append([]byte(nil), last.Value...)}
	}
	return p.Len() < r.pageSize, nil
}

// Close stops the read-ahead and releases the server cursor.
func (r *Reader) Close(ctx context.Context) error {
	if r.ahead != nil {
		r.ahead.Stop()
	}
	return r.cur.Close(ctx)
}

// typeOrder lists BSON types by MongoDB's comparison/sort order (numbers share one bracket).
// Query operators like $gt only compare values within a bracket, so "after this _id" is
// "greater in its bracket, or in any later bracket". The deprecated symbol type sorts with
// strings; it is left out of the $type lists because some MongoDB-compatible servers refuse
// its alias, and $gt/$lt on a string bound already compare symbols.
var typeOrder = [][]string{
	{"minKey"},
	{"null"},
	{"int", "long", "double", "decimal"},
	{"string"},
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
	return compareID("$gt", id, typeOrder[bracketOf(id.Type)+1:])
}

func atOrAfterID(id bson.RawValue) bson.D {
	return compareID("$gte", id, typeOrder[bracketOf(id.Type)+1:])
}

func beforeID(id bson.RawValue) bson.D {
	return compareID("$lt", id, typeOrder[:bracketOf(id.Type)])
}

// compareID matches _ids that compare to id by op within id's type bracket, or whose type is
// in one of the brackets given (those wholly on the matching side).
func compareID(op string, id bson.RawValue, brackets [][]string) bson.D {
	var types bson.A
	for _, bracket := range brackets {
		for _, name := range bracket {
			types = append(types, name)
		}
	}
	cmp := bson.D{{Key: "_id", Value: bson.D{{Key: op, Value: id}}}}
	if len(types) == 0 {
		return cmp
	}
	return bson.D{{Key: "$or", Value: bson.A{cmp, bson.D{{Key: "_id", Value: bson.D{{Key: "$type", Value: types}}}}}}}
}

// Splits returns up to m-1 _ids that cut coll into m ranges of about equal size, in order
// (fewer when the collection has fewer distinct documents). It reads the collection's size,
// then the document at each cut in _id order.
func Splits(ctx context.Context, coll *mongo.Collection, m int) ([]bson.RawValue, error) {
	if m <= 1 {
		return nil, nil
	}
	n, err := coll.CountDocuments(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("count %s.%s to split its snapshot: %w", coll.Database().Name(), coll.Name(), err)
	}
	var cuts []bson.RawValue
	for k := 1; k < m; k++ {
		skip := n * int64(k) / int64(m)
		if skip == 0 {
			continue
		}
		doc, err := coll.FindOne(ctx, bson.D{}, options.FindOne().
			SetSort(bson.D{{Key: "_id", Value: 1}}).SetSkip(skip).
			SetProjection(bson.D{{Key: "_id", Value: 1}})).Raw()
		if errors.Is(err, mongo.ErrNoDocuments) {
			break // the collection shrank since it was counted
		}
		if err != nil {
			return nil, fmt.Errorf("find the split point %d of %s.%s: %w", k, coll.Database().Name(), coll.Name(), err)
		}
		id := doc.Lookup("_id")
		if len(cuts) > 0 && string(cuts[len(cuts)-1].Value) == string(id.Value) && cuts[len(cuts)-1].Type == id.Type {
			continue
		}
		cuts = append(cuts, bson.RawValue{Type: id.Type, Value: append([]byte(nil), id.Value...)})
	}
	return cuts, nil
}

// Chunk reads up to limit documents of coll in _id order, after the document whose _id is
// after (from the first when after is unset), and returns copies of them with high, a cluster
// time no change in the chunk is after (package incremental's high watermark): the
// operationTime MongoDB stamps on a reply received once the read is over. It is a ping's, not
// the read's last reply's: a server whose reads are not isolated from writes (the test
// stand-in) can show a read a write before stamping the write's cluster time, and a reply
// taken after the read's is later than every write the read saw.
func Chunk(ctx context.Context, coll *mongo.Collection, after bson.RawValue, limit int) (docs []bson.Raw, high bson.Timestamp, err error) {
	sess, err := coll.Database().Client().StartSession()
	if err != nil {
		return nil, high, fmt.Errorf("start a session to read a chunk of %s.%s: %w", coll.Database().Name(), coll.Name(), err)
	}
	defer sess.EndSession(context.WithoutCancel(ctx))
	filter := bson.D{}
	if after.Type != 0 {
		filter = AfterID(after)
	}
	sctx := mongo.NewSessionContext(ctx, sess)
	cur, err := coll.Find(sctx, filter, options.Find().
		SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)).SetBatchSize(int32(limit)))
	if err != nil {
		return nil, high, fmt.Errorf("read a chunk of %s.%s: %w", coll.Database().Name(), coll.Name(), err)
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	for cur.Next(sctx) {
		docs = append(docs, append(bson.Raw(nil), cur.Current...))
	}
	if err := cur.Err(); err != nil {
		return nil, high, fmt.Errorf("read a chunk of %s.%s: %w", coll.Database().Name(), coll.Name(), err)
	}
	if err := coll.Database().RunCommand(sctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		return nil, high, fmt.Errorf("read the cluster time after a chunk of %s.%s: %w", coll.Database().Name(), coll.Name(), err)
	}
	t := sess.OperationTime()
	if t == nil {
		return nil, high, fmt.Errorf("read a chunk of %s.%s: the server stamped no operationTime on its reply", coll.Database().Name(), coll.Name())
	}
	return docs, *t, nil
}
