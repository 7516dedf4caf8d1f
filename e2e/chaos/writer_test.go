//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// opKind is what the writer did to a document.
type opKind uint8

const (
	opInsert opKind = iota
	opUpdate
	opReplace
	opDelete
)

var opNames = [...]string{opInsert: "insert", opUpdate: "update", opReplace: "replace", opDelete: "delete"}

// envelopeOp is the envelope's op letter for a kind.
func (k opKind) envelopeOp() string {
	switch k {
	case opInsert:
		return "c"
	case opDelete:
		return "d"
	}
	return "u"
}

// op is one operation MongoDB acknowledged. v is the operation's number in the run, written
// into the document by every kind but delete: it names the change in the record.
type op struct {
	kind opKind
	v    int64
}

// docKey names a document: collection index and _id.
type docKey struct {
	coll int
	id   string
}

func (k docKey) String() string { return fmt.Sprintf("c%d/%s", k.coll, k.id) }

// opLog is what the writer did, per document, in order. A document whose write failed (it may
// or may not have happened) is poisoned: left alone from then on and not verified.
type opLog struct {
	mu       sync.Mutex
	byDoc    map[docKey][]op
	poisoned map[docKey]bool
	applied  int
	perKind  [4]int
}

func (l *opLog) add(k docKey, o op) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byDoc[k] = append(l.byDoc[k], o)
	l.applied++
	l.perKind[o.kind]++
}

func (l *opLog) poison(k docKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.poisoned[k] = true
}

func (l *opLog) isPoisoned(k docKey) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.poisoned[k]
}

// writer issues a seeded mix of operations: a random id of ids; insert when the document does
// not exist, else update (50%), replace (30%) or delete (20%). The same seed gives the same
// operations as long as every write succeeds.
type writer struct {
	colls []*mongo.Collection
	ids   int
	rng   *rand.Rand
	live  map[docKey]bool
	log   *opLog
	// field, when set, names a field every insert, update and replace also sets: a shape the
	// schemas do not have yet, which makes the tasks register a new version.
	field atomic.Pointer[string]
}

func newWriter(colls []*mongo.Collection, ids int, seed uint64) *writer {
	return &writer{colls: colls, ids: ids, rng: rand.New(rand.NewPCG(seed, 0x77726974)),
		live: map[docKey]bool{}, log: &opLog{byDoc: map[docKey][]op{}, poisoned: map[docKey]bool{}}}
}

// run issues up to n operations at rate a second (a slow write is made up for), one at a
// time, until stop is closed (nil: never).
func (w *writer) run(ctx context.Context, rate float64, n int, stop <-chan struct{}) error {
	start := time.Now()
	for i := range n {
		for float64(i) > time.Since(start).Seconds()*rate {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-stop:
				return nil
			case <-time.After(2 * time.Millisecond):
			}
		}
		w.one(ctx, int64(i+1))
	}
	return nil
}

// setField makes the writes from now on also set the field name ("": none).
func (w *writer) setField(name string) {
	if name == "" {
		w.field.Store(nil)
		return
	}
	w.field.Store(&name)
}

// one issues operation number v.
func (w *writer) one(ctx context.Context, v int64) {
	k := w.rng.IntN(w.ids)
	key := docKey{coll: k % len(w.colls), id: fmt.Sprintf("d%05d", k)}
	kind := opInsert
	if w.live[key] {
		switch r := w.rng.IntN(10); {
		case r < 5:
			kind = opUpdate
		case r < 8:
			kind = opReplace
		default:
			kind = opDelete
		}
	}
	if w.log.isPoisoned(key) {
		return
	}
	c := w.colls[key.coll]
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	filter := bson.D{{Key: "_id", Value: key.id}}
	// set are the fields the operation sets besides _id.
	set := bson.D{{Key: "v", Value: v}}
	if f := w.field.Load(); f != nil {
		set = append(set, bson.E{Key: *f, Value: v})
	}
	var err error
	var n int64
	switch kind {
	case opInsert:
		_, err = c.InsertOne(ctx, append(append(bson.D{{Key: "_id", Value: key.id}}, set...), bson.E{Key: "n", Value: int64(0)}))
		n = 1
	case opUpdate:
		var res *mongo.UpdateResult
		res, err = c.UpdateOne(ctx, filter, bson.D{
			{Key: "$set", Value: set},
			{Key: "$inc", Value: bson.D{{Key: "n", Value: int64(1)}}},
		})
		if err == nil {
			n = res.MatchedCount
		}
	case opReplace:
		var res *mongo.UpdateResult
		res, err = c.ReplaceOne(ctx, filter, append(append(bson.D{{Key: "_id", Value: key.id}}, set...), bson.E{Key: "replaced", Value: true}))
		if err == nil {
			n = res.MatchedCount
		}
	case opDelete:
		var res *mongo.DeleteResult
		res, err = c.DeleteOne(ctx, filter)
		if err == nil {
			n = res.DeletedCount
		}
	}
	if err != nil || n != 1 {
		w.log.poison(key)
		return
	}
	w.live[key] = kind != opDelete
	w.log.add(key, op{kind: kind, v: v})
}
