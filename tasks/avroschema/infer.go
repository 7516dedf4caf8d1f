package avroschema

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mongorelay/mongorelay/tasks/avroschema/bsonraw"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Infer returns the schema of one document: its shape, with fields in key order. Merge it into
// the latest registered schema to get the schema to register.
func Infer(doc bson.Raw, opts Options) (*Schema, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	in := inferrer{opts: opts, records: map[string]*record{}}
	root := in.recordNamed(opts.Name)
	if err := in.document(root, doc, 1); err != nil {
		return nil, fmt.Errorf("infer schema %s: %w", opts.Name, err)
	}
	for _, r := range in.records {
		slices.SortFunc(r.fields, func(a, b *field) int { return strings.Compare(a.name, b.name) })
		for i, f := range r.fields {
			r.byName[f.name], r.byAvro[f.avro] = i, i
		}
	}
	return finish(opts, in.records)
}

type inferrer struct {
	opts    Options
	records map[string]*record
}

func (in *inferrer) recordNamed(name string) *record {
	r, ok := in.records[name]
	if !ok {
		r = newRecord(name)
		in.records[name] = r
	}
	return r
}

// document adds the fields of one document instance to rec; depth is the depth of its fields.
func (in *inferrer) document(rec *record, doc []byte, depth int) error {
	seen := make(map[string]bool)
	it := bsonraw.Elements(doc)
	var e bsonraw.Element
	for it.Next(&e) {
		key := string(e.Key)
		if seen[key] {
			return pathErr(errors.New("duplicate key"), key)
		}
		seen[key] = true
		i, ok := rec.byName[key]
		if !ok {
			if !utf8.ValidString(key) {
				// The original name must survive in the schema's JSON text, which cannot hold it.
				return pathErr(errors.New("key is not valid UTF-8"), key)
			}
			if err := rec.add(&field{name: key, avro: sanitize(key), typ: &union{}}); err != nil {
				return pathErr(err, key)
			}
			i = len(rec.fields) - 1
		}
		f := rec.fields[i]
		if e.Type == bson.TypeNull || e.Type == bson.TypeUndefined {
			// Avro's null is what an absent field reads as (the default of every field, also
			// when an older record predates the field), so an explicit null needs its own branch.
			f.typ.add(kNull)
			continue
		}
		if err := in.value(f.typ, childName(rec, f.avro), e.Type, e.Value, depth); err != nil {
			return pathErr(err, key)
		}
	}
	return it.Err()
}

// value adds one value's type to u (an array item's or map value's null is Avro's null, as
// nothing there can be absent). docName names the record of documents at this position.
func (in *inferrer) value(u *union, docName string, t bson.Type, v []byte, depth int) error {
	switch t {
	case bson.TypeNull, bson.TypeUndefined:
		return nil
	case bson.TypeEmbeddedDocument, bson.TypeArray:
		if depth > in.opts.MaxDepth {
			if _, err := bsonraw.AppendExtJSONValue(nil, t, v); err != nil {
				return err
			}
			u.add(kExtJSON)
			return nil
		}
		if t == bson.TypeArray {
			if u.items == nil {
				u.items = &union{}
			}
			return in.elements(v, func(i int, e *bsonraw.Element) error {
				if err := in.value(u.items, docName, e.Type, e.Value, depth+1); err != nil {
					return pathErr(err, indexSeg(i))
				}
				return nil
			})
		}
		isMap, err := in.opts.isMap(v)
		if err != nil {
			return err
		}
		if isMap {
			if u.values == nil {
				u.values = &union{}
			}
			seen := make(map[string]bool)
			return in.elements(v, func(_ int, e *bsonraw.Element) error {
				if seen[string(e.Key)] {
					return pathErr(errors.New("duplicate key"), string(e.Key))
				}
				seen[string(e.Key)] = true
				if err := in.value(u.values, docName, e.Type, e.Value, depth+1); err != nil {
					return pathErr(err, string(e.Key))
				}
				return nil
			})
		}
		u.record = docName
		return in.document(in.recordNamed(docName), v, depth+1)
	}
	k, err := scalarKind(t, v)
	if err != nil {
		return err
	}
	if err := checkScalar(t, v); err != nil {
		return err
	}
	u.add(k)
	return nil
}

// checkScalar rejects malformed values, so that a document Infer accepts always encodes.
func checkScalar(t bson.Type, v []byte) error {
	var err error
	switch t {
	case bson.TypeString, bson.TypeJavaScript, bson.TypeSymbol:
		_, err = bsonraw.String(v)
	case bson.TypeBinary:
		_, _, err = bsonraw.Binary(v)
	case bson.TypeRegex:
		_, _, err = bsonraw.Regex(v)
	case bson.TypeDBPointer:
		_, _, err = bsonraw.DBPointer(v)
	case bson.TypeCodeWithScope:
		var scope []byte
		if _, scope, err = bsonraw.CodeWithScope(v); err == nil {
			_, err = bsonraw.AppendExtJSON(nil, scope)
		}
	}
	return err
}

