package mongosink

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// opKind is what one record asks of its collection.
type opKind uint8

const (
	opSkip    opKind = iota // nothing: a tombstone kept, an update without its changes
	opReplace               // replace the document with the id, inserting it if absent
	opSet                   // $set fields of the document with the id, inserting it if absent
	opUpdate                // an update description: $set and $unset on the document, if present
	opInsert                // insert the document
	opDelete                // delete the document with the id
)

// op is one record's write.
type op struct {
	kind opKind
	id   any    // the document's _id (a BSON value)
	doc  bson.D // opReplace, opSet, opInsert: the document, _id first
	// opUpdate: the update description.
	set       bson.D
	unset     []string
	truncated []truncation
}

// truncation is an array shortened by an update (updateDescription.truncatedArrays).
type truncation struct {
	field   string
	newSize int32
}

// errBadRecord marks a record that can never be written as it is: no derivable _id, a
// document over 16 MB, a change event that contradicts itself. It goes to the dead letter
// topic under errors.tolerance=all.
var errBadRecord = errors.New("bad record")

// maxDocument is MongoDB's largest document.
const maxDocument = 16 * 1024 * 1024

// converter turns records into ops, by the connector's config.
type converter struct {
	cfg *Config
	dec *decoder
}

// convert returns the write a record asks for.
func (c *converter) convert(ctx context.Context, r *kgo.Record) (op, error) {
	var key any
	if r.Key != nil {
		k, err := c.dec.value(ctx, r.Key)
		if err != nil {
			return op{}, readError("key", err)
		}
		key = k
	}
	if r.Value == nil {
		if !c.cfg.DeleteOnNull {
			return op{kind: opSkip}, nil
		}
		id, ok := idOfKey(key)
		if !ok {
			return op{}, fmt.Errorf("%w: a tombstone whose key names no _id cannot delete anything", errBadRecord)
		}
		return op{kind: opDelete, id: id}, nil
	}
	v, err := c.dec.value(ctx, r.Value)
	if err != nil {
		return op{}, readError("value", err)
	}
	doc, ok := v.(bson.D)
	if !ok {
		return op{}, fmt.Errorf("%w: the value is a %T, not a document", errBadRecord, v)
	}
	o, err := c.apply(doc, key, r)
	if err != nil {
		return op{}, err
	}
	if err := checkSize(o); err != nil {
		return op{}, err
	}
	return o, nil
}

// readError says what could not be read: a key or value in no format it may have is a bad
// record; anything else (the schema registry unreachable, or not knowing an id yet while its
// cluster elects a leader) is retried.
func readError(what string, err error) error {
	if errors.Is(err, errNotRead) {
		return fmt.Errorf("%w: %s %w", errBadRecord, what, err)
	}
	return fmt.Errorf("read the %s: %w", what, err)
}

// apply chooses the handler of a document value.
func (c *converter) apply(doc bson.D, key any, r *kgo.Record) (op, error) {
	handler := c.cfg.Handler
	if handler == HandlerAuto {
		handler = recognise(doc)
	}
	switch handler {
	case HandlerMongoRelay:
		// mongorelay writes its envelope, or in output.shape=document the document itself.
		if recognise(doc) == HandlerDebezium {
			return envelope(doc, key)
		}
		return c.documentShape(doc, key, r)
	case HandlerDebezium:
		return envelope(doc, key)
	case HandlerMongoDB:
		return changeEvent(doc)
	}
	return c.document(doc, key, r)
}

// recognise names the handler of a value in change.data.capture.handler=auto: mongorelay's
// and Debezium's envelopes share their field names (op, source, after, updateDescription); a MongoDB change event has operationType and documentKey; mongorelay's document
// shape has __op.
func recognise(doc bson.D) string {
	op, hasOp := lookup(doc, "op")
	_, hasSource := lookup(doc, "source")
	if s, ok := op.(string); hasOp && ok && len(s) == 1 && strings.Contains("crud", s) && hasSource {
		return HandlerDebezium
	}
	if _, ok := lookup(doc, "operationType"); ok {
		if _, ok := lookup(doc, "documentKey"); ok {
			return HandlerMongoDB
		}
	}
	if _, ok := lookup(doc, "__op"); ok {
		return HandlerMongoRelay
	}
	return HandlerNone
}

// document writes a plain document by the write model and id strategy.
func (c *converter) document(doc bson.D, key any, r *kgo.Record) (op, error) {
	id, err := c.documentID(doc, key, r)
	if err != nil {
		return op{}, err
	}
	doc = withID(doc, id)
	switch c.cfg.WriteModel {
	case UpdateOne:
		return op{kind: opSet, id: id, doc: doc}, nil
	case InsertOne:
		return op{kind: opInsert, id: id, doc: doc}, nil
	}
	return op{kind: opReplace, id: id, doc: doc}, nil
}

