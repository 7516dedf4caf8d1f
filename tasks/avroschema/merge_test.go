package avroschema

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// fieldType renders the type of root field name in s, defining every named type inline.
func fieldType(t *testing.T, s *Schema, name string) string {
	t.Helper()
	root := s.records[s.opts.Name]
	i, ok := root.byName[name]
	if !ok {
		t.Fatalf("no field %s in %s", name, s)
	}
	r := renderer{records: s.records, defined: map[string]bool{}}
	r.union(root.fields[i].typ)
	return string(r.b)
}

func mergeAll(t *testing.T, docs ...bson.Raw) *Schema {
	t.Helper()
	var s *Schema
	for _, d := range docs {
		s = mustMerge(t, s, mustInfer(t, d))
	}
	return s
}

func TestMergeTypes(t *testing.T) {
	someOID := oid(t, "5f1a2b3c4d5e6f7081920a1b")
	cases := []struct {
		name   string
		values []any
		want   string
	}{
		{"int and long stay apart", []any{int32(1), int64(2)}, `["null","int",{"type":"record","name":"mongorelay.bson.Int64","fields":[{"name":"value","type":"long"}]}]`},
		{"int and double stay apart", []any{int32(1), 2.5}, `["null","int","double"]`},
		{"long and double stay apart", []any{int64(1), 2.5}, `["null","double",{"type":"record","name":"mongorelay.bson.Int64","fields":[{"name":"value","type":"long"}]}]`},
		{"int, long and double", []any{int32(1), int64(2), 2.5}, `["null","int","double",{"type":"record","name":"mongorelay.bson.Int64","fields":[{"name":"value","type":"long"}]}]`},
		{"string and objectId", []any{"s", someOID}, `["null","string",{"type":"record","name":"mongorelay.bson.ObjectId","fields":[{"name":"value","type":{"type":"string","mongodb.type":"objectId"}}]}]`},
		{"objectId and decimal", []any{someOID, dec128(t, "1.5")}, `["null",{"type":"record","name":"mongorelay.bson.ObjectId","fields":[{"name":"value","type":{"type":"string","mongodb.type":"objectId"}}]},{"type":"record","name":"mongorelay.bson.Decimal128","fields":[{"name":"value","type":{"type":"string","mongodb.type":"decimal128"}}]}]`},
		{"date and long", []any{bson.DateTime(5), int64(6)}, `["null",{"type":"long","logicalType":"timestamp-millis"},{"type":"record","name":"mongorelay.bson.Int64","fields":[{"name":"value","type":"long"}]}]`},
		{"date and int", []any{bson.DateTime(5), int32(6)}, `["null","int",{"type":"long","logicalType":"timestamp-millis"}]`},
		{"generic and typed binary", []any{bson.Binary{Data: []byte{1}}, bson.Binary{Subtype: 4, Data: []byte{2}}}, `["null",{"type":"record","name":"mongorelay.bson.Bytes","fields":[{"name":"value","type":"bytes"}]},{"type":"record","name":"mongorelay.bson.Binary","fields":[{"name":"subtype","type":"int"},{"name":"data","type":"bytes"}]}]`},
		{"min and max key", []any{bson.MinKey{}, bson.MaxKey{}}, `["null",{"type":"record","name":"mongorelay.bson.MinKey","fields":[]},{"type":"record","name":"mongorelay.bson.MaxKey","fields":[]}]`},
		{"null only", []any{nil, bson.Undefined{}}, `["null",{"type":"record","name":"mongorelay.bson.Null","fields":[]}]`},
		{"string and bytes", []any{"s", bson.Binary{Data: []byte{1}}}, `["null","string",{"type":"record","name":"mongorelay.bson.Bytes","fields":[{"name":"value","type":"bytes"}]}]`},
		{"record, map and array", []any{bson.D{{Key: "x", Value: int32(1)}}, bson.D{{Key: "1", Value: "v"}}, bson.A{int32(1)}}, `["null",{"type":"record","name":"mongorelay.shop.orders.Value.a_record","fields":[{"name":"x","type":["null","int"],"default":null}]},{"type":"array","items":["null","int"]},{"type":"map","values":["null","string"]}]`},
		{"array items merge", []any{bson.A{int32(1)}, bson.A{"s"}, bson.A{int64(1)}, bson.A{nil}}, `["null",{"type":"array","items":["null","int","string",{"type":"record","name":"mongorelay.bson.Int64","fields":[{"name":"value","type":"long"}]}]}]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var docs []bson.Raw
			for _, v := range tc.values {
				docs = append(docs, raw(t, bson.D{{Key: "a", Value: v}}))
			}
			for _, order := range permutations(len(docs)) {
				var ordered []bson.Raw
				for _, i := range order {
					ordered = append(ordered, docs[i])
				}
				s := mergeAll(t, ordered...)
				if got := fieldType(t, s, "a"); got != tc.want {
					t.Fatalf("order %v: got %s\nwant %s", order, got, tc.want)
				}
				enc := NewEncoder(s)
				for _, d := range docs {
					roundTrip(t, enc, d)
				}
			}
		})
	}
}

// roundTripNumeric is roundTrip for documents whose numbers may have been widened: numbers
// compare by value.
func roundTripNumeric(t *testing.T, enc *Encoder, doc bson.Raw) {
	t.Helper()
	data, err := enc.Append(nil, doc)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	got, err := bson.Marshal(toBSON(t, enc.Schema().Avro(), decode(t, enc.Schema().Avro(), data)))
	if err != nil {
		t.Fatal(err)
	}
	if want, have := numbersAsDoubles(extJSON(canonical(t, doc))), numbersAsDoubles(extJSON(canonical(t, got))); want != have {
		t.Fatalf("round trip differs\nwant %s\ngot  %s", want, have)
	}
}

func numbersAsDoubles(s string) string {
	for _, prefix := range []string{`{"$numberInt":"`, `{"$numberLong":"`, `{"$numberDouble":"`} {
		s = strings.ReplaceAll(s, prefix, `{"n":"`)
	}
	return strings.ReplaceAll(s, `.0"}`, `"}`)
}

func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append([]int{}, p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}

// evolvingShapes is a collection's history: fields come and go, change type, nest, turn up as
// maps and arrays.
func evolvingShapes(t testing.TB) []bson.Raw {
	someOID := oid(t, "5f1a2b3c4d5e6f7081920a1b")
	return []bson.Raw{
		raw(t, bson.D{{Key: "_id", Value: someOID}, {Key: "qty", Value: int32(1)}, {Key: "tags", Value: bson.A{"a"}}}),
		raw(t, bson.D{{Key: "_id", Value: "legacy-id"}, {Key: "qty", Value: int64(1) << 40}, {Key: "address", Value: bson.D{{Key: "city", Value: "Oslo"}}}}),
		raw(t, bson.D{{Key: "_id", Value: int32(7)}, {Key: "qty", Value: 2.5}, {Key: "price", Value: dec128(t, "9.99")}, {Key: "a.b", Value: true}}),
		raw(t, bson.D{{Key: "address", Value: bson.D{{Key: "zip", Value: int32(123)}, {Key: "geo", Value: bson.A{1.5, 2.5}}}}, {Key: "stock", Value: bson.D{{Key: "2024-01-01", Value: int32(3)}}}}),
		raw(t, bson.D{{Key: "tags", Value: bson.A{bson.D{{Key: "k", Value: "v"}}, int32(3)}}, {Key: "at", Value: bson.DateTime(-5000)}, {Key: "a_b", Value: "x"}}),
		raw(t, bson.D{{Key: "at", Value: int64(99)}, {Key: "address", Value: "unstructured"}, {Key: "bin", Value: bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{1}, 16)}}}),
	}
}

// sortedText renders s with every record's fields sorted: the part of a schema that must not
// depend on merge order (field order does, by design: existing fields never move).
func sortedText(t *testing.T, s *Schema) string {
	t.Helper()
	records := map[string]*record{}
	for name, r := range s.records {
		c := newRecord(name)
		for _, f := range sortedNew(c, r) {
			if err := c.add(f); err != nil {
				t.Fatal(err)
			}
		}
		records[name] = c
	}
	sorted, err := finish(s.opts, records)
	if err != nil {
		t.Fatal(err)
	}
	return sorted.String()
}

func TestMergeOrderIndependent(t *testing.T) {
	docs := evolvingShapes(t)
	var want string
	for _, order := range permutations(len(docs)) {
		var ordered []bson.Raw
		for _, i := range order {
			ordered = append(ordered, docs[i])
		}
		s := mergeAll(t, ordered...)
		got := sortedText(t, s)
		if want == "" {
			want = got
			enc := NewEncoder(s)
			for _, d := range docs {
				roundTripNumeric(t, enc, d)
			}
		} else if got != want {
			t.Fatalf("order %v gives\n%s\nwant\n%s", order, got, want)
		}
	}
}

func TestMergeIdempotentAndRepeatable(t *testing.T) {
	docs := evolvingShapes(t)
	s := mergeAll(t, docs...)
	if m := mustMerge(t, s, s); !m.Equal(s) {
		t.Fatalf("Merge(s, s) != s")
	}
	for _, d := range docs {
		if m := mustMerge(t, s, mustInfer(t, d)); !m.Equal(s) {
			t.Fatalf("merging a covered shape changed the schema:\n%s\n%s", s, m)
		}
		shape := mustInfer(t, d)
		if m := mustMerge(t, shape, shape); !m.Equal(shape) {
			t.Fatalf("Merge(shape, shape) != shape")
		}
	}
	parsed, err := Parse(s.String(), testOpts)
	if err != nil {
		t.Fatal(err)
	}
	if !parsed.Equal(s) {
		t.Fatalf("Parse(String()) differs:\n%s\n%s", s, parsed)
	}
	// A registration race: two nodes merge different shapes into the same latest version, one
	// wins, the other fetches the winner and merges again; both end where a single node would.
	latest := mustInfer(t, docs[0])
	a := mustMerge(t, latest, mustInfer(t, docs[1]))
	b := mustMerge(t, latest, mustInfer(t, docs[2]))
	retried := mustMerge(t, a, mustInfer(t, docs[2]))
	if got, want := sortedText(t, retried), sortedText(t, mustMerge(t, b, mustInfer(t, docs[1]))); got != want {
		t.Fatalf("racing merges diverge:\n%s\n%s", got, want)
	}
	if again := mustMerge(t, retried, mustInfer(t, docs[1])); !again.Equal(retried) {
		t.Fatalf("a converged schema moved again")
	}
}

// TestBackwardTransitive registers each merged schema in turn and checks that every version
// reads the data of every earlier one: hamba's checker says so, and decoding the old bytes with
// the new schema gives the old document back.
func TestBackwardTransitive(t *testing.T) {
	docs := evolvingShapes(t)
	for _, order := range [][]int{{0, 1, 2, 3, 4, 5}, {5, 4, 3, 2, 1, 0}, {2, 0, 4, 1, 5, 3}} {
		var versions []*Schema
		var written [][]byte
		var latest *Schema
		for _, i := range order {
			latest = mustMerge(t, latest, mustInfer(t, docs[i]))
			data, err := NewEncoder(latest).Append(nil, docs[i])
			if err != nil {
				t.Fatal(err)
			}
			versions = append(versions, latest)
			written = append(written, data)
		}
		compat := avro.NewSchemaCompatibility()
		for j, reader := range versions {
			for i := 0; i < j; i++ {
				writer := versions[i]
				if err := compat.Compatible(reader.Avro(), writer.Avro()); err != nil {
					t.Fatalf("order %v: version %d cannot read version %d: %v", order, j, i, err)
				}
				resolved, err := compat.Resolve(reader.Avro(), writer.Avro())
				if err != nil {
					t.Fatalf("resolve: %v", err)
				}
				var v any
				if err := avro.Unmarshal(resolved, written[i], &v); err != nil {
					t.Fatalf("order %v: version %d decoding version %d data: %v", order, j, i, err)
				}
				got, err := bson.Marshal(toBSON(t, reader.Avro(), v))
				if err != nil {
					t.Fatal(err)
				}
				doc := docs[order[i]]
				if want, have := extJSON(canonical(t, doc)), extJSON(canonical(t, got)); want != have {
					t.Fatalf("order %v: version %d reads version %d data as\n%s\nwant\n%s", order, j, i, have, want)
				}
			}
		}
	}
}
