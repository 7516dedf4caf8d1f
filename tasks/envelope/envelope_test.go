package envelope

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/mongorelay/mongorelay/tasks/avrobin"
	"github.com/mongorelay/mongorelay/tasks/avroschema"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// The events below follow the change event documents of the MongoDB manual (Change Events
// reference, server 6.0+/7.0): field names, BSON types and nesting as the server sends them.

const topic = "mongorelay.shop.orders"

var (
	names   = NamesFor(topic)
	docOpts = avroschema.Options{Name: names.Value}
	src     = Source{Connector: "mongodb", Name: "mongorelay"}
)

func raw(t testing.TB, v any) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustOID(t testing.TB, h string) bson.ObjectID {
	t.Helper()
	o, err := bson.ObjectIDFromHex(h)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

const token = "8265F1A2B3000000032B022C0100296E5A1004A1B2C3D4E5F60718293A4B5C6D7E8F9046645F696400646565F1A2B3C4D5E6F708192A3B0004"

var (
	lsidUUID = []byte{0x4f, 0x1e, 0x2a, 0x3b, 0x4c, 0x5d, 0x4e, 0x6f, 0x8a, 0x9b, 0xac, 0xbd, 0xce, 0xdf, 0xe0, 0xf1}
	wall     = bson.DateTime(1710324000123)
)

type eventCase struct {
	name  string
	event bson.D
	kind  Kind
	op    string
	// what the decoded value must hold
	before, after  bool
	update         bool
	updatedFields  string
	removedFields  any
	truncated      any
	txn, lsid      any
	txnNumber      any
	resumeToken    any
	sourceTsMs     int64
	ord            int
	snapshotMarker string
	key            string
}

func events(t testing.TB) []eventCase {
	id := mustOID(t, "65f1a2b3c4d5e6f708192a3b")
	order := bson.D{
		{Key: "_id", Value: id},
		{Key: "status", Value: "NEW"},
		{Key: "qty", Value: int32(2)},
		{Key: "price", Value: bson.NewDecimal128(0x3040000000000000, 1999)},
		{Key: "createdAt", Value: wall},
		{Key: "tags", Value: bson.A{"a", "b", "c"}},
	}
	base := func(op string, extra ...bson.E) bson.D {
		d := bson.D{
			{Key: "_id", Value: bson.D{{Key: "_data", Value: token}}},
			{Key: "operationType", Value: op},
			{Key: "clusterTime", Value: bson.Timestamp{T: 1710324000, I: 3}},
			{Key: "wallTime", Value: wall},
			{Key: "ns", Value: bson.D{{Key: "db", Value: "shop"}, {Key: "coll", Value: "orders"}}},
		}
		return append(d, extra...)
	}
	key := bson.E{Key: "documentKey", Value: bson.D{{Key: "_id", Value: id}}}
	oidKey := `{"$oid":"65f1a2b3c4d5e6f708192a3b"}`
	updated := bson.D{{Key: "status", Value: "SHIPPED"}, {Key: "qty", Value: int32(3)}, {Key: "tags.1", Value: "z"}}
	lsid := bson.E{Key: "lsid", Value: bson.D{
		{Key: "id", Value: bson.Binary{Subtype: 4, Data: lsidUUID}},
		{Key: "uid", Value: bson.Binary{Subtype: 0, Data: bytes.Repeat([]byte{7}, 32)}},
	}}
	withoutWallTime := base("insert", bson.E{Key: "fullDocument", Value: order}, key)
	withoutWallTime = append(withoutWallTime[:3], withoutWallTime[4:]...)
	return []eventCase{
		{name: "insert", event: base("insert", bson.E{Key: "fullDocument", Value: order}, key),
			kind: KindRecord, op: "c", after: true, resumeToken: token, sourceTsMs: int64(wall), ord: 3, key: oidKey},
		{name: "insert without wallTime (server < 6.0)", event: withoutWallTime,
			kind: KindRecord, op: "c", after: true, resumeToken: token, sourceTsMs: 1710324000000, ord: 3, key: oidKey},
		{name: "update with lookup", event: base("update", key,
			bson.E{Key: "updateDescription", Value: bson.D{
				{Key: "updatedFields", Value: updated},
				{Key: "removedFields", Value: bson.A{"note", "legacy.flag"}},
				{Key: "truncatedArrays", Value: bson.A{bson.D{{Key: "field", Value: "tags"}, {Key: "newSize", Value: int32(2)}}}},
			}},
			bson.E{Key: "fullDocument", Value: order}),
			kind: KindRecord, op: "u", after: true, update: true,
			updatedFields: `{"status":"SHIPPED","qty":{"$numberInt":"3"},"tags.1":"z"}`,
			removedFields: []any{"note", "legacy.flag"},
			truncated:     []any{map[string]any{"field": "tags", "newSize": 2}},
			resumeToken:   token, sourceTsMs: int64(wall), ord: 3, key: oidKey},
		{name: "update without fullDocument", event: base("update", key,
			bson.E{Key: "updateDescription", Value: bson.D{
				{Key: "updatedFields", Value: bson.D{{Key: "qty", Value: int32(3)}}},
				{Key: "removedFields", Value: bson.A{}},
				{Key: "truncatedArrays", Value: bson.A{}},
			}}),
			kind: KindRecord, op: "u", update: true, updatedFields: `{"qty":{"$numberInt":"3"}}`,
			removedFields: []any{}, truncated: []any{}, resumeToken: token, sourceTsMs: int64(wall), ord: 3, key: oidKey},
		{name: "update whose document was deleted before the lookup", event: base("update", key,
			bson.E{Key: "updateDescription", Value: bson.D{{Key: "updatedFields", Value: bson.D{}}, {Key: "removedFields", Value: bson.A{"x"}}}},
			bson.E{Key: "fullDocument", Value: nil}),
			kind: KindRecord, op: "u", update: true, updatedFields: `{}`, removedFields: []any{"x"},
			resumeToken: token, sourceTsMs: int64(wall), ord: 3, key: oidKey},
		{name: "update with pre-image", event: base("update", key,
			bson.E{Key: "updateDescription", Value: bson.D{{Key: "updatedFields", Value: bson.D{{Key: "qty", Value: int32(3)}}}, {Key: "removedFields", Value: bson.A{}}}},
			bson.E{Key: "fullDocument", Value: order},
			bson.E{Key: "fullDocumentBeforeChange", Value: order}),
			kind: KindRecord, op: "u", before: true, after: true, update: true, updatedFields: `{"qty":{"$numberInt":"3"}}`,
			removedFields: []any{}, resumeToken: token, sourceTsMs: int64(wall), ord: 3, key: oidKey},
		{name: "replace", event: base("replace", key, bson.E{Key: "fullDocument", Value: order}),
			kind: KindRecord, op: "u", after: true, resumeToken: token, sourceTsMs: int64(wall), ord: 3, key: oidKey},
		{name: "delete", event: base("delete", key),
			kind: KindRecord, op: "d", resumeToken: token, sourceTsMs: int64(wall), ord: 3, key: oidKey},
		{name: "delete with pre-image", event: base("delete", key, bson.E{Key: "fullDocumentBeforeChange", Value: order}),
			kind: KindRecord, op: "d", before: true, resumeToken: token, sourceTsMs: int64(wall), ord: 3, key: oidKey},
		{name: "insert in a transaction", event: base("insert", bson.E{Key: "fullDocument", Value: order}, key,
			lsid, bson.E{Key: "txnNumber", Value: int64(12)}),
			kind: KindRecord, op: "c", after: true, resumeToken: token, sourceTsMs: int64(wall), ord: 3, key: oidKey,
			txn:       "4f1e2a3b-4c5d-4e6f-8a9b-acbdcedfe0f1:12",
			lsid:      "4f1e2a3b-4c5d-4e6f-8a9b-acbdcedfe0f1",
			txnNumber: int64(12)},
		{name: "sharded collection document key", event: base("delete",
			bson.E{Key: "documentKey", Value: bson.D{{Key: "region", Value: "eu"}, {Key: "_id", Value: "order-1"}}}),
			kind: KindRecord, op: "d", resumeToken: token, sourceTsMs: int64(wall), ord: 3, key: `"order-1"`},
		{name: "drop", event: base("drop"), kind: KindControl},
		{name: "rename", event: base("rename", bson.E{Key: "to", Value: bson.D{{Key: "db", Value: "shop"}, {Key: "coll", Value: "orders_old"}}}), kind: KindControl},
		{name: "dropDatabase", event: bson.D{
			{Key: "_id", Value: bson.D{{Key: "_data", Value: token}}},
			{Key: "operationType", Value: "dropDatabase"},
			{Key: "clusterTime", Value: bson.Timestamp{T: 1710324000, I: 3}},
			{Key: "ns", Value: bson.D{{Key: "db", Value: "shop"}}},
		}, kind: KindControl},
		{name: "invalidate", event: bson.D{
			{Key: "_id", Value: bson.D{{Key: "_data", Value: token}}},
			{Key: "operationType", Value: "invalidate"},
			{Key: "clusterTime", Value: bson.Timestamp{T: 1710324000, I: 3}},
			{Key: "wallTime", Value: wall},
		}, kind: KindControl},
	}
}

func parse(t testing.TB, d bson.D) Event {
	t.Helper()
	ev, err := Parse(raw(t, d))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return ev
}

// typedSchema evolves the document schema over every event, as a task would.
func typedSchema(t testing.TB, cases []eventCase) *ValueSchema {
	t.Helper()
	var doc *avroschema.Schema
	for _, tc := range cases {
		ev := parse(t, tc.event)
		var err error
		if doc, err = Evolve(doc, &ev, docOpts); err != nil {
			t.Fatal(err)
		}
	}
	s, err := TypedValueSchema(names, doc)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// readNext decodes data with hamba's generic reader and checks that the encoding ends exactly
// where hamba's decoding does, using a marker written after it.
func readNext(t testing.TB, s avro.Schema, data []byte) any {
	t.Helper()
	const marker = 0x5eed
	r := avro.NewReader(bytes.NewReader(avrobin.AppendLong(bytes.Clone(data), marker)), 64)
	v := r.ReadNext(s)
	if r.Error != nil {
		t.Fatalf("hamba decode: %v", r.Error)
	}
	if m := r.ReadLong(); m != marker || r.Error != nil {
		t.Fatalf("encoding does not end where hamba's decoding does (marker %d, err %v)", m, r.Error)
	}
	return v
}

// union unwraps hamba's {"type": value} form of a union.
func union(t testing.TB, v any) any {
	t.Helper()
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		t.Fatalf("not a union value: %#v", v)
	}
	for _, inner := range m {
		return inner
	}
	return nil
}

func TestEnvelope(t *testing.T) {
	cases := events(t)
	typed := typedSchema(t, cases)
	jsonSchema, err := JSONValueSchema(names)
	if err != nil {
		t.Fatal(err)
	}
	const processed = int64(1710324001000)
	for _, mode := range []*ValueSchema{typed, jsonSchema} {
		enc := NewEncoder(mode, src)
		modeName := "typed"
		if mode.Document() == nil {
			modeName = "json"
		}
		for _, tc := range cases {
			t.Run(modeName+"/"+tc.name, func(t *testing.T) {
				ev := parse(t, tc.event)
				if ev.Kind() != tc.kind {
					t.Fatalf("kind %v, want %v", ev.Kind(), tc.kind)
				}
				if tc.kind == KindControl {
					if _, err := enc.AppendValue(nil, &ev, processed); !errors.Is(err, ErrNoRecord) {
						t.Fatalf("control event encoded: %v", err)
					}
					if _, err := ev.AppendKey(nil); !errors.Is(err, ErrNoRecord) {
						t.Fatalf("control event key: %v", err)
					}
					return
				}
				keyBytes, err := ev.AppendKey(nil)
				if err != nil {
					t.Fatal(err)
				}
				keySchema := avro.MustParse(KeySchema(names))
				if got := readNext(t, keySchema, keyBytes).(map[string]any)["id"]; got != tc.key {
					t.Errorf("key id %q, want %q", got, tc.key)
				}
				data, err := enc.AppendValue(nil, &ev, processed)
				if err != nil {
					t.Fatal(err)
				}
				v := readNext(t, mode.Avro(), data).(map[string]any)
				if got := v["op"]; got != tc.op {
					t.Errorf("op %v, want %v", got, tc.op)
				}
				if got := union(t, v["ts_ms"]); got != processed {
					t.Errorf("ts_ms %v, want %v", got, processed)
				}
				checkDocument(t, modeName, "before", v["before"], tc.before, raw(t, tc.event))
				checkDocument(t, modeName, "after", v["after"], tc.after, raw(t, tc.event))
				ud := union(t, v["updateDescription"])
				if (ud != nil) != tc.update {
					t.Fatalf("updateDescription %v, want present=%v", ud, tc.update)
				}
				if ud != nil {
					m := ud.(map[string]any)
					if got := union(t, m["updatedFields"]); got != tc.updatedFields {
						t.Errorf("updatedFields %v, want %v", got, tc.updatedFields)
					}
					assertEqual(t, "removedFields", union(t, m["removedFields"]), tc.removedFields)
					assertEqual(t, "truncatedArrays", union(t, m["truncatedArrays"]), tc.truncated)
				}
				s := v["source"].(map[string]any)
				assertEqual(t, "source.connector", s["connector"], "mongodb")
				assertEqual(t, "source.name", s["name"], "mongorelay")
				assertEqual(t, "source.db", s["db"], "shop")
				assertEqual(t, "source.collection", s["collection"], "orders")
				assertEqual(t, "source.ts_ms", s["ts_ms"], tc.sourceTsMs)
				assertEqual(t, "source.ord", s["ord"], tc.ord)
				assertEqual(t, "source.snapshot", s["snapshot"], "false")
				assertEqual(t, "source.resume_token", union(t, s["resume_token"]), tc.resumeToken)
				assertEqual(t, "source.txn_id", union(t, s["txn_id"]), tc.txn)
				assertEqual(t, "source.lsid", union(t, s["lsid"]), tc.lsid)
				assertEqual(t, "source.txnNumber", union(t, s["txnNumber"]), tc.txnNumber)
			})
		}
	}
}

// checkDocument checks before or after against the event's fullDocument(BeforeChange).
func checkDocument(t *testing.T, mode, field string, v any, present bool, event bson.Raw) {
	t.Helper()
	doc := union(t, v)
	if (doc != nil) != present {
		t.Fatalf("%s = %v, want present=%v", field, doc, present)
	}
	if doc == nil {
		return
	}
	source := "fullDocument"
	if field == "before" {
		source = "fullDocumentBeforeChange"
	}
	want := event.Lookup(source).Document()
	if mode == "json" {
		wantJSON, err := bson.MarshalExtJSON(want, true, false)
		if err != nil {
			t.Fatal(err)
		}
		assertEqual(t, field, doc, string(wantJSON))
		return
	}
	m := doc.(map[string]any)
	assertEqual(t, field+".status", union(t, m["status"]), want.Lookup("status").StringValue())
	// ObjectId and Decimal128 are always in their wrapper records (tasks/avroschema/README.md).
	assertEqual(t, field+"._id", union(t, m["_id"]), map[string]any{"value": want.Lookup("_id").ObjectID().Hex()})
	assertEqual(t, field+".price", union(t, m["price"]), map[string]any{"value": want.Lookup("price").Decimal128().String()})
	assertEqual(t, field+".createdAt", union(t, m["createdAt"]).(time.Time).UnixMilli(), int64(wall))
	assertEqual(t, field+".tags", len(union(t, m["tags"]).([]any)), 3)
}

func assertEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if gb, ok := got.([]any); ok {
		wb, _ := want.([]any)
		if len(gb) != len(wb) {
			t.Errorf("%s = %#v, want %#v", what, got, want)
			return
		}
		for i := range gb {
			assertEqual(t, what, gb[i], wb[i])
		}
		return
	}
	if gm, ok := got.(map[string]any); ok {
		wm, _ := want.(map[string]any)
		if len(gm) != len(wm) {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
		for k := range gm {
			assertEqual(t, what+"."+k, gm[k], wm[k])
		}
		return
	}
	if got != want {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func TestSnapshotRead(t *testing.T) {
	doc := raw(t, bson.D{{Key: "_id", Value: int64(42)}, {Key: "status", Value: "NEW"}})
	cases := []eventCase{{event: bson.D{{Key: "operationType", Value: "insert"}, {Key: "fullDocument", Value: doc}}}}
	enc := NewEncoder(typedSchema(t, cases), src)
	for _, marker := range []SnapshotMarker{SnapshotTrue, SnapshotLast} {
		ev, err := Snapshot(doc, []byte("shop"), []byte("orders"), marker)
		if err != nil {
			t.Fatal(err)
		}
		key, err := ev.AppendKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		assertEqual(t, "key", readNext(t, avro.MustParse(KeySchema(names)), key).(map[string]any)["id"], `{"$numberLong":"42"}`)
		data, err := enc.AppendValue(nil, &ev, 5)
		if err != nil {
			t.Fatal(err)
		}
		v := readNext(t, enc.Schema().Avro(), data).(map[string]any)
		assertEqual(t, "op", v["op"], "r")
		s := v["source"].(map[string]any)
		assertEqual(t, "snapshot", s["snapshot"], marker.String())
		assertEqual(t, "resume_token", s["resume_token"], nil)
		assertEqual(t, "after.status", union(t, union(t, v["after"]).(map[string]any)["status"]), "NEW")
	}
	if _, err := Snapshot(raw(t, bson.D{{Key: "x", Value: int32(1)}}), []byte("shop"), []byte("orders"), SnapshotTrue); err == nil {
		t.Error("snapshot of a document without _id accepted")
	}
}

func TestKeyIsExact(t *testing.T) {
	for _, tc := range []struct {
		id   any
		want string
	}{
		{int32(1), `{"$numberInt":"1"}`},
		{int64(1), `{"$numberLong":"1"}`},
		{1.0, `{"$numberDouble":"1.0"}`},
		{"1", `"1"`},
		{bson.D{{Key: "b", Value: int32(1)}, {Key: "a", Value: "x"}}, `{"b":{"$numberInt":"1"},"a":"x"}`},
		{bson.Binary{Subtype: 4, Data: lsidUUID}, `{"$binary":{"base64":"Tx4qO0xdTm+Km6y9zt/g8Q==","subType":"04"}}`},
		{bson.NewDateTimeFromTime(time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)), `{"$date":{"$numberLong":"-315619200000"}}`},
	} {
		ev, err := Snapshot(raw(t, bson.D{{Key: "_id", Value: tc.id}}), nil, nil, SnapshotTrue)
		if err != nil {
			t.Fatal(err)
		}
		key, err := ev.AppendKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := readNext(t, avro.MustParse(KeySchema(names)), key).(map[string]any)["id"]; got != tc.want {
			t.Errorf("key of %v: %s, want %s", tc.id, got, tc.want)
		}
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		event bson.D
		want  string
	}{
		{bson.D{{Key: "operationType", Value: int32(1)}}, "operationType"},
		{bson.D{{Key: "operationType", Value: "insert"}, {Key: "ns", Value: "shop.orders"}}, "ns"},
		{bson.D{{Key: "operationType", Value: "insert"}, {Key: "documentKey", Value: bson.D{{Key: "x", Value: int32(1)}}}}, "documentKey: no _id"},
		{bson.D{{Key: "operationType", Value: "update"}, {Key: "updateDescription", Value: bson.D{{Key: "removedFields", Value: "x"}}}}, "updateDescription: removedFields"},
		{bson.D{{Key: "ns", Value: bson.D{}}}, "ns"},
		{bson.D{{Key: "_id", Value: bson.D{}}}, "_id"},
		{bson.D{{Key: "clusterTime", Value: int64(1)}}, "clusterTime"},
		{bson.D{}, "no operationType"},
	} {
		if _, err := Parse(raw(t, tc.event)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error naming %q", tc.event, err, tc.want)
		}
	}
}

func TestNamesFor(t *testing.T) {
	for topic, want := range map[string]string{
		"mongorelay.shop.orders": "mongorelay.shop.orders",
		"my-app.2024.orders$x":   "my_app._2024.orders_x",
		"a..b":                   "a._.b",
	} {
		if got := NamesFor(topic).Namespace; got != want {
			t.Errorf("NamesFor(%q) = %q, want %q", topic, got, want)
		}
	}
}

func TestParseTypedValueSchema(t *testing.T) {
	typed := typedSchema(t, events(t))
	doc, err := ParseTypedValueSchema(typed.String(), docOpts)
	if err != nil {
		t.Fatal(err)
	}
	if !doc.Equal(typed.Document()) {
		t.Fatalf("document schema does not survive the envelope:\n%s\n%s", doc, typed.Document())
	}
}

// TestEvolveOnNotCovered walks the loop a task runs: encode, and on ErrNotCovered evolve the
// document schema, rebuild the envelope, encode again.
func TestEvolveOnNotCovered(t *testing.T) {
	first := parse(t, events(t)[0].event)
	doc, err := Evolve(nil, &first, docOpts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := TypedValueSchema(names, doc)
	if err != nil {
		t.Fatal(err)
	}
	enc := NewEncoder(s, src)
	newer := parse(t, bson.D{
		{Key: "_id", Value: bson.D{{Key: "_data", Value: token}}},
		{Key: "operationType", Value: "insert"},
		{Key: "ns", Value: bson.D{{Key: "db", Value: "shop"}, {Key: "coll", Value: "orders"}}},
		{Key: "documentKey", Value: bson.D{{Key: "_id", Value: int32(9)}}},
		{Key: "fullDocument", Value: bson.D{{Key: "_id", Value: int32(9)}, {Key: "coupon", Value: "SPRING"}}},
	})
	if _, err := enc.AppendValue(nil, &newer, 1); !errors.Is(err, avroschema.ErrNotCovered) {
		t.Fatalf("got %v, want ErrNotCovered", err)
	}
	if doc, err = Evolve(doc, &newer, docOpts); err != nil {
		t.Fatal(err)
	}
	if s, err = TypedValueSchema(names, doc); err != nil {
		t.Fatal(err)
	}
	if _, err := NewEncoder(s, src).AppendValue(nil, &newer, 1); err != nil {
		t.Fatal(err)
	}
	if err := avro.NewSchemaCompatibility().Compatible(s.Avro(), enc.Schema().Avro()); err != nil {
		t.Fatalf("evolved envelope cannot read the previous one: %v", err)
	}
}

func TestEncodeDoesNotAllocate(t *testing.T) {
	cases := events(t)
	typed := typedSchema(t, cases)
	jsonSchema, err := JSONValueSchema(names)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	for _, s := range []*ValueSchema{typed, jsonSchema} {
		enc := NewEncoder(s, src)
		for _, tc := range cases {
			if tc.kind != KindRecord {
				continue
			}
			rawEvent := raw(t, tc.event)
			allocs := testing.AllocsPerRun(100, func() {
				ev, err := Parse(rawEvent)
				if err != nil {
					t.Fatal(err)
				}
				if buf, err = ev.AppendKey(buf[:0]); err != nil {
					t.Fatal(err)
				}
				if buf, err = enc.AppendValue(buf, &ev, 1); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%s: %v allocations per event", tc.name, allocs)
			}
		}
	}
}

func TestJSONValue(t *testing.T) {
	cases := events(t)
	typed := typedSchema(t, cases)
	jsonSchema, err := JSONValueSchema(names)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	for _, s := range []*ValueSchema{typed, jsonSchema} {
		enc := NewEncoder(s, src)
		for _, tc := range cases {
			if tc.kind != KindRecord {
				continue
			}
			ev := parse(t, tc.event)
			out, err := enc.AppendJSONValue(nil, &ev, 7)
			if err != nil {
				t.Fatal(err)
			}
			var v map[string]any
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatalf("%s: invalid JSON %s: %v", tc.name, out, err)
			}
			assertEqual(t, "op", v["op"], tc.op)
			assertEqual(t, "ts_ms", v["ts_ms"], 7.0)
			src := v["source"].(map[string]any)
			assertEqual(t, "source.ts_ms", src["ts_ms"], float64(tc.sourceTsMs))
			assertEqual(t, "source.txn_id", src["txn_id"], tc.txn)
			assertEqual(t, "source.lsid", src["lsid"], tc.lsid)
			if tc.update {
				assertEqual(t, "updatedFields", v["updateDescription"].(map[string]any)["updatedFields"], tc.updatedFields)
			} else {
				assertEqual(t, "updateDescription", v["updateDescription"], nil)
			}
			if tc.after {
				want, err := bson.MarshalExtJSON(raw(t, tc.event).Lookup("fullDocument").Document(), true, false)
				if err != nil {
					t.Fatal(err)
				}
				got := v["after"]
				if s.Document() != nil {
					b, err := json.Marshal(got)
					if err != nil {
						t.Fatal(err)
					}
					var a, w any
					_ = json.Unmarshal(b, &a)
					_ = json.Unmarshal(want, &w)
					if !reflect.DeepEqual(a, w) {
						t.Errorf("%s: after %s, want %s", tc.name, b, want)
					}
				} else {
					assertEqual(t, "after", got, string(want))
				}
			}
			allocs := testing.AllocsPerRun(50, func() {
				if buf, err = enc.AppendJSONValue(buf[:0], &ev, 7); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%s: AppendJSONValue allocates %v times", tc.name, allocs)
			}
		}
	}
}