func (in *inferrer) elements(doc []byte, fn func(int, *bsonraw.Element) error) error {
	it := bsonraw.Elements(doc)
	var e bsonraw.Element
	for i := 0; it.Next(&e); i++ {
		if err := fn(i, &e); err != nil {
			return err
		}
	}
	return it.Err()
}

// isMap decides whether a subdocument is a map: wider than MaxFields, or with keys that all look
// like data. The decision depends on the document alone, so inference and encoding agree.
func (o *Options) isMap(doc []byte) (bool, error) {
	it := bsonraw.Elements(doc)
	var e bsonraw.Element
	n, dynamic := 0, true
	for it.Next(&e) {
		n++
		dynamic = dynamic && dynamicKey(e.Key)
	}
	return o.mapLike(n, dynamic), it.Err()
}

// mapLike is the map rule for a document of n keys, all dynamic-looking or not.
func (o *Options) mapLike(n int, dynamic bool) bool {
	return n > o.MaxFields || (n > 0 && dynamic)
}

// scalarKind returns the kind of a value that is not a document, array, null or undefined.
func scalarKind(t bson.Type, v []byte) (kind, error) {
	switch t {
	case bson.TypeDouble:
		return kDouble, nil
	case bson.TypeString:
		return kString, nil
	case bson.TypeBinary:
		if v[4] == 0x00 {
			return kBytes, nil
		}
		return kBinary, nil
	case bson.TypeObjectID:
		return kObjectID, nil
	case bson.TypeBoolean:
		return kBoolean, nil
	case bson.TypeDateTime:
		return kDateTime, nil
	case bson.TypeRegex:
		return kRegex, nil
	case bson.TypeDBPointer:
		return kDBPointer, nil
	case bson.TypeJavaScript:
		return kJavaScript, nil
	case bson.TypeSymbol:
		return kSymbol, nil
	case bson.TypeCodeWithScope:
		return kCodeWithScope, nil
	case bson.TypeInt32:
		return kInt, nil
	case bson.TypeTimestamp:
		return kTimestamp, nil
	case bson.TypeInt64:
		return kLong, nil
	case bson.TypeDecimal128:
		return kDecimal, nil
	case bson.TypeMinKey:
		return kMinKey, nil
	case bson.TypeMaxKey:
		return kMaxKey, nil
	}
	return 0, fmt.Errorf("%w: unknown BSON type 0x%02x", bsonraw.ErrMalformed, byte(t))
}

// Merge returns the schema that covers everything latest and shape cover: latest's fields keep
// their order, fields only in shape are appended sorted by key, unions gain branches, int
// widens only into a legacy bare long. Merging is idempotent (Merge(s, s) equals s), and the
// set of fields and types it yields does not depend on the order in which shapes are merged,
// so nodes merging concurrently converge. latest may be nil (nothing registered yet).
func Merge(latest, shape *Schema) (*Schema, error) {
	if latest == nil {
		return shape, nil
	}
	if latest.opts != shape.opts {
		return nil, fmt.Errorf("merge schema %s: options differ: %+v and %+v", latest.opts.Name, latest.opts, shape.opts)
	}
	records := make(map[string]*record, len(latest.records))
	for name, r := range latest.records {
		records[name] = r.clone()
	}
	for _, name := range slices.Sorted(maps.Keys(shape.records)) {
		from := shape.records[name]
		into, ok := records[name]
		if !ok {
			into = newRecord(name)
			records[name] = into
		}
		for _, f := range from.fields {
			if i, ok := into.byName[f.name]; ok {
				if err := into.fields[i].typ.merge(f.typ); err != nil {
					return nil, fmt.Errorf("merge schema %s: record %s field %s: %w", latest.opts.Name, name, f.name, err)
				}
			}
		}
		for _, f := range sortedNew(into, from) {
			if err := into.add(&field{name: f.name, avro: f.avro, typ: f.typ.clone()}); err != nil {
				return nil, fmt.Errorf("merge schema %s: record %s: %w", latest.opts.Name, name, err)
			}
		}
	}
	merged, err := finish(latest.opts, records)
	if err != nil {
		return nil, fmt.Errorf("merge schema: %w", err)
	}
	if merged.Equal(latest) {
		return latest, nil
	}
	return merged, nil
}
