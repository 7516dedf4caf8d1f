package avroschema

import (
	"reflect"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/linkedin/goavro/v2"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// orderDocument is a realistic ~1 KB document: an e-commerce order with nested customer data,
// line items, decimals, dates, ObjectIds and a few maps.
func orderDocument(t testing.TB) bson.Raw {
	id := oid(t, "65f1a2b3c4d5e6f708192a3b")
	item := func(sku string, qty int32, price string) bson.D {
		return bson.D{
			{Key: "sku", Value: sku},
			{Key: "name", Value: "Product " + sku + " with a reasonably descriptive name"},
			{Key: "qty", Value: qty},
			{Key: "price", Value: dec128(t, price)},
			{Key: "tags", Value: bson.A{"outdoor", "summer", "sale"}},
			{Key: "warehouse", Value: bson.D{{Key: "code", Value: "OSL-2"}, {Key: "aisle", Value: int32(14)}}},
		}
	}
	return raw(t, bson.D{
		{Key: "_id", Value: id},
		{Key: "orderNo", Value: "2024-000123456"},
		{Key: "status", Value: "SHIPPED"},
		{Key: "createdAt", Value: bson.NewDateTimeFromTime(time.Date(2024, 3, 13, 10, 0, 0, 0, time.UTC))},
		{Key: "updatedAt", Value: bson.NewDateTimeFromTime(time.Date(2024, 3, 14, 8, 30, 0, 0, time.UTC))},
		{Key: "customer", Value: bson.D{
			{Key: "id", Value: id},
			{Key: "name", Value: "Kari Nordmann"},
			{Key: "email", Value: "kari.nordmann@example.com"},
			{Key: "vip", Value: true},
			{Key: "address", Value: bson.D{
				{Key: "street", Value: "Karl Johans gate 1"},
				{Key: "city", Value: "Oslo"},
				{Key: "zip", Value: "0154"},
				{Key: "country", Value: "NO"},
				{Key: "geo", Value: bson.A{10.7389, 59.9133}},
			}},
		}},
		{Key: "items", Value: bson.A{item("A-100", 2, "199.90"), item("B-220", 1, "1299.00"), item("C-310", 5, "9.95")}},
		{Key: "total", Value: dec128(t, "1748.55")},
		{Key: "currency", Value: "NOK"},
		{Key: "weightKg", Value: 4.25},
		{Key: "version", Value: int64(7)},
		{Key: "flags", Value: bson.D{{Key: "gift", Value: false}, {Key: "express", Value: true}}},
		{Key: "history", Value: bson.D{
			{Key: "2024-03-13", Value: "created"},
			{Key: "2024-03-14", Value: "shipped"},
		}},
		{Key: "notes", Value: "Leave the parcel at the reception if nobody answers the door."},
	})
}

func orderEncoder(t testing.TB) (*Encoder, bson.Raw) {
	doc := orderDocument(t)
	s, err := Infer(doc, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	return NewEncoder(s), doc
}

func TestEncodeDoesNotAllocate(t *testing.T) {
	enc, doc := orderEncoder(t)
	buf := make([]byte, 0, 2048)
	allocs := testing.AllocsPerRun(200, func() {
		var err error
		if buf, err = enc.Append(buf[:0], doc); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Append allocates %v times per document", allocs)
	}
	// Depth overflow (Extended JSON), maps, every BSON type: still nothing allocated.
	wide := raw(t, bson.D{{Key: "deep", Value: nested(40)}, {Key: "all", Value: everyTypeDoc(t)}})
	s, err := Infer(wide, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	enc = NewEncoder(s)
	allocs = testing.AllocsPerRun(200, func() {
		var err error
		if buf, err = enc.Append(buf[:0], wide); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Append allocates %v times per document of every type", allocs)
	}
}

func everyTypeDoc(t testing.TB) bson.D {
	someOID := oid(t, "5f1a2b3c4d5e6f7081920a1b")
	return bson.D{
		{Key: "d", Value: 1.5}, {Key: "s", Value: "x"}, {Key: "o", Value: someOID}, {Key: "b", Value: true},
		{Key: "dt", Value: bson.DateTime(-1)}, {Key: "n", Value: nil}, {Key: "u", Value: bson.Undefined{}},
		{Key: "re", Value: bson.Regex{Pattern: "a", Options: "i"}}, {Key: "dbp", Value: bson.DBPointer{DB: "a.b", Pointer: someOID}},
		{Key: "js", Value: bson.JavaScript("1")}, {Key: "sym", Value: bson.Symbol("s")},
		{Key: "jss", Value: bson.CodeWithScope{Code: "x", Scope: bson.D{{Key: "x", Value: int32(1)}}}},
		{Key: "i", Value: int32(1)}, {Key: "ts", Value: bson.Timestamp{T: 1, I: 2}}, {Key: "l", Value: int64(3)},
		{Key: "dec", Value: dec128(t, "-1.5E+300")}, {Key: "min", Value: bson.MinKey{}}, {Key: "max", Value: bson.MaxKey{}},
		{Key: "bin", Value: bson.Binary{Data: []byte{1}}}, {Key: "bin4", Value: bson.Binary{Subtype: 4, Data: []byte{1}}},
		{Key: "arr", Value: bson.A{int32(1), "x"}}, {Key: "m", Value: bson.D{{Key: "1", Value: int32(1)}}},
	}
}

// TestOtherEncodersAgree encodes the benchmark document with goavro and hamba from the native
// form hamba decodes. Their bytes may legitimately differ from ours (Go map order for Avro maps,
// hamba's block byte sizes), so they must decode to the same value.
func TestOtherEncodersAgree(t *testing.T) {
	enc, doc := orderEncoder(t)
	ours, err := enc.Append(nil, doc)
	if err != nil {
		t.Fatal(err)
	}
	native := decode(t, enc.Schema().Avro(), ours)
	codec, err := goavro.NewCodec(enc.Schema().String())
	if err != nil {
		t.Fatalf("goavro rejects our schema: %v", err)
	}
	theirs, err := codec.BinaryFromNative(nil, native)
	if err != nil {
		t.Fatalf("goavro: %v", err)
	}
	if got := decode(t, enc.Schema().Avro(), theirs); !reflect.DeepEqual(got, native) {
		t.Errorf("goavro encodes differently:\nours   %x\ngoavro %x", ours, theirs)
	}
	hamba, err := avro.Marshal(enc.Schema().Avro(), native)
	if err != nil {
		t.Fatalf("hamba: %v", err)
	}
	if got := decode(t, enc.Schema().Avro(), hamba); !reflect.DeepEqual(got, native) {
		t.Errorf("hamba encodes differently:\nours  %x\nhamba %x", ours, hamba)
	}
}

func BenchmarkInfer(b *testing.B) {
	doc := orderDocument(b)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := Infer(doc, testOpts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMerge(b *testing.B) {
	latest, err := Infer(orderDocument(b), testOpts)
	if err != nil {
		b.Fatal(err)
	}
	shape, err := Infer(raw(b, bson.D{{Key: "status", Value: int32(3)}, {Key: "coupon", Value: "SPRING"}}), testOpts)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Merge(latest, shape); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncode is the hot path: raw BSON to Avro binary in a reused buffer.
func BenchmarkEncode(b *testing.B) {
	enc, doc := orderEncoder(b)
	buf := make([]byte, 0, 2048)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		var err error
		if buf, err = enc.Append(buf[:0], doc); err != nil {
			b.Fatal(err)
		}
	}
}

// The peers start from the record already in Go's native form (hamba's generic decoding of
// our output), so they skip the BSON decoding that BenchmarkEncode includes.
func BenchmarkGoavroNative(b *testing.B) {
	enc, doc := orderEncoder(b)
	ours, err := enc.Append(nil, doc)
	if err != nil {
		b.Fatal(err)
	}
	native := decode(b, enc.Schema().Avro(), ours)
	codec, err := goavro.NewCodec(enc.Schema().String())
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 2048)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if buf, err = codec.BinaryFromNative(buf[:0], native); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHambaMarshalMap(b *testing.B) {
	enc, doc := orderEncoder(b)
	ours, err := enc.Append(nil, doc)
	if err != nil {
		b.Fatal(err)
	}
	native := decode(b, enc.Schema().Avro(), ours)
	schema := enc.Schema().Avro()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := avro.Marshal(schema, native); err != nil {
			b.Fatal(err)
		}
	}
}
