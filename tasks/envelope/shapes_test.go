package envelope

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/mongorelay/mongorelay/tasks/avroschema"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// shapeEvent is an insert of a small document with the types the JSON formats map one by one.
func shapeEvent(t testing.TB, op string, doc bson.D) Event {
	t.Helper()
	d := bson.D{
		{Key: "_id", Value: bson.D{{Key: "_data", Value: "82AB"}}},
		{Key: "operationType", Value: op},
		{Key: "clusterTime", Value: bson.Timestamp{T: 1710324000, I: 3}},
		{Key: "wallTime", Value: wall},
		{Key: "ns", Value: bson.D{{Key: "db", Value: "shop"}, {Key: "coll", Value: "orders"}}},
		{Key: "documentKey", Value: bson.D{{Key: "_id", Value: int32(7)}}},
	}
	if doc != nil {
		d = append(d, bson.E{Key: "fullDocument", Value: doc})
	}
	return parse(t, d)
}

var shapeDoc = bson.D{
	{Key: "_id", Value: int32(7)},
	{Key: "qty", Value: int64(3)},
	{Key: "price", Value: 2.0},
	{Key: "note", Value: nil},
	{Key: "tags", Value: bson.A{"a", "b"}},
	{Key: "mixed", Value: bson.A{int32(1), "x"}},
	{Key: "at", Value: wall},
	{Key: "addr", Value: bson.D{{Key: "city", Value: "Oslo"}}},
}

