package avroschema

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/mongorelay/mongorelay/tasks/avrobin"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// This file holds the round-trip proof: Avro written by the Encoder is decoded by hamba/avro,
// turned back into BSON using nothing but the schema text (names, properties, logical types),
// and compared with the original document.

const magic = 0x5eed

// decode reads data with schema s through hamba's generic reader and checks that the encoding
// ends exactly where a trailing marker was written.
func decode(t testing.TB, s avro.Schema, data []byte) any {
	t.Helper()
	data = avrobin.AppendLong(bytes.Clone(data), magic)
	r := avro.NewReader(bytes.NewReader(data), 64)
	v := r.ReadNext(s)
	if r.Error != nil {
		t.Fatalf("hamba decode: %v", r.Error)
	}
	if m := r.ReadLong(); m != magic || r.Error != nil {
		t.Fatalf("encoding does not end where hamba's decoding does (marker %d, err %v)", m, r.Error)
	}
	return v
}

// toBSON converts a hamba-decoded value of schema s into a value bson.Marshal accepts (ToBSON).
func toBSON(t testing.TB, s avro.Schema, v any) any {
	t.Helper()
	out, err := ToBSON(s, v)
	if err != nil {
		t.Fatalf("rebuild BSON: %v", err)
	}
	return out
}

// canonical rewrites a document so that two documents compare equal when they hold the same
// values: keys sorted (Avro fixes field order, BSON does not), null and undefined fields
// dropped (an absent field and a null one both encode as null), undefined array items as null.
func canonical(t testing.TB, doc bson.Raw) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(canonicalDoc(t, doc))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func canonicalDoc(t testing.TB, doc bson.Raw) bson.D {
	elems, err := doc.Elements()
	if err != nil {
		t.Fatal(err)
	}
	d := bson.D{}
	for _, e := range elems {
		v := e.Value()
		if v.Type == bson.TypeNull || v.Type == bson.TypeUndefined {
			continue
		}
		d = append(d, bson.E{Key: e.Key(), Value: canonicalValue(t, v)})
	}
	slices.SortFunc(d, func(a, b bson.E) int { return strings.Compare(a.Key, b.Key) })
	return d
}

func canonicalValue(t testing.TB, v bson.RawValue) any {
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		return canonicalDoc(t, v.Document())
	case bson.TypeArray:
		vals, err := v.Array().Values()
		if err != nil {
			t.Fatal(err)
		}
		a := bson.A{}
		for _, item := range vals {
			if item.Type == bson.TypeUndefined || item.Type == bson.TypeNull {
				a = append(a, nil)
				continue
			}
			a = append(a, canonicalValue(t, item))
		}
		return a
	case bson.TypeCodeWithScope:
		code, scope := v.CodeWithScope()
		return bson.CodeWithScope{Code: bson.JavaScript(code), Scope: scope}
	}
	return v
}

// roundTrip encodes doc with enc, decodes it with hamba using reader (the encoder's own schema
// when nil) and fails unless the result is doc.
func roundTrip(t testing.TB, enc *Encoder, doc bson.Raw) []byte {
	t.Helper()
	data, err := enc.Append(nil, doc)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	got := toBSON(t, enc.Schema().Avro(), decode(t, enc.Schema().Avro(), data))
	gotRaw, err := bson.Marshal(got)
	if err != nil {
		t.Fatalf("marshal decoded %v: %v", got, err)
	}
	if want, have := canonical(t, doc), canonical(t, gotRaw); !bytes.Equal(want, have) {
		t.Fatalf("round trip differs\nwant %s\ngot  %s\nschema %s", extJSON(want), extJSON(have), enc.Schema())
	}
	return data
}

func extJSON(doc bson.Raw) string {
	b, err := bson.MarshalExtJSON(doc, true, false)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(b)
}
