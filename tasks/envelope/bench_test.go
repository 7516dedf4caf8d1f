package envelope

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// updateEvent is a typical update with updateLookup: a ~1 KB order as fullDocument.
func updateEvent(b *testing.B) bson.Raw {
	id := mustOID(b, "65f1a2b3c4d5e6f708192a3b")
	item := func(sku string) bson.D {
		return bson.D{
			{Key: "sku", Value: sku},
			{Key: "name", Value: "Product " + sku + " with a reasonably descriptive name"},
			{Key: "qty", Value: int32(2)},
			{Key: "price", Value: bson.NewDecimal128(0x303c000000000000, 19990)},
			{Key: "tags", Value: bson.A{"outdoor", "summer", "sale"}},
		}
	}
	order := bson.D{
		{Key: "_id", Value: id},
		{Key: "orderNo", Value: "2024-000123456"},
		{Key: "status", Value: "SHIPPED"},
		{Key: "createdAt", Value: wall},
		{Key: "customer", Value: bson.D{
			{Key: "id", Value: id},
			{Key: "name", Value: "Kari Nordmann"},
			{Key: "email", Value: "kari.nordmann@example.com"},
			{Key: "address", Value: bson.D{{Key: "street", Value: "Karl Johans gate 1"}, {Key: "city", Value: "Oslo"}, {Key: "zip", Value: "0154"}, {Key: "geo", Value: bson.A{10.7389, 59.9133}}}},
		}},
		{Key: "items", Value: bson.A{item("A-100"), item("B-220"), item("C-310")}},
		{Key: "total", Value: bson.NewDecimal128(0x303c000000000000, 174855)},
		{Key: "version", Value: int64(7)},
		{Key: "notes", Value: "Leave the parcel at the reception if nobody answers the door."},
	}
	return raw(b, bson.D{
		{Key: "_id", Value: bson.D{{Key: "_data", Value: token}}},
		{Key: "operationType", Value: "update"},
		{Key: "clusterTime", Value: bson.Timestamp{T: 1710324000, I: 3}},
		{Key: "wallTime", Value: wall},
		{Key: "fullDocument", Value: order},
		{Key: "ns", Value: bson.D{{Key: "db", Value: "shop"}, {Key: "coll", Value: "orders"}}},
		{Key: "documentKey", Value: bson.D{{Key: "_id", Value: id}}},
		{Key: "updateDescription", Value: bson.D{
			{Key: "updatedFields", Value: bson.D{{Key: "status", Value: "SHIPPED"}, {Key: "version", Value: int64(7)}}},
			{Key: "removedFields", Value: bson.A{}},
			{Key: "truncatedArrays", Value: bson.A{}},
		}},
	})
}

func benchmarkEvent(b *testing.B, typed bool) {
	rawEvent := updateEvent(b)
	ev, err := Parse(rawEvent)
	if err != nil {
		b.Fatal(err)
	}
	var s *ValueSchema
	if typed {
		doc, err := Evolve(nil, &ev, docOpts)
		if err != nil {
			b.Fatal(err)
		}
		s, err = TypedValueSchema(names, doc)
	} else {
		s, err = JSONValueSchema(names)
	}
	if err != nil {
		b.Fatal(err)
	}
	enc := NewEncoder(s, src)
	key := make([]byte, 0, 64)
	value := make([]byte, 0, 4096)
	b.SetBytes(int64(len(rawEvent)))
	for b.Loop() {
		ev, err := Parse(rawEvent)
		if err != nil {
			b.Fatal(err)
		}
		if key, err = ev.AppendKey(key[:0]); err != nil {
			b.Fatal(err)
		}
		if value, err = enc.AppendValue(value[:0], &ev, 1710324001000); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEventTyped is the hot path of document.mode=typed: raw change event to Avro key and
// envelope value.
func BenchmarkEventTyped(b *testing.B) { benchmarkEvent(b, true) }

// BenchmarkEventJSON is the same in document.mode=json.
func BenchmarkEventJSON(b *testing.B) { benchmarkEvent(b, false) }

// BenchmarkEventJSONValue is value.format=json: raw change event to a JSON envelope.
func BenchmarkEventJSONValue(b *testing.B) {
	rawEvent := updateEvent(b)
	s, err := JSONValueSchema(names)
	if err != nil {
		b.Fatal(err)
	}
	enc := NewEncoder(s, src)
	value := make([]byte, 0, 8192)
	b.SetBytes(int64(len(rawEvent)))
	for b.Loop() {
		ev, err := Parse(rawEvent)
		if err != nil {
			b.Fatal(err)
		}
		if value, err = enc.AppendJSONValue(value[:0], &ev, 1710324001000); err != nil {
			b.Fatal(err)
		}
	}
}

// benchmarkFormat is the hot path of another shape or format: raw change event to the value
// write makes of it.
func benchmarkFormat(b *testing.B, write func(enc *Encoder) func([]byte, *Event, int64) ([]byte, error), enc func(ev *Event) *Encoder) {
	rawEvent := updateEvent(b)
	ev, err := Parse(rawEvent)
	if err != nil {
		b.Fatal(err)
	}
	appendValue := write(enc(&ev))
	value := make([]byte, 0, 16384)
	b.SetBytes(int64(len(rawEvent)))
	// Parsed into one Event declared outside the loop: handed to a func value, an Event
	// declared in the loop would move to the heap, which would measure the benchmark's loop
	// rather than the encoder.
	for b.Loop() {
		if ev, err = Parse(rawEvent); err != nil {
			b.Fatal(err)
		}
		if value, err = appendValue(value[:0], &ev, 1710324001000); err != nil {
			b.Fatal(err)
		}
	}
}

func jsonEncoder(objects bool) func(*Event) *Encoder {
	return func(*Event) *Encoder { return NewJSONEncoder(names, src, objects, nil) }
}

// BenchmarkEventDocument is output.shape=document in typed Avro, with two added fields.
func BenchmarkEventDocument(b *testing.B) {
	benchmarkFormat(b, func(enc *Encoder) func([]byte, *Event, int64) ([]byte, error) { return enc.AppendDocument }, func(ev *Event) *Encoder {
		doc, err := Evolve(nil, ev, docOpts)
		if err != nil {
			b.Fatal(err)
		}
		fields, err := ParseAddedFields([]string{"op", "source.ts_ms"})
		if err != nil {
			b.Fatal(err)
		}
		s, err := DocumentValueSchema(names, doc, fields)
		if err != nil {
			b.Fatal(err)
		}
		return NewEncoder(s, src)
	})
}

// BenchmarkEventJSONDocument is output.shape=document with value.format=json.
func BenchmarkEventJSONDocument(b *testing.B) {
	benchmarkFormat(b, func(enc *Encoder) func([]byte, *Event, int64) ([]byte, error) { return enc.AppendJSONDocument }, jsonEncoder(true))
}

// BenchmarkEventConnectValue is value.format=json_schema: the envelope with its schema.
func BenchmarkEventConnectValue(b *testing.B) {
	benchmarkFormat(b, func(enc *Encoder) func([]byte, *Event, int64) ([]byte, error) { return enc.AppendConnectValue }, jsonEncoder(false))
}

// BenchmarkEventConnectDocument is output.shape=document with value.format=json_schema: the
// document's schema derived per record.
func BenchmarkEventConnectDocument(b *testing.B) {
	benchmarkFormat(b, func(enc *Encoder) func([]byte, *Event, int64) ([]byte, error) { return enc.AppendConnectDocument }, jsonEncoder(true))
}