// documentShape applies a record of mongorelay's output.shape=document: the document with the
// fields the source added (__op, __ts_ms, __source_*) removed. Its deletes are tombstones.
func (c *converter) documentShape(doc bson.D, key any, r *kgo.Record) (op, error) {
	opv, _ := lookup(doc, "__op")
	doc = without(doc, func(k string) bool {
		return k == "__op" || k == "__ts_ms" || strings.HasPrefix(k, "__source_")
	})
	if opv == "d" {
		id, err := c.documentID(doc, key, r)
		if err != nil {
			return op{}, err
		}
		return op{kind: opDelete, id: id}, nil
	}
	return c.document(doc, key, r)
}

// documentID finds a document's _id by document.id.strategy.
func (c *converter) documentID(doc bson.D, key any, r *kgo.Record) (any, error) {
	valueID, inValue := lookup(doc, "_id")
	keyID, inKey := idOfKey(key)
	switch c.cfg.IDStrategy {
	case IDProvidedInValue:
		inKey = false
	case IDProvidedInKey:
		inValue = false
	case IDFullKey:
		if key == nil {
			return nil, fmt.Errorf("%w: document.id.strategy=full-key and the record has no key", errBadRecord)
		}
		return key, nil
	case IDKafkaMetadata:
		return fmt.Sprintf("%s-%d-%d", r.Topic, r.Partition, r.Offset), nil
	case IDObjectID:
		return bson.NewObjectID(), nil
	}
	switch {
	case inValue:
		return valueID, nil
	case inKey:
		return keyID, nil
	}
	return nil, fmt.Errorf("%w: no _id can be derived (document.id.strategy=%s): the value has no _id and the key "+
		"names none", errBadRecord, c.cfg.IDStrategy)
}

// idOfKey reads the _id a record key names: its id or _id field (Extended JSON text is read),
// a document key without them whole, or a scalar key itself.
func idOfKey(key any) (any, bool) {
	switch k := key.(type) {
	case nil:
		return nil, false
	case bson.D:
		if v, ok := lookup(k, "id"); ok {
			if s, ok := v.(string); ok {
				return idFromKeyString(s), true
			}
			return v, v != nil
		}
		if v, ok := lookup(k, "_id"); ok {
			return v, v != nil
		}
		return k, len(k) > 0
	}
	return key, true
}

// withID returns doc with _id id as its first field.
func withID(doc bson.D, id any) bson.D {
	out := make(bson.D, 0, len(doc)+1)
	out = append(out, bson.E{Key: "_id", Value: id})
	for _, e := range doc {
		if e.Key != "_id" {
			out = append(out, e)
		}
	}
	return out
}

// envelope applies a record in mongorelay's or Debezium's MongoDB envelope: c and r upsert
// after, u replaces with after when the record carries the document (capture modes with the
// full document) and otherwise applies updateDescription (or Debezium 1.x's patch), d deletes.
// An update without its document or its changes (the document was deleted before it could be
// looked up) writes nothing: its delete follows.
func envelope(doc bson.D, key any) (op, error) {
	opv, _ := lookup(doc, "op")
	after, hasAfter, err := field(doc, "after")
	if err != nil {
		return op{}, err
	}
	before, hasBefore, err := field(doc, "before")
	if err != nil {
		return op{}, err
	}
	// The documents' _id is exact; the key's is Extended JSON text read back.
	var id any
	var hasID bool
	if hasAfter {
		id, hasID = lookup(after, "_id")
	}
	if !hasID && hasBefore {
		id, hasID = lookup(before, "_id")
	}
	if !hasID {
		id, hasID = idOfKey(key)
	}
	if !hasID {
		if filter, ok, _ := field(doc, "filter"); ok { // Debezium 1.x
			id, hasID = lookup(filter, "_id")
		}
	}
	if !hasID {
		return op{}, fmt.Errorf("%w: a %v change whose key, after and before name no _id", errBadRecord, opv)
	}
	switch opv {
	case "c", "r":
		if !hasAfter {
			return op{}, fmt.Errorf("%w: a %v change without after", errBadRecord, opv)
		}
		return op{kind: opReplace, id: id, doc: withID(after, id)}, nil
	case "u":
		if hasAfter {
			return op{kind: opReplace, id: id, doc: withID(after, id)}, nil
		}
		return updateDescription(doc, id)
	case "d":
		return op{kind: opDelete, id: id}, nil
	}
	return op{}, fmt.Errorf("%w: op %v is not c, r, u or d", errBadRecord, opv)
}

