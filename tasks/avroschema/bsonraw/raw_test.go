package bsonraw

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func mustMarshal(t testing.TB, v any) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dec(t testing.TB, s string) bson.Decimal128 {
	t.Helper()
	d, err := bson.ParseDecimal128(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// everyType holds one value of every BSON type, with the awkward cases.
func everyType(t testing.TB) bson.D {
	oid, _ := bson.ObjectIDFromHex("5f1a2b3c4d5e6f7081920a1b")
	return bson.D{
		{Key: "double", Value: 1.5},
		{Key: "integralDouble", Value: 3.0},
		{Key: "bigDouble", Value: 1e300},
		{Key: "negZero", Value: math.Copysign(0, -1)},
		{Key: "nan", Value: math.NaN()},
		{Key: "inf", Value: math.Inf(1)},
		{Key: "ninf", Value: math.Inf(-1)},
		{Key: "string", Value: "héllo \"q\" \\ \n\t\x01 \u2028 <&>"},
		{Key: "doc", Value: bson.D{{Key: "a", Value: int32(1)}, {Key: "b", Value: bson.D{}}}},
		{Key: "array", Value: bson.A{int32(1), "x", bson.D{{Key: "y", Value: true}}, bson.A{}}},
		{Key: "bin0", Value: bson.Binary{Subtype: 0, Data: []byte{0, 1, 2, 255}}},
		{Key: "bin2", Value: bson.Binary{Subtype: 2, Data: []byte{9, 8, 7}}},
		{Key: "bin4", Value: bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{0xab}, 16)}},
		{Key: "bin80", Value: bson.Binary{Subtype: 0x80, Data: []byte("user")}},
		{Key: "undefined", Value: bson.Undefined{}},
		{Key: "oid", Value: oid},
		{Key: "true", Value: true},
		{Key: "false", Value: false},
		{Key: "date", Value: bson.DateTime(1700000000123)},
		{Key: "oldDate", Value: bson.DateTime(-86400000 * 365)},
		{Key: "null", Value: nil},
		{Key: "regex", Value: bson.Regex{Pattern: `^a"b\d$`, Options: "xmi"}},
		{Key: "dbptr", Value: bson.DBPointer{DB: "db.coll", Pointer: oid}},
		{Key: "js", Value: bson.JavaScript("function(){return 1}")},
		{Key: "symbol", Value: bson.Symbol("sym")},
		{Key: "jsScope", Value: bson.CodeWithScope{Code: "x", Scope: bson.D{{Key: "x", Value: int32(1)}}}},
		{Key: "int32", Value: int32(math.MinInt32)},
		{Key: "ts", Value: bson.Timestamp{T: math.MaxUint32, I: 7}},
		{Key: "int64min", Value: int64(math.MinInt64)},
		{Key: "int64max", Value: int64(math.MaxInt64)},
		{Key: "dec", Value: dec(t, "1.50")},
		{Key: "decNaN", Value: dec(t, "NaN")},
		{Key: "decInf", Value: dec(t, "-Infinity")},
		{Key: "decNegZero", Value: dec(t, "-0")},
		{Key: "decBigExp", Value: dec(t, "1.234E+6144")},
		{Key: "decSmallExp", Value: dec(t, "-1E-6176")},
		{Key: "decSmall", Value: dec(t, "0.000001234")},
		{Key: "decMaxDigits", Value: dec(t, "9999999999999999999999999999999999")},
		{Key: "minKey", Value: bson.MinKey{}},
		{Key: "maxKey", Value: bson.MaxKey{}},
		{Key: "a.b", Value: time.Duration(0).Milliseconds()},
	}
}

func TestAppendExtJSONMatchesDriver(t *testing.T) {
	cases := []struct {
		name string
		doc  bson.Raw
	}{
		{"empty", mustMarshal(t, bson.D{})},
		{"every type", mustMarshal(t, everyType(t))},
		{"nested", mustMarshal(t, bson.D{{Key: "a", Value: bson.A{bson.A{bson.D{{Key: "b", Value: bson.A{}}}}}}})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, err := bson.MarshalExtJSON(tc.doc, true, false)
			if err != nil {
				t.Fatal(err)
			}
			got, err := AppendExtJSON(nil, tc.doc)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestAppendDecimal128MatchesDriver(t *testing.T) {
	for _, s := range []string{
		"0", "-0", "0.0", "0E+3", "0E-6176", "1", "-1", "1.50", "123.456", "1E+3", "1.050E+3",
		"0.000001", "0.0000001", "1.23E-7", "9.999999999999999999999999999999999E+6144",
		"1E-6176", "NaN", "Infinity", "-Infinity", "12345678901234567890123456789012.34",
	} {
		d := dec(t, s)
		h, l := d.GetBytes()
		var v [16]byte
		putLE(v[:8], l)
		putLE(v[8:], h)
		if got, want := string(AppendDecimal128(nil, v[:])), d.String(); got != want {
			t.Errorf("%s: got %s, want %s", s, got, want)
		}
	}
}

func putLE(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}

func FuzzDecimal128(f *testing.F) {
	f.Add(uint64(0), uint64(0x3040000000000000))
	f.Add(uint64(1234), uint64(0x3040000000000000))
	f.Add(uint64(math.MaxUint64), uint64(0x6c10000000000000))
	f.Fuzz(func(t *testing.T, lo, hi uint64) {
		var v [16]byte
		putLE(v[:8], lo)
		putLE(v[8:], hi)
		if got, want := string(AppendDecimal128(nil, v[:])), bson.NewDecimal128(hi, lo).String(); got != want {
			t.Fatalf("%x %x: got %s, want %s", hi, lo, got, want)
		}
	})
}

func TestMalformed(t *testing.T) {
	good := mustMarshal(t, bson.D{{Key: "s", Value: "abc"}, {Key: "d", Value: bson.D{{Key: "x", Value: int32(1)}}}})
	for cut := 0; cut < len(good); cut++ {
		if _, err := AppendExtJSON(nil, good[:cut]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("cut at %d: got %v, want ErrMalformed", cut, err)
		}
	}
	bad := bytes.Clone(good)
	bad[4+1+2] = 0xff // string length far too big
	if _, err := AppendExtJSON(nil, bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("got %v, want ErrMalformed", err)
	}
}

func TestAppendExtJSONAllocs(t *testing.T) {
	doc := mustMarshal(t, everyType(t))
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if buf, err = AppendExtJSON(buf[:0], doc); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("AppendExtJSON allocated %v times per run", allocs)
	}
}

func FuzzAppendExtJSON(f *testing.F) {
	f.Add([]byte(mustMarshal(f, everyType(f))))
	f.Add([]byte(mustMarshal(f, bson.D{{Key: "a", Value: int32(1)}})))
	f.Fuzz(func(t *testing.T, doc []byte) {
		if len(doc) >= 5 {
			// Keep the outer length right so that mutations reach the content.
			binary.LittleEndian.PutUint32(doc, uint32(len(doc)))
			doc[len(doc)-1] = 0
		}
		got, err := AppendExtJSON(nil, doc)
		if err != nil || bson.Raw(doc).Validate() != nil {
			return
		}
		want, err := bson.MarshalExtJSON(bson.Raw(doc), true, false)
		if err != nil || bytes.Contains(doc, []byte{0x0c}) {
			return // the driver rejects some documents we accept, and does not escape DBPointer namespaces
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	})
}
