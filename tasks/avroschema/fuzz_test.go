package avroschema

import (
	"encoding/binary"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/mongorelay/mongorelay/tasks/avroschema/bsonraw"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// FuzzEncodeDocument feeds arbitrary bytes through infer, merge, encode and hamba's decoder.
// Nothing may panic; a document that Infer accepts must encode under its own schema and under
// a merged one, decode to exactly its own bytes' worth, and (when free of the values whose text
// form is not unique: Decimal128 and invalid UTF-8 beyond the depth limit) come back equal.
func FuzzEncodeDocument(f *testing.F) {
	f.Add([]byte(orderDocument(f)))
	f.Add([]byte(raw(f, everyTypeDoc(f))))
	f.Add([]byte(raw(f, nested(40))))
	f.Add([]byte(raw(f, bson.D{{Key: "a.b", Value: bson.A{bson.D{{Key: "1", Value: int32(1)}}, bson.A{}}}})))
	f.Add([]byte(raw(f, bson.D{{Key: "x", Value: int32(1)}})))
	base, err := Infer(orderDocument(f), testOpts)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		fixLength(doc)
		shape, err := Infer(doc, testOpts)
		if err != nil {
			return
		}
		own, err := NewEncoder(shape).Append(nil, doc)
		if err != nil {
			t.Fatalf("inferred schema does not encode its own document: %v\n%s", err, shape)
		}
		decode(t, shape.Avro(), own)
		merged, err := Merge(base, shape)
		if err != nil {
			t.Fatalf("merge: %v", err)
		}
		if again, err := Merge(merged, shape); err != nil || !again.Equal(merged) {
			t.Fatalf("merge is not idempotent: %v", err)
		}
		enc := NewEncoder(merged)
		if _, err := enc.Append(nil, orderDocument(t)); err != nil {
			t.Fatalf("merged schema lost the base document: %v", err)
		}
		if bson.Raw(doc).Validate() != nil || hasLossyText(doc, 1, merged.opts.MaxDepth) {
			data, err := enc.Append(nil, doc)
			if err != nil {
				t.Fatalf("merged schema does not encode the document: %v", err)
			}
			decode(t, merged.Avro(), data)
			return
		}
		roundTripNumeric(t, enc, doc)
	})
}

// fixLength makes the outer length and terminator right, so that mutations explore the
// content instead of failing the first check.
func fixLength(doc []byte) {
	if len(doc) >= 5 {
		binary.LittleEndian.PutUint32(doc, uint32(len(doc)))
		doc[len(doc)-1] = 0
	}
}

// hasLossyText reports whether doc holds a Decimal128 (whose string drops NaN payloads and
// non-canonical encodings) or, past the depth limit, a string that is not valid UTF-8 (which
// Extended JSON replaces).
func hasLossyText(doc []byte, depth, maxDepth int) bool {
	it := bsonraw.Elements(doc)
	var e bsonraw.Element
	for it.Next(&e) {
		switch e.Type {
		case bson.TypeDecimal128:
			return true
		case bson.TypeEmbeddedDocument, bson.TypeArray:
			if hasLossyText(e.Value, depth+1, maxDepth) {
				return true
			}
		case bson.TypeCodeWithScope:
			return true
		case bson.TypeString, bson.TypeSymbol, bson.TypeJavaScript, bson.TypeRegex, bson.TypeDBPointer:
			if depth > maxDepth || !utf8.Valid(e.Value) {
				return true
			}
		}
		if !utf8.Valid(e.Key) {
			return true
		}
	}
	return errors.Is(it.Err(), bsonraw.ErrMalformed)
}