// updateDescription reads the update of a u change without its document.
func updateDescription(doc bson.D, id any) (op, error) {
	desc, ok, err := field(doc, "updateDescription")
	if err != nil {
		return op{}, err
	}
	if !ok {
		patch, ok, err := field(doc, "patch") // Debezium 1.x: the update itself
		if err != nil || !ok {
			return op{kind: opSkip}, err
		}
		set, _, _ := field(patch, "$set")
		var unset []string
		if u, ok, _ := field(patch, "$unset"); ok {
			for _, e := range u {
				unset = append(unset, e.Key)
			}
		}
		return op{kind: opUpdate, id: id, set: set, unset: unset}, nil
	}
	o := op{kind: opUpdate, id: id}
	if o.set, _, err = field(desc, "updatedFields"); err != nil {
		return op{}, err
	}
	if removed, ok := lookup(desc, "removedFields"); ok && removed != nil {
		arr, ok := removed.(bson.A)
		if !ok {
			return op{}, fmt.Errorf("%w: updateDescription.removedFields is a %T, not an array", errBadRecord, removed)
		}
		for _, f := range arr {
			s, ok := f.(string)
			if !ok {
				return op{}, fmt.Errorf("%w: updateDescription.removedFields holds a %T", errBadRecord, f)
			}
			o.unset = append(o.unset, s)
		}
	}
	if tr, ok := lookup(desc, "truncatedArrays"); ok && tr != nil {
		arr, _ := tr.(bson.A)
		for _, t := range arr {
			td, _ := t.(bson.D)
			f, _ := lookup(td, "field")
			n, ok := lookup(td, "newSize")
			if !ok {
				n, _ = lookup(td, "size") // Debezium's name
			}
			name, ok1 := f.(string)
			size, ok2 := asInt32(n)
			if !ok1 || !ok2 {
				return op{}, fmt.Errorf("%w: updateDescription.truncatedArrays holds %v", errBadRecord, t)
			}
			o.truncated = append(o.truncated, truncation{field: name, newSize: size})
		}
	}
	if len(o.set) == 0 && len(o.unset) == 0 && len(o.truncated) == 0 {
		return op{kind: opSkip}, nil
	}
	return o, nil
}

// changeEvent applies a MongoDB change event (the MongoDB Kafka Connector's source output):
// insert and replace upsert fullDocument, update replaces with fullDocument when present and
// applies updateDescription otherwise, delete deletes documentKey._id.
func changeEvent(doc bson.D) (op, error) {
	kind, _ := lookup(doc, "operationType")
	key, _, err := field(doc, "documentKey")
	if err != nil {
		return op{}, err
	}
	id, ok := lookup(key, "_id")
	if !ok {
		return op{}, fmt.Errorf("%w: a %v change event without documentKey._id", errBadRecord, kind)
	}
	full, hasFull, err := field(doc, "fullDocument")
	if err != nil {
		return op{}, err
	}
	switch kind {
	case "insert", "replace":
		if !hasFull {
			return op{}, fmt.Errorf("%w: a %v change event without fullDocument", errBadRecord, kind)
		}
		return op{kind: opReplace, id: id, doc: withID(full, id)}, nil
	case "update":
		if hasFull {
			return op{kind: opReplace, id: id, doc: withID(full, id)}, nil
		}
		return updateDescription(doc, id)
	case "delete":
		return op{kind: opDelete, id: id}, nil
	}
	return op{kind: opSkip}, nil // drop, rename, invalidate: nothing to write per document
}

// field reads a document-valued field (a bson.D, or Extended JSON text of one); null and
// absent are no document.
func field(doc bson.D, name string) (bson.D, bool, error) {
	v, ok := lookup(doc, name)
	if !ok {
		return nil, false, nil
	}
	d, ok, err := asDocument(v)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: %w", errBadRecord, name, err)
	}
	return d, ok, nil
}

func asInt32(v any) (int32, bool) {
	switch n := v.(type) {
	case int32:
		return n, true
	case int64:
		return int32(n), true
	case float64:
		return int32(n), true
	}
	return 0, false
}

// checkSize refuses a document MongoDB would refuse for its size.
func checkSize(o op) error {
	var doc any = o.doc
	if o.kind == opUpdate {
		doc = bson.D{{Key: "$set", Value: o.set}}
	}
	if o.kind == opDelete || o.kind == opSkip {
		return nil
	}
	b, err := bson.Marshal(doc)
	if err != nil {
		return fmt.Errorf("%w: the document cannot be encoded as BSON: %w", errBadRecord, err)
	}
	if len(b) > maxDocument {
		return fmt.Errorf("%w: the document is %d bytes, over MongoDB's 16 MiB limit", errBadRecord, len(b))
	}
	return nil
}