func addedFields(t testing.TB, names ...string) AddedFields {
	t.Helper()
	f, err := ParseAddedFields(names)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestDocumentShapeInJSON(t *testing.T) {
	tests := []struct {
		name   string
		fields []string
		want   string
	}{
		{"the document alone", nil,
			`{"_id":{"$numberInt":"7"},"qty":{"$numberLong":"3"},"price":{"$numberDouble":"2.0"},"note":null,"tags":["a","b"],"mixed":[{"$numberInt":"1"},"x"],"at":{"$date":{"$numberLong":"1710324000123"}},"addr":{"city":"Oslo"}}`},
		{"with the change's fields", []string{"op", "ts_ms", "source.db", "source.ts_ms", "source.txnNumber"},
			`{"_id":{"$numberInt":"7"},"qty":{"$numberLong":"3"},"price":{"$numberDouble":"2.0"},"note":null,"tags":["a","b"],"mixed":[{"$numberInt":"1"},"x"],"at":{"$date":{"$numberLong":"1710324000123"}},"addr":{"city":"Oslo"},` +
				`"__op":"c","__ts_ms":99,"__source_db":"shop","__source_ts_ms":1710324000123,"__source_txnNumber":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := NewJSONEncoder(names, src, true, addedFields(t, tt.fields...))
			ev := shapeEvent(t, "insert", shapeDoc)
			got, err := enc.AppendJSONDocument(nil, &ev, 99)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestDocumentShapeWritesNoValueForDeletesAndMissingDocuments(t *testing.T) {
	typed, err := DocumentValueSchema(names, inferred(t, shapeDoc), nil)
	if err != nil {
		t.Fatal(err)
	}
	avroEnc := NewEncoder(typed, src)
	jsonEnc := NewJSONEncoder(names, src, true, nil)
	for _, tc := range []struct {
		ev   Event
		want error
	}{
		{shapeEvent(t, "delete", nil), ErrTombstone},
		{shapeEvent(t, "update", nil), ErrNoDocument},
	} {
		for name, write := range map[string]func([]byte, *Event, int64) ([]byte, error){
			"avro": avroEnc.AppendDocument, "json": jsonEnc.AppendJSONDocument, "json_schema": jsonEnc.AppendConnectDocument,
		} {
			out, err := write([]byte("x"), &tc.ev, 1)
			if !errors.Is(err, tc.want) || string(out) != "x" {
				t.Errorf("%s %s: got %q, %v; want dst unchanged and %v", name, tc.ev.Op, out, err, tc.want)
			}
		}
	}
}

func inferred(t testing.TB, doc bson.D) *avroschema.Schema {
	t.Helper()
	s, err := avroschema.Infer(raw(t, doc), docOpts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDocumentShapeInAvro(t *testing.T) {
	fields := addedFields(t, "op", "source.ts_ms", "source.lsid")
	ev := shapeEvent(t, "insert", shapeDoc)
	t.Run("typed", func(t *testing.T) {
		s, err := DocumentValueSchema(names, inferred(t, shapeDoc), fields)
		if err != nil {
			t.Fatal(err)
		}
		out, err := NewEncoder(s, src).AppendDocument(nil, &ev, 1)
		if err != nil {
			t.Fatal(err)
		}
		v := readNext(t, s.Avro(), out).(map[string]any)
		assertEqual(t, "_id", union(t, v["_id"]), 7)
		assertEqual(t, "qty", union(t, v["qty"]), map[string]any{"value": int64(3)}) // int64 is wrapped
		assertEqual(t, "__op", union(t, v["__op"]), "c")
		assertEqual(t, "__source_ts_ms", union(t, v["__source_ts_ms"]), int64(wall))
		assertEqual(t, "__source_lsid", v["__source_lsid"], nil)

		// The registered schema gives back the document schema, without the added fields.
		doc, err := ParseTypedValueSchema(s.String(), docOpts)
		if err != nil {
			t.Fatal(err)
		}
		if !doc.Equal(s.Document()) {
			t.Errorf("parsed document schema %s, want %s", doc, s.Document())
		}
	})
	t.Run("json document mode", func(t *testing.T) {
		s, err := DocumentValueSchema(names, nil, fields)
		if err != nil {
			t.Fatal(err)
		}
		assertEqual(t, "schema", s.String(), `{"type":"string","connect.name":"io.debezium.data.Json"}`)
		out, err := NewEncoder(s, src).AppendDocument(nil, &ev, 1)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(readNext(t, s.Avro(), out).(string)), &doc); err != nil {
			t.Fatal(err)
		}
		assertEqual(t, "__op", doc["__op"], "c")
		assertEqual(t, "qty", doc["qty"], map[string]any{"$numberLong": "3"})
	})
}

func TestKeyFormats(t *testing.T) {
	ev := shapeEvent(t, "insert", shapeDoc)
	got, err := ev.AppendJSONKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "json key", string(got), `{"id":"{\"$numberInt\":\"7\"}"}`)
	if got, err = ev.AppendStringKey(nil); err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "string key", string(got), `{"$numberInt":"7"}`)
}

// The schemas follow JsonConverter.asJsonSchema: "type", then "fields" or "items", then
// "optional", "name" and "version" when set, and "field" last for a struct's fields.
func TestConnectEnvelope(t *testing.T) {
	enc := NewJSONEncoder(names, src, false, nil)
	ev := shapeEvent(t, "insert", bson.D{{Key: "_id", Value: int32(7)}, {Key: "n", Value: nil}})
	out, err := enc.AppendConnectValue(nil, &ev, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"schema":{"type":"struct","fields":[` +
		`{"type":"string","optional":true,"name":"io.debezium.data.Json","version":1,"field":"before"},` +
		`{"type":"string","optional":true,"name":"io.debezium.data.Json","version":1,"field":"after"},` +
		`{"type":"struct","fields":[` +
		`{"type":"string","optional":true,"name":"io.debezium.data.Json","version":1,"field":"updatedFields"},` +
		`{"type":"array","items":{"type":"string","optional":false},"optional":true,"field":"removedFields"},` +
		`{"type":"array","items":{"type":"struct","fields":[{"type":"string","optional":false,"field":"field"},{"type":"int32","optional":false,"field":"newSize"}],"optional":false,"name":"mongorelay.TruncatedArray"},"optional":true,"field":"truncatedArrays"}],` +
		`"optional":true,"name":"mongorelay.UpdateDescription","field":"updateDescription"},` +
		`{"type":"struct","fields":[` +
		`{"type":"string","optional":false,"field":"connector"},{"type":"string","optional":false,"field":"name"},{"type":"int64","optional":false,"field":"ts_ms"},` +
		`{"type":"string","optional":false,"field":"snapshot"},{"type":"string","optional":false,"field":"db"},{"type":"string","optional":false,"field":"collection"},` +
		`{"type":"int32","optional":false,"field":"ord"},{"type":"string","optional":true,"field":"resume_token"},{"type":"string","optional":true,"field":"txn_id"},` +
		`{"type":"string","optional":true,"field":"lsid"},{"type":"int64","optional":true,"field":"txnNumber"}],"optional":false,"name":"mongorelay.Source","field":"source"},` +
		`{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"}],` +
		`"optional":false,"name":"mongorelay.shop.orders.Envelope"},` +
		`"payload":{"before":null,"after":"{\"_id\":{\"$numberInt\":\"7\"},\"n\":null}","updateDescription":null,` +
		`"source":{"connector":"mongodb","name":"mongorelay","ts_ms":1710324000123,"snapshot":"false","db":"shop","collection":"orders","ord":3,"resume_token":"82AB","txn_id":null,"lsid":null,"txnNumber":null},` +
		`"op":"c","ts_ms":5}}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	var v struct{ Schema any }
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	checkConnectTypes(t, v.Schema)
}

func TestConnectDocument(t *testing.T) {
	tests := []struct {
		name   string
		doc    bson.D
		fields []string
		schema string // the "fields" of the document's struct
		value  string
	}{
		{"every mapped type", append(shapeDoc,
			bson.E{Key: "oid", Value: mustOID(t, "65f1a2b3c4d5e6f708192a3b")},
			bson.E{Key: "dec", Value: bson.NewDecimal128(0x303c000000000000, 150)},
			bson.E{Key: "bin", Value: bson.Binary{Data: []byte{1, 2, 3}}},
			bson.E{Key: "ok", Value: true},
			bson.E{Key: "nan", Value: math.NaN()},
			bson.E{Key: "empty", Value: bson.A{}},
			bson.E{Key: "ts", Value: bson.Timestamp{T: 5, I: 1}},
		), []string{"op"},
			`[{"type":"int32","optional":true,"field":"_id"},{"type":"int64","optional":true,"field":"qty"},{"type":"double","optional":true,"field":"price"},` +
				`{"type":"string","optional":true,"field":"note"},{"type":"array","items":{"type":"string","optional":true},"optional":true,"field":"tags"},` +
				`{"type":"string","optional":true,"name":"io.debezium.data.Json","version":1,"field":"mixed"},` +
				`{"type":"int64","optional":true,"name":"org.apache.kafka.connect.data.Timestamp","version":1,"field":"at"},` +
				`{"type":"struct","fields":[{"type":"string","optional":true,"field":"city"}],"optional":true,"field":"addr"},` +
				`{"type":"string","optional":true,"field":"oid"},{"type":"string","optional":true,"field":"dec"},{"type":"bytes","optional":true,"field":"bin"},` +
				`{"type":"boolean","optional":true,"field":"ok"},{"type":"string","optional":true,"field":"nan"},` +
				`{"type":"array","items":{"type":"string","optional":true},"optional":true,"field":"empty"},` +
				`{"type":"string","optional":true,"name":"io.debezium.data.Json","version":1,"field":"ts"},` +
				`{"type":"string","optional":true,"field":"__op"}]`,
			`{"_id":7,"qty":3,"price":2.0,"note":null,"tags":["a","b"],"mixed":"[{\"$numberInt\":\"1\"},\"x\"]","at":1710324000123,"addr":{"city":"Oslo"},` +
				`"oid":"65f1a2b3c4d5e6f708192a3b","dec":"1.50","bin":"AQID","ok":true,"nan":"NaN","empty":[],"ts":"{\"$timestamp\":{\"t\":5,\"i\":1}}","__op":"c"}`},
		{"arrays of documents of one shape", bson.D{{Key: "_id", Value: int32(7)}, {Key: "items", Value: bson.A{bson.D{{Key: "n", Value: int32(1)}}, bson.D{{Key: "n", Value: int32(2)}}}}}, nil,
			`[{"type":"int32","optional":true,"field":"_id"},{"type":"array","items":{"type":"struct","fields":[{"type":"int32","optional":true,"field":"n"}],"optional":true},"optional":true,"field":"items"}]`,
			`{"_id":7,"items":[{"n":1},{"n":2}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := NewJSONEncoder(names, src, true, addedFields(t, tt.fields...))
			ev := shapeEvent(t, "insert", tt.doc)
			out, err := enc.AppendConnectDocument(nil, &ev, 1)
			if err != nil {
				t.Fatal(err)
			}
			want := `{"schema":{"type":"struct","fields":` + tt.schema + `,"optional":false,"name":"mongorelay.shop.orders.Value"},"payload":` + tt.value + `}`
			if string(out) != want {
				t.Errorf("got  %s\nwant %s", out, want)
			}
			var v struct{ Schema any }
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatalf("invalid JSON: %v", err)
			}
			checkConnectTypes(t, v.Schema)
		})
	}
}

// checkConnectTypes checks that every "type" of a Connect schema is a name JsonConverter reads.
func checkConnectTypes(t *testing.T, schema any) {
	t.Helper()
	switch s := schema.(type) {
	case map[string]any:
		switch s["type"] {
		case "boolean", "int8", "int16", "int32", "int64", "float", "double", "bytes", "string", "array", "map", "struct":
		default:
			t.Errorf("type %v is not one JsonConverter reads", s["type"])
		}
		for _, k := range []string{"items", "keys", "values"} {
			if sub, ok := s[k]; ok {
				checkConnectTypes(t, sub)
			}
		}
		if fields, ok := s["fields"].([]any); ok {
			for _, f := range fields {
				checkConnectTypes(t, f)
			}
		}
	default:
		t.Errorf("schema %v is not an object", schema)
	}
}

func TestShapeEncodersDoNotAllocate(t *testing.T) {
	ev := shapeEvent(t, "insert", shapeDoc)
	typed, err := DocumentValueSchema(names, inferred(t, shapeDoc), addedFields(t, "op", "source.db"))
	if err != nil {
		t.Fatal(err)
	}
	avroEnc := NewEncoder(typed, src)
	jsonEnc := NewJSONEncoder(names, src, true, addedFields(t, "op", "ts_ms", "source.collection"))
	buf := make([]byte, 0, 4096)
	for name, write := range map[string]func([]byte, *Event, int64) ([]byte, error){
		"AppendDocument": avroEnc.AppendDocument, "AppendJSONDocument": jsonEnc.AppendJSONDocument,
		"AppendConnectDocument": jsonEnc.AppendConnectDocument, "AppendConnectValue": jsonEnc.AppendConnectValue,
		"AppendJSONKey": func(dst []byte, ev *Event, _ int64) ([]byte, error) { return ev.AppendJSONKey(dst) },
	} {
		allocs := testing.AllocsPerRun(50, func() {
			if buf, err = write(buf[:0], &ev, 1); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s allocates %v times per event", name, allocs)
		}
	}
}

func TestParseAddedFieldsNamesThemAsDebeziumDoes(t *testing.T) {
	fs := addedFields(t, "op", "ts_ms", "source.ts_ms", "source.resume_token")
	var got []string
	for _, f := range fs {
		got = append(got, f.name)
	}
	if want := []string{"__op", "__ts_ms", "__source_ts_ms", "__source_resume_token"}; !reflect.DeepEqual(got, want) {
		t.Errorf("names %q, want %q", got, want)
	}
}

func TestADocumentWithAnAddedFieldsNameIsRefused(t *testing.T) {
	fields := addedFields(t, "op")
	doc := bson.D{{Key: "_id", Value: int32(7)}, {Key: "__op", Value: "mine"}}
	ev := shapeEvent(t, "insert", doc)
	typed, err := DocumentValueSchema(names, inferred(t, bson.D{{Key: "_id", Value: int32(7)}}), fields)
	if err != nil {
		t.Fatal(err)
	}
	jsonEnc := NewJSONEncoder(names, src, true, fields)
	for name, write := range map[string]func([]byte, *Event, int64) ([]byte, error){
		"avro": NewEncoder(typed, src).AppendDocument, "json": jsonEnc.AppendJSONDocument, "json_schema": jsonEnc.AppendConnectDocument,
	} {
		if _, err := write(nil, &ev, 1); !errors.Is(err, ErrFieldTaken) {
			t.Errorf("%s: %v, want ErrFieldTaken", name, err)
		}
	}
	if err := addedFields(t).Check(raw(t, doc)); err != nil {
		t.Errorf("without added fields: %v", err)
	}
}
