package avroschema

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// firstMatch returns the branch of the reader union that a writer's branch w resolves to in
// fastavro, which takes the first reader branch whose Avro type equals w's, ignoring logical
// types and properties, or that w promotes to (int to long or double, long to double, string
// to bytes and back), records matched by unqualified name. Java's org.apache.avro prefers an
// exact match, so a union that fastavro resolves right, Java resolves right too.
func firstMatch(w avro.Schema, reader *avro.UnionSchema) avro.Schema {
	w = deref(w)
	for _, r := range reader.Types() {
		r = deref(r)
		if avroMatches(w, r) {
			return r
		}
	}
	return nil
}

func avroMatches(w, r avro.Schema) bool {
	wt, rt := w.Type(), r.Type()
	switch {
	case wt == rt && wt == avro.Record:
		return unqualified(w.(*avro.RecordSchema).FullName()) == unqualified(r.(*avro.RecordSchema).FullName())
	case wt == rt:
		return true
	case wt == avro.Int:
		return rt == avro.Long || rt == avro.Float || rt == avro.Double
	case wt == avro.Long:
		return rt == avro.Float || rt == avro.Double
	case wt == avro.String:
		return rt == avro.Bytes
	case wt == avro.Bytes:
		return rt == avro.String
	}
	return false
}

func unqualified(name string) string { return name[strings.LastIndexByte(name, '.')+1:] }

// sameBranch reports whether two union branches stand for the same BSON kinds: equal type names,
// logical types and "mongodb.type" hints.
func sameBranch(a, b avro.Schema) bool {
	a, b = deref(a), deref(b)
	if unionBranchName(a) != unionBranchName(b) {
		return false
	}
	pa, aok := a.(*avro.PrimitiveSchema)
	pb, bok := b.(*avro.PrimitiveSchema)
	return !aok || !bok || pa.Prop(propType) == pb.Prop(propType)
}

// describe names a branch with its hint, if any.
func describe(s avro.Schema) string {
	if s == nil {
		return "no branch"
	}
	s = deref(s)
	if p, ok := s.(*avro.PrimitiveSchema); ok && p.Prop(propType) != nil {
		return fmt.Sprintf("%s (%s %v)", unionBranchName(s), propType, p.Prop(propType))
	}
	return unionBranchName(s)
}

// checkResolvable fails unless every branch of every union of writer resolves, by first
// match, to the branch of the same kind in reader: no old value is read through another kind's
// branch, whatever the reader.
func checkResolvable(t *testing.T, what string, writer, reader avro.Schema) {
	t.Helper()
	var walk func(path string, w, r avro.Schema)
	seen := map[string]bool{}
	walk = func(path string, w, r avro.Schema) {
		w, r = deref(w), deref(r)
		switch w := w.(type) {
		case *avro.UnionSchema:
			ru := r.(*avro.UnionSchema)
			for _, wb := range w.Types() {
				rb := firstMatch(wb, ru)
				if rb == nil || !sameBranch(wb, rb) {
					t.Fatalf("%s: %s: the writer's branch %s is read through %s", what, path, describe(wb), describe(rb))
				}
				walk(path, wb, rb)
			}
		case *avro.RecordSchema:
			if seen[w.FullName()] {
				return
			}
			seen[w.FullName()] = true
			rr := r.(*avro.RecordSchema)
			for _, wf := range w.Fields() {
				for _, rf := range rr.Fields() {
					if rf.Name() == wf.Name() {
						walk(path+"."+wf.Name(), wf.Type(), rf.Type())
					}
				}
			}
		case *avro.ArraySchema:
			walk(path+"[]", w.Items(), r.(*avro.ArraySchema).Items())
		case *avro.MapSchema:
			walk(path+"{}", w.Values(), r.(*avro.MapSchema).Values())
		}
	}
	walk("", writer, reader)
}

// TestEveryOldValueKeepsItsKindWithTheLatestSchema evolves one field through every order of
// kinds that share or promote to one Avro type (the gaps of issue 20: string and bytes,
// ObjectId next to strings, int32 next to double) and checks, for every earlier version, that
// each union branch resolves to its own kind in the latest schema, and that decoding its data
// with the latest schema gives back the same BSON, types and hints included.
func TestEveryOldValueKeepsItsKindWithTheLatestSchema(t *testing.T) {
	someOID := oid(t, "5f1a2b3c4d5e6f7081920a1b")
	groups := []struct {
		name   string
		values []any
	}{
		{"string and bytes", []any{"s", bson.Binary{Data: []byte("b")}, dec128(t, "1.5")}},
		{"ObjectId and string", []any{someOID, "s", bson.Binary{Data: []byte{0xff}}}},
		{"int32, int64 and double", []any{int32(3), int64(1) << 40, 2.5}},
		{"dates and numbers", []any{bson.DateTime(-5), int64(7), int32(3)}},
		{"null, absent and values", []any{nil, "s", bson.Undefined{}}},
	}
	for _, g := range groups {
		for _, order := range permutations(len(g.values)) {
			var docs []bson.Raw
			for _, i := range order {
				docs = append(docs, raw(t, bson.D{{Key: "a", Value: g.values[i]}, {Key: "in", Value: bson.A{g.values[i]}}}))
			}
			docs = append(docs, raw(t, bson.D{})) // a is absent
			var versions []*Schema
			var written [][]byte
			var latest *Schema
			for _, d := range docs {
				latest = mustMerge(t, latest, mustInfer(t, d))
				data, err := NewEncoder(latest).Append(nil, d)
				if err != nil {
					t.Fatal(err)
				}
				versions, written = append(versions, latest), append(written, data)
			}
			compat := avro.NewSchemaCompatibility()
			for i, v := range versions {
				what := g.name + " " + extJSON(docs[i])
				checkResolvable(t, what, v.Avro(), latest.Avro())
				if err := compat.Compatible(latest.Avro(), v.Avro()); err != nil {
					t.Fatalf("%s: the latest version cannot read version %d: %v", what, i, err)
				}
				resolved, err := compat.Resolve(latest.Avro(), v.Avro())
				if err != nil {
					t.Fatal(err)
				}
				var got any
				if err := avro.Unmarshal(resolved, written[i], &got); err != nil {
					t.Fatalf("%s: decode with the latest schema: %v", what, err)
				}
				back, err := bson.Marshal(toBSON(t, latest.Avro(), got))
				if err != nil {
					t.Fatal(err)
				}
				if want, have := extJSON(canonical(t, docs[i])), extJSON(canonical(t, back)); want != have {
					t.Fatalf("%s: read with the latest schema as %s", what, have)
				}
			}
		}
	}
}

