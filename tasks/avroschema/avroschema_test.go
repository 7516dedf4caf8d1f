package avroschema

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
	"go.mongodb.org/mongo-driver/v2/bson"
)

var testOpts = Options{Name: "mongorelay.shop.orders.Value"}

func raw(t testing.TB, v any) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dec128(t testing.TB, s string) bson.Decimal128 {
	t.Helper()
	d, err := bson.ParseDecimal128(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func oid(t testing.TB, h string) bson.ObjectID {
	t.Helper()
	o, err := bson.ObjectIDFromHex(h)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func nested(depth int) bson.D {
	d := bson.D{{Key: "leaf", Value: int32(depth)}}
	for i := depth - 1; i >= 0; i-- {
		d = bson.D{{Key: "n", Value: d}, {Key: "level", Value: int32(i)}}
	}
	return d
}

func nestedArrays(depth int) any {
	var v any = "bottom"
	for range depth {
		v = bson.A{v}
	}
	return v
}

// inferEncode infers doc's schema, checks that Infer is stable through the schema text, and
// round-trips doc through it.
func inferEncode(t *testing.T, doc bson.Raw, opts Options) *Schema {
	t.Helper()
	s, err := Infer(doc, opts)
	if err != nil {
		t.Fatalf("infer: %v", err)
	}
	again, err := Parse(s.String(), opts)
	if err != nil {
		t.Fatalf("parse own schema: %v\n%s", err, s)
	}
	if !again.Equal(s) {
		t.Fatalf("schema text does not survive Parse:\n%s\n%s", s, again)
	}
	roundTrip(t, NewEncoder(s), doc)
	return s
}

func TestFidelity(t *testing.T) {
	someOID := oid(t, "5f1a2b3c4d5e6f7081920a1b")
	cases := []struct {
		name  string
		value any
	}{
		{"double", 1.5},
		{"double NaN", math.NaN()},
		{"double +Inf", math.Inf(1)},
		{"double -Inf", math.Inf(-1)},
		{"double -0", math.Copysign(0, -1)},
		{"double max", math.MaxFloat64},
		{"double smallest", math.SmallestNonzeroFloat64},
		{"string", "hello"},
		{"string empty", ""},
		{"string unicode", "日本語 ✓ \u0000 inside"},
		{"document", bson.D{{Key: "a", Value: int32(1)}, {Key: "b", Value: "x"}}},
		{"document empty", bson.D{}},
		{"array of ints", bson.A{int32(1), int32(2)}},
		{"array empty", bson.A{}},
		{"array mixed", bson.A{int64(1), "two", 3.0, nil, true, bson.Undefined{}, bson.D{{Key: "x", Value: true}}, bson.A{int64(4)}}},
		{"array of documents", bson.A{bson.D{{Key: "a", Value: int32(1)}}, bson.D{{Key: "b", Value: "x"}}, bson.D{}}},
		{"nested arrays of documents", bson.A{bson.A{bson.D{{Key: "a", Value: bson.A{bson.D{{Key: "b", Value: int32(1)}}}}}}}},
		{"binary generic", bson.Binary{Subtype: 0x00, Data: []byte{0, 1, 2, 0xff}}},
		{"binary empty", bson.Binary{Subtype: 0x00, Data: []byte{}}},
		{"binary function", bson.Binary{Subtype: 0x01, Data: []byte("f")}},
		{"binary old", bson.Binary{Subtype: 0x02, Data: []byte{1, 2, 3}}},
		{"binary uuid old", bson.Binary{Subtype: 0x03, Data: bytes.Repeat([]byte{3}, 16)}},
		{"binary uuid", bson.Binary{Subtype: 0x04, Data: bytes.Repeat([]byte{4}, 16)}},
		{"binary md5", bson.Binary{Subtype: 0x05, Data: bytes.Repeat([]byte{5}, 16)}},
		{"binary encrypted", bson.Binary{Subtype: 0x06, Data: []byte{6}}},
		{"binary column", bson.Binary{Subtype: 0x07, Data: []byte{7}}},
		{"binary sensitive", bson.Binary{Subtype: 0x08, Data: []byte{8}}},
		{"binary vector", bson.Binary{Subtype: 0x09, Data: []byte{0x03, 0x00, 1, 2}}},
		{"binary user", bson.Binary{Subtype: 0x80, Data: []byte("user")}},
		{"binary user max", bson.Binary{Subtype: 0xff, Data: []byte("user")}},
		{"undefined", bson.Undefined{}},
		{"objectId", someOID},
		{"bool true", true},
		{"bool false", false},
		{"datetime", bson.DateTime(1700000000123)},
		{"datetime epoch", bson.DateTime(0)},
		{"datetime before 1970", bson.DateTime(-1)},
		{"datetime 1066", bson.DateTime(-28510991924000)},
		{"datetime min", bson.DateTime(math.MinInt64)},
		{"datetime max", bson.DateTime(math.MaxInt64)},
		{"null", nil},
		{"regex", bson.Regex{Pattern: `^a.*\d$`, Options: "mix"}},
		{"dbpointer", bson.DBPointer{DB: "shop.orders", Pointer: someOID}},
		{"javascript", bson.JavaScript("function() { return 1; }")},
		{"javascript with scope", bson.CodeWithScope{Code: "x + y", Scope: bson.D{{Key: "x", Value: int32(1)}, {Key: "y", Value: bson.A{"z"}}}}},
		{"symbol", bson.Symbol("sym")},
		{"int32", int32(42)},
		{"int32 min", int32(math.MinInt32)},
		{"int32 max", int32(math.MaxInt32)},
		{"timestamp", bson.Timestamp{T: 1700000000, I: 3}},
		{"timestamp max", bson.Timestamp{T: math.MaxUint32, I: math.MaxUint32}},
		{"int64", int64(42)},
		{"int64 min", int64(math.MinInt64)},
		{"int64 max", int64(math.MaxInt64)},
		{"decimal128", dec128(t, "1.50")},
		{"decimal128 negative", dec128(t, "-123456789.0123456789")},
		{"decimal128 NaN", dec128(t, "NaN")},
		{"decimal128 +Inf", dec128(t, "Infinity")},
		{"decimal128 -Inf", dec128(t, "-Infinity")},
		{"decimal128 -0", dec128(t, "-0")},
		{"decimal128 0E+3", dec128(t, "0E+3")},
		{"decimal128 max exponent", dec128(t, "9.999999999999999999999999999999999E+6144")},
		{"decimal128 min exponent", dec128(t, "1E-6176")},
		{"decimal128 34 digits", dec128(t, "1234567890123456789012345678901234")},
		{"minKey", bson.MinKey{}},
		{"maxKey", bson.MaxKey{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inferEncode(t, raw(t, bson.D{{Key: "_id", Value: int32(1)}, {Key: "v", Value: tc.value}}), testOpts)
		})
	}
	t.Run("all in one document", func(t *testing.T) {
		var d bson.D
		for i, tc := range cases {
			d = append(d, bson.E{Key: strings.ReplaceAll(tc.name, " ", "_") + string(rune('a'+i%26)), Value: tc.value})
		}
		inferEncode(t, raw(t, d), testOpts)
	})
}

func TestFieldNames(t *testing.T) {
	cases := []struct {
		name string
		doc  bson.D
	}{
		{"dotted and underscored", bson.D{{Key: "a.b", Value: int32(1)}, {Key: "a_b", Value: int32(2)}}},
		{"underscored and dotted", bson.D{{Key: "a_b", Value: int32(2)}, {Key: "a.b", Value: int32(1)}}},
		{"leading digit", bson.D{{Key: "1x", Value: "one"}, {Key: "_1x", Value: "two"}}},
		{"dollar", bson.D{{Key: "$x", Value: true}, {Key: "_x", Value: false}}},
		{"non-ASCII", bson.D{{Key: "naïve", Value: int32(1)}, {Key: "日本", Value: int32(2)}, {Key: "naive", Value: int32(3)}}},
		{"same cleaned form", bson.D{{Key: "a b", Value: int32(1)}, {Key: "a-b", Value: int32(2)}, {Key: "a+b", Value: int32(3)}}},
		{"empty key", bson.D{{Key: "", Value: int32(1)}}},
		{"primitive type names", bson.D{{Key: "string", Value: bson.D{{Key: "int", Value: bson.D{{Key: "x", Value: int32(1)}}}}}, {Key: "null", Value: bson.A{bson.D{{Key: "long", Value: int32(2)}}}}}},
		{"dotted subdocuments", bson.D{{Key: "a.b", Value: bson.D{{Key: "c", Value: int32(1)}}}, {Key: "a_b", Value: bson.D{{Key: "d", Value: "x"}}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := inferEncode(t, raw(t, tc.doc), testOpts)
			for _, r := range s.records {
				for _, f := range r.fields {
					if !validName(f.avro) || f.avro != sanitize(f.name) {
						t.Errorf("field %q got Avro name %q", f.name, f.avro)
					}
				}
			}
		})
	}
	// Sanitized names depend on the key alone: "a.b" gets the same name whatever comes first.
	first := inferEncode(t, raw(t, bson.D{{Key: "a.b", Value: int32(1)}}), testOpts)
	second := inferEncode(t, raw(t, bson.D{{Key: "a_b", Value: int32(1)}, {Key: "a.b", Value: int32(1)}}), testOpts)
	if first.records[testOpts.Name].fields[0].avro != second.records[testOpts.Name].fields[0].avro {
		t.Errorf("sanitized name of a.b depends on its neighbours")
	}
}

func TestDeepNesting(t *testing.T) {
	for _, depth := range []int{1, 31, 32, 33, 100} {
		doc := raw(t, nested(depth))
		s := inferEncode(t, doc, testOpts)
		wantExt := depth > 32
		if got := strings.Contains(s.String(), `"mongodb.type":"extjson"`); got != wantExt {
			t.Errorf("depth %d: extjson branch %v, want %v", depth, got, wantExt)
		}
		inferEncode(t, raw(t, bson.D{{Key: "a", Value: nestedArrays(depth)}}), testOpts)
	}
	// A tight limit puts the Extended JSON string right under the root.
	inferEncode(t, raw(t, nested(5)), Options{Name: testOpts.Name, MaxDepth: 1})
}

func TestMaps(t *testing.T) {
	wide := bson.D{}
	for i := range 300 {
		wide = append(wide, bson.E{Key: "k" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26)), Value: int32(i)})
	}
	cases := []struct {
		name    string
		doc     bson.D
		mapLike bool
	}{
		{"numeric keys", bson.D{{Key: "m", Value: bson.D{{Key: "1", Value: int32(1)}, {Key: "22", Value: int32(2)}}}}, true},
		{"ObjectId keys", bson.D{{Key: "m", Value: bson.D{{Key: "5f1a2b3c4d5e6f7081920a1b", Value: "x"}}}}, true},
		{"UUID keys", bson.D{{Key: "m", Value: bson.D{{Key: "123e4567-e89b-12d3-a456-426614174000", Value: "x"}}}}, true},
		{"date keys", bson.D{{Key: "m", Value: bson.D{{Key: "2024-01-31", Value: int32(3)}, {Key: "2024-02-01T00:00", Value: int32(4)}}}}, true},
		{"document values", bson.D{{Key: "m", Value: bson.D{{Key: "1", Value: bson.D{{Key: "qty", Value: int32(3)}}}}}}, true},
		{"wide", bson.D{{Key: "m", Value: wide}}, true},
		{"named keys", bson.D{{Key: "m", Value: bson.D{{Key: "1", Value: int32(1)}, {Key: "total", Value: int32(2)}}}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := inferEncode(t, raw(t, tc.doc), testOpts)
			if got := strings.Contains(s.String(), `"type":"map"`); got != tc.mapLike {
				t.Errorf("map %v, want %v: %s", got, tc.mapLike, s)
			}
		})
	}
	// A field seen both as a record and as a map keeps both branches: switching a registered
	// record to a map would break readers.
	a := inferEncode(t, raw(t, bson.D{{Key: "m", Value: bson.D{{Key: "total", Value: int32(1)}}}}), testOpts)
	b := inferEncode(t, raw(t, bson.D{{Key: "m", Value: bson.D{{Key: "7", Value: int32(1)}}}}), testOpts)
	merged := mustMerge(t, a, b)
	enc := NewEncoder(merged)
	roundTrip(t, enc, raw(t, bson.D{{Key: "m", Value: bson.D{{Key: "total", Value: int32(1)}}}}))
	roundTrip(t, enc, raw(t, bson.D{{Key: "m", Value: bson.D{{Key: "7", Value: int32(1)}}}}))
}

func mustMerge(t testing.TB, a, b *Schema) *Schema {
	t.Helper()
	m, err := Merge(a, b)
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	return m
}

func TestNotCovered(t *testing.T) {
	s, err := Infer(raw(t, bson.D{{Key: "a", Value: int32(1)}, {Key: "d", Value: bson.D{{Key: "x", Value: "s"}}}}), testOpts)
	if err != nil {
		t.Fatal(err)
	}
	enc := NewEncoder(s)
	for _, tc := range []struct {
		name string
		doc  bson.D
		path string
	}{
		{"new field", bson.D{{Key: "b", Value: int32(1)}}, "field b"},
		{"new type", bson.D{{Key: "a", Value: "str"}}, "field a"},
		{"int64 into int", bson.D{{Key: "a", Value: int64(1)}}, "field a"},
		{"nested new field", bson.D{{Key: "d", Value: bson.D{{Key: "y", Value: int32(1)}}}}, "field d.y"},
		{"map where a record was", bson.D{{Key: "d", Value: bson.D{{Key: "1", Value: "s"}}}}, "field d"},
		{"array where a document was", bson.D{{Key: "d", Value: bson.A{}}}, "field d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := []byte("prefix")
			out, err := enc.Append(buf, raw(t, tc.doc))
			if !errors.Is(err, ErrNotCovered) {
				t.Fatalf("got %v, want ErrNotCovered", err)
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("error %q does not name %q", err, tc.path)
			}
			if string(out) != "prefix" {
				t.Errorf("buffer changed on error: %q", out)
			}
			merged := mustMerge(t, s, mustInfer(t, raw(t, tc.doc)))
			roundTrip(t, NewEncoder(merged), raw(t, tc.doc))
		})
	}
}

func mustInfer(t testing.TB, doc bson.Raw) *Schema {
	t.Helper()
	s, err := Infer(doc, testOpts)
	if err != nil {
		t.Fatalf("infer: %v", err)
	}
	return s
}

func TestErrorsNamePath(t *testing.T) {
	dup := bson.Raw(raw(t, bson.D{{Key: "d", Value: bson.D{{Key: "x", Value: int32(1)}, {Key: "x", Value: int32(2)}}}}))
	if _, err := Infer(dup, testOpts); err == nil || !strings.Contains(err.Error(), "field d.x") {
		t.Errorf("duplicate key: got %v", err)
	}
	s := mustInfer(t, raw(t, bson.D{{Key: "d", Value: bson.D{{Key: "x", Value: int32(1)}}}}))
	if _, err := NewEncoder(s).Append(nil, dup); err == nil || errors.Is(err, ErrNotCovered) || !strings.Contains(err.Error(), "field d.x") {
		t.Errorf("duplicate key on encode: got %v", err)
	}
	truncated := raw(t, bson.D{{Key: "a", Value: "x"}})
	truncated = truncated[:len(truncated)-2]
	if _, err := Infer(truncated, testOpts); err == nil {
		t.Errorf("truncated document inferred")
	}
}

func TestHambaParsesEverySchema(t *testing.T) {
	s := mustInfer(t, raw(t, bson.D{{Key: "m", Value: bson.MinKey{}}, {Key: "x", Value: bson.A{}}}))
	if _, err := avro.Parse(s.String()); err != nil {
		t.Fatalf("avro.Parse: %v\n%s", err, s)
	}
}

func TestDuplicateMapKeys(t *testing.T) {
	dup := raw(t, bson.D{{Key: "m", Value: bson.D{{Key: "1", Value: int32(1)}, {Key: "2", Value: int32(2)}, {Key: "1", Value: int32(3)}}}})
	if _, err := Infer(dup, testOpts); err == nil || !strings.Contains(err.Error(), "field m.1: duplicate key") {
		t.Errorf("infer: got %v", err)
	}
	s := mustInfer(t, raw(t, bson.D{{Key: "m", Value: bson.D{{Key: "1", Value: int32(1)}}}}))
	if _, err := NewEncoder(s).Append(nil, dup); err == nil || !strings.Contains(err.Error(), "field m.1: duplicate key") {
		t.Errorf("encode: got %v", err)
	}
}
