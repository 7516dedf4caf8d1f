package avroschema

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

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

// toBSON converts a hamba-decoded value of schema s into a value bson.Marshal accepts. It takes
// unions both as hamba's ReadNext gives them ({"typeName": value}) and as avro.Unmarshal gives
// unions without named branches (the bare value).
func toBSON(t testing.TB, s avro.Schema, v any) any {
	t.Helper()
	if ref, ok := s.(*avro.RefSchema); ok {
		s = ref.Schema()
	}
	switch s := s.(type) {
	case *avro.UnionSchema:
		if v == nil {
			return nil
		}
		if m, ok := v.(map[string]any); ok && len(m) == 1 {
			for name, inner := range m {
				for _, b := range s.Types() {
					if typeName(b) == name {
						return toBSON(t, b, inner)
					}
				}
			}
		}
		for _, b := range s.Types() {
			if goTypeMatches(b, v) {
				return toBSON(t, b, v)
			}
		}
		t.Fatalf("value %T %v matches no branch of %s", v, v, s)
	case *avro.RecordSchema:
		m := v.(map[string]any)
		if name, ok := strings.CutPrefix(s.FullName(), bsonNamespace+"."); ok {
			return bsonRecord(t, s, name, m)
		}
		var d bson.D
		for _, f := range s.Fields() {
			val := toBSON(t, f.Type(), m[f.Name()])
			if val == nil {
				continue
			}
			key := f.Name()
			if orig, ok := f.Prop(propName).(string); ok {
				key = orig
			}
			d = append(d, bson.E{Key: key, Value: val})
		}
		if d == nil {
			d = bson.D{}
		}
		return d
	case *avro.ArraySchema:
		a := bson.A{}
		for _, item := range v.([]any) {
			a = append(a, toBSON(t, s.Items(), item))
		}
		return a
	case *avro.MapSchema:
		m := v.(map[string]any)
		d := bson.D{}
		for _, k := range slices.Sorted(mapsKeys(m)) {
			d = append(d, bson.E{Key: k, Value: toBSON(t, s.Values(), m[k])})
		}
		return d
	case *avro.PrimitiveSchema:
		return primitiveToBSON(t, s, v)
	}
	t.Fatalf("unexpected schema %s", s.Type())
	return nil
}

func mapsKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func typeName(s avro.Schema) string {
	if ref, ok := s.(*avro.RefSchema); ok {
		s = ref.Schema()
	}
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	if p, ok := s.(*avro.PrimitiveSchema); ok && p.Logical() != nil {
		return string(p.Type()) + "." + string(p.Logical().Type())
	}
	return string(s.Type())
}

func goTypeMatches(s avro.Schema, v any) bool {
	switch v.(type) {
	case string:
		return s.Type() == avro.String
	case int:
		return s.Type() == avro.Int
	case int64:
		return s.Type() == avro.Long
	case time.Time:
		return s.Type() == avro.Long
	case float64:
		return s.Type() == avro.Double
	case bool:
		return s.Type() == avro.Boolean
	case []byte:
		return s.Type() == avro.Bytes
	case []any:
		return s.Type() == avro.Array
	case map[string]any:
		return s.Type() == avro.Map
	}
	return false
}

func primitiveToBSON(t testing.TB, s *avro.PrimitiveSchema, v any) any {
	t.Helper()
	hint, _ := s.Prop(propType).(string)
	switch s.Type() {
	case avro.String:
		str := v.(string)
		switch hint {
		case "objectId":
			oid, err := bson.ObjectIDFromHex(str)
			if err != nil {
				t.Fatalf("objectId %q: %v", str, err)
			}
			return oid
		case "decimal128":
			d, err := bson.ParseDecimal128(str)
			if err != nil {
				t.Fatalf("decimal128 %q: %v", str, err)
			}
			return d
		case "extjson":
			return fromExtJSON(t, str)
		}
		return str
	case avro.Long:
		if tm, ok := v.(time.Time); ok {
			return bson.DateTime(tm.UnixMilli())
		}
		return v.(int64)
	case avro.Int:
		return int32(v.(int))
	case avro.Double:
		return v.(float64)
	case avro.Boolean:
		return v.(bool)
	case avro.Bytes:
		return bson.Binary{Subtype: 0, Data: v.([]byte)}
	}
	t.Fatalf("unexpected primitive %s", s.Type())
	return nil
}

func fromExtJSON(t testing.TB, s string) bson.RawValue {
	t.Helper()
	var holder bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(`{"v":`+s+`}`), true, &holder); err != nil {
		t.Fatalf("extended JSON %q: %v", s, err)
	}
	return holder.Lookup("v")
}

func bsonRecord(t testing.TB, s *avro.RecordSchema, name string, m map[string]any) any {
	t.Helper()
	field := func(n string) avro.Schema {
		for _, f := range s.Fields() {
			if f.Name() == n {
				return f.Type()
			}
		}
		t.Fatalf("record %s has no field %s", name, n)
		return nil
	}
	switch name {
	case "String", "Int64", "Bytes", "ObjectId", "Decimal128", "ExtJSON", "DateTime":
		return primitiveToBSON(t, field("value").(*avro.PrimitiveSchema), m["value"])
	case "Null":
		return nil
	case "Binary":
		return bson.Binary{Subtype: byte(m["subtype"].(int)), Data: m["data"].([]byte)}
	case "Regex":
		return bson.Regex{Pattern: m["pattern"].(string), Options: m["options"].(string)}
	case "DBPointer":
		oid, err := bson.ObjectIDFromHex(m["id"].(string))
		if err != nil {
			t.Fatal(err)
		}
		return bson.DBPointer{DB: m["ref"].(string), Pointer: oid}
	case "JavaScript":
		return bson.JavaScript(m["code"].(string))
	case "JavaScriptWithScope":
		return bson.CodeWithScope{Code: bson.JavaScript(m["code"].(string)), Scope: fromExtJSON(t, m["scope"].(string)).Document()}
	case "Symbol":
		return bson.Symbol(m["symbol"].(string))
	case "Timestamp":
		return bson.Timestamp{T: uint32(m["t"].(int64)), I: uint32(m["i"].(int64))}
	case "MinKey":
		return bson.MinKey{}
	case "MaxKey":
		return bson.MaxKey{}
	}
	t.Fatalf("unknown BSON record %s", name)
	return nil
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