// legacySchema is a schema as registered by the earlier mapping, which made the most general
// kind present bare (string before bytes, a bare ObjectId alone, int32 widened to double).
func legacySchema(t *testing.T, fieldType string) *Schema {
	t.Helper()
	s, err := Parse(`{"type":"record","name":"mongorelay.shop.orders.Value","fields":[{"name":"a","type":`+fieldType+`,"default":null}]}`, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLegacyUnionsEvolve merges new kinds into unions registered under the earlier mapping:
// their bare branches stay (old values are read through them) and the new kinds join wrapped,
// so every registered subject keeps evolving under BACKWARD_TRANSITIVE.
func TestLegacyUnionsEvolve(t *testing.T) {
	someOID := oid(t, "5f1a2b3c4d5e6f7081920a1b")
	cases := []struct {
		name, legacy string
		value        any
		want         string
	}{
		{"bare bytes, then a string", `["null","bytes"]`, "s",
			`["null","bytes",{"type":"record","name":"mongorelay.bson.String","fields":[{"name":"value","type":"string"}]}]`},
		{"bare ObjectId, then a string", `["null",{"type":"string","mongodb.type":"objectId"}]`, "s",
			`["null",{"type":"string","mongodb.type":"objectId"},{"type":"record","name":"mongorelay.bson.String","fields":[{"name":"value","type":"string"}]}]`},
		{"string and bytes both bare, then an ObjectId", `["null","string","bytes"]`, someOID,
			`["null","string","bytes",{"type":"record","name":"mongorelay.bson.ObjectId","fields":[{"name":"value","type":{"type":"string","mongodb.type":"objectId"}}]}]`},
		{"int32 widened to double, then an int32", `["null","double"]`, int32(3), `["null","int","double"]`},
		{"bare long, then an int32 (still widened)", `["null","long"]`, int32(3), `["null","long"]`},
		{"bare long, then a date", `["null","long"]`, bson.DateTime(5),
			`["null","long",{"type":"record","name":"mongorelay.bson.DateTime","fields":[{"name":"value","type":{"type":"long","logicalType":"timestamp-millis"}}]}]`},
		{"no null marker, then an explicit null", `["null","string"]`, nil,
			`["null","string",{"type":"record","name":"mongorelay.bson.Null","fields":[]}]`},
	}
	compat := avro.NewSchemaCompatibility()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := legacySchema(t, tc.legacy)
			doc := raw(t, bson.D{{Key: "a", Value: tc.value}})
			next := mustMerge(t, old, mustInfer(t, doc))
			if got := fieldType(t, next, "a"); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			if err := compat.Compatible(next.Avro(), old.Avro()); err != nil {
				t.Fatalf("the registry would refuse the new version: %v", err)
			}
			if tc.legacy == `["null","long"]` {
				roundTripNumeric(t, NewEncoder(next), doc) // an int32 in a legacy long reads as a long
			} else {
				roundTrip(t, NewEncoder(next), doc)
			}
			if again := mustMerge(t, next, mustInfer(t, doc)); !again.Equal(next) {
				t.Fatalf("merging again moved the schema:\n%s\n%s", next, again)
			}
			if parsed, err := Parse(next.String(), testOpts); err != nil || !parsed.Equal(next) {
				t.Fatalf("Parse(String()) = %v, %v", parsed, err)
			}
		})
	}
}

// TestAbsentAndNullAreToldApart: an absent field reads as Avro null, an explicit null (or
// undefined) as the empty record mongorelay.bson.Null; in arrays and maps, where nothing can be
// absent, a null is Avro null.
func TestAbsentAndNullAreToldApart(t *testing.T) {
	docs := []bson.Raw{
		raw(t, bson.D{{Key: "a", Value: nil}, {Key: "list", Value: bson.A{nil, "x"}}}),
		raw(t, bson.D{{Key: "list", Value: bson.A{}}}),
		raw(t, bson.D{{Key: "a", Value: bson.Undefined{}}}),
	}
	s := mergeAll(t, docs...)
	enc := NewEncoder(s)
	want := []any{map[string]any{}, nil, map[string]any{}}
	for i, d := range docs {
		data, err := enc.Append(nil, d)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := avro.Unmarshal(s.Avro(), data, &got); err != nil {
			t.Fatal(err)
		}
		a := got["a"]
		if m, ok := a.(map[string]any); ok {
			a = m["mongorelay.bson.Null"]
		}
		if (a == nil) != (want[i] == nil) {
			t.Fatalf("%s: field a decoded as %#v, want %#v", extJSON(d), got["a"], want[i])
		}
	}
	if got := fieldType(t, s, "list"); got != `["null",{"type":"array","items":["null","string"]}]` {
		t.Fatalf("list: %s", got)
	}
}
