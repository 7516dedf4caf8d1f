package shard

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

func TestServerStageGolden(t *testing.T) {
	tests := []struct {
		i, n int
		want string
	}{
		{1, 4, `{"$match":{"$expr":{"$or":[` +
			`{"$eq":[{"$type":"$documentKey._id"},"missing"]},` +
			`{"$eq":[{"$mod":[{"$add":[{"$mod":[{"$toHashedIndexKey":"$documentKey._id"},{"$numberLong":"4"}]},{"$numberLong":"4"}]},{"$numberLong":"4"}]},{"$numberLong":"1"}]}` +
			`]}}}`},
		{0, 1, `{"$match":{"$expr":{"$or":[` +
			`{"$eq":[{"$type":"$documentKey._id"},"missing"]},` +
			`{"$eq":[{"$mod":[{"$add":[{"$mod":[{"$toHashedIndexKey":"$documentKey._id"},{"$numberLong":"1"}]},{"$numberLong":"1"}]},{"$numberLong":"1"}]},{"$numberLong":"0"}]}` +
			`]}}}`},
	}
	for _, tt := range tests {
		stage := ServerStage(tt.i, tt.n)
		got, err := bson.MarshalExtJSON(stage, true, false)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("ServerStage(%d, %d) =\n%s\nwant\n%s", tt.i, tt.n, got, tt.want)
		}
		// The bytes sent to the server are those of the golden document.
		var golden bson.D
		if err := bson.UnmarshalExtJSON([]byte(tt.want), true, &golden); err != nil {
			t.Fatal(err)
		}
		wantBytes, err := bson.Marshal(golden)
		if err != nil {
			t.Fatal(err)
		}
		gotBytes, err := bson.Marshal(stage)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gotBytes, wantBytes) {
			t.Errorf("ServerStage(%d, %d) bytes %x, golden %x", tt.i, tt.n, gotBytes, wantBytes)
		}
	}
}

// missing is what a field path evaluates to when the field is absent.
type missing struct{}

// evalServer evaluates ServerStage's $match on an event with the aggregation semantics the
// stage relies on: $mod as C++ % on longs (sign of the dividend, like Go's %), $add on longs
// (an overflow would turn the server's sum into a double: reported as a failure), $type of a
// missing path is "missing", $toHashedIndexKey of a missing value hashes null. hash stands in
// for $toHashedIndexKey so that any hash, negative ones included, can be tried.
func evalServer(t *testing.T, stage bson.D, event bson.Raw, hash func(bson.RawValue) int64) bool {
	t.Helper()
	if len(stage) != 1 || stage[0].Key != "$match" {
		t.Fatalf("not a $match stage: %v", stage)
	}
	match := stage[0].Value.(bson.D)
	if len(match) != 1 || match[0].Key != "$expr" {
		t.Fatalf("not a $match on $expr: %v", match)
	}
	var eval func(x any) any
	eval = func(x any) any {
		switch x := x.(type) {
		case string:
			if !strings.HasPrefix(x, "$") {
				return x
			}
			v, err := event.LookupErr(strings.Split(x[1:], ".")...)
			if err != nil {
				return missing{}
			}
			return v
		case int64:
			return x
		case bson.D:
			if len(x) != 1 {
				t.Fatalf("operator document with %d fields: %v", len(x), x)
			}
			name, arg := x[0].Key, x[0].Value
			args := func() []any {
				a, ok := arg.(bson.A)
				if !ok {
					t.Fatalf("%s: arguments %T, want an array", name, arg)
				}
				out := make([]any, len(a))
				for i := range a {
					out[i] = eval(a[i])
				}
				return out
			}
			longs := func() (int64, int64) {
				a := args()
				l, lok := a[0].(int64)
				r, rok := a[1].(int64)
				if len(a) != 2 || !lok || !rok {
					t.Fatalf("%s on %T, %T: want two longs", name, a[0], a[1])
				}
				return l, r
			}
			switch name {
			case "$or":
				for _, v := range args() {
					if v == true {
						return true
					}
				}
				return false
			case "$eq":
				a := args()
				return a[0] == a[1]
			case "$type":
				if _, ok := eval(arg).(missing); ok {
					return "missing"
				}
				return "present"
			case "$toHashedIndexKey":
				v := eval(arg)
				if _, ok := v.(missing); ok {
					v = bson.RawValue{Type: bson.TypeNull}
				}
				return hash(v.(bson.RawValue))
			case "$mod":
				l, r := longs()
				return l % r
			case "$add":
				l, r := longs()
				sum := l + r
				if (sum > l) != (r > 0) {
					t.Fatalf("$add overflows: %d + %d", l, r)
				}
				return sum
			}
			t.Fatalf("operator %s not modelled", name)
		}
		t.Fatalf("expression %T not modelled", x)
		return nil
	}
	return eval(match[0].Value) == true
}

func event(t testing.TB, fields ...bson.E) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(bson.D(fields))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func insertOf(t testing.TB, id any) bson.Raw {
	t.Helper()
	return event(t,
		bson.E{Key: "_id", Value: bson.D{{Key: "_data", Value: "8264..."}}},
		bson.E{Key: "operationType", Value: "insert"},
		bson.E{Key: "ns", Value: bson.D{{Key: "db", Value: "shop"}, {Key: "coll", Value: "orders"}}},
		bson.E{Key: "documentKey", Value: bson.D{{Key: "_id", Value: id}}},
	)
}

// The stage's arithmetic equals Of for hashes all over the int64 range, negative ones and both
// ends included, for shard counts small and large.
func TestServerStageArithmeticMatchesOf(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	hashes := []int64{0, 1, -1, 2, -2, math.MaxInt64, math.MinInt64, math.MinInt64 + 1, math.MaxInt64 - 1,
		-944302157085130861, 5902408780260971510}
	for range 300 {
		hashes = append(hashes, int64(rng.Uint64()))
	}
	ev := insertOf(t, int32(1))
	for _, n := range []int{1, 2, 3, 4, 7, 16, 100, 1024, 65537, MaxShards} {
		for _, h := range hashes {
			kept := 0
			for i := range min(n, 8) {
				keep := evalServer(t, ServerStage(i, n), ev, func(bson.RawValue) int64 { return h })
				if keep != (Of(h, n) == i) {
					t.Fatalf("n=%d h=%d: stage for shard %d keeps=%v, Of=%d", n, h, i, keep, Of(h, n))
				}
				if keep {
					kept++
				}
			}
			if s := Of(h, n); s < 8 && kept != 1 || s >= 8 && kept != 0 {
				t.Fatalf("n=%d h=%d: %d of the first shards kept it, Of=%d", n, h, kept, s)
			}
			// And the shard Of picks keeps it.
			if !evalServer(t, ServerStage(Of(h, n), n), ev, func(bson.RawValue) int64 { return h }) {
				t.Fatalf("n=%d h=%d: shard %d refuses it", n, h, Of(h, n))
			}
		}
	}
}

// Server and client filters agree event by event, for _ids of many types, and every event with
// an _id lands on exactly one shard while events without one reach them all.
func TestClientFilterAgreesWithServerStage(t *testing.T) {
	events := map[string]bson.Raw{
		"drop":                    event(t, bson.E{Key: "operationType", Value: "drop"}, bson.E{Key: "ns", Value: bson.D{{Key: "db", Value: "shop"}}}),
		"invalidate":              event(t, bson.E{Key: "_id", Value: bson.D{{Key: "_data", Value: "82"}}}, bson.E{Key: "operationType", Value: "invalidate"}),
		"documentKey not a doc":   event(t, bson.E{Key: "documentKey", Value: "x"}),
		"documentKey without _id": event(t, bson.E{Key: "documentKey", Value: bson.D{{Key: "a", Value: 1}}}),
		"sharded documentKey":     event(t, bson.E{Key: "documentKey", Value: bson.D{{Key: "region", Value: "eu"}, {Key: "_id", Value: int64(77)}}}),
		"documentKey first":       event(t, bson.E{Key: "documentKey", Value: bson.D{{Key: "_id", Value: "first"}}}, bson.E{Key: "operationType", Value: "delete"}),
	}
	ids := []any{int32(42), int64(-5), 3.75, -1e300, math.NaN(), dec(t, "12.5"), "abc", "", bson.Symbol("s"),
		bson.D{{Key: "tenant", Value: "acme"}, {Key: "n", Value: int32(7)}}, bson.D{},
		bson.Binary{Subtype: 4, Data: make([]byte, 16)}, bson.DateTime(1700000000000), bson.Timestamp{T: 1, I: 2},
		true, bson.Null{}, bson.MinKey{}, bson.MaxKey{}, bson.Regex{Pattern: "a"}, bson.JavaScript("f"),
		bson.CodeWithScope{Code: "f", Scope: bson.D{{Key: "x", Value: 1}}}, bson.DBPointer{DB: "d"}, bson.Undefined{}}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		var id bson.ObjectID
		for i := range id {
			id[i] = byte(rng.Uint32())
		}
		ids = append(ids, id)
	}
	for k, id := range ids {
		events[fmt.Sprintf("insert %d %T", k, id)] = insertOf(t, id)
	}
	hash := func(v bson.RawValue) int64 {
		h, err := Hash(v)
		if err != nil {
			t.Fatalf("hash: %v", err)
		}
		return h
	}
	for _, n := range []int{1, 3, 16} {
		filters := make([]func(bson.Raw) (bool, error), n)
		for i := range filters {
			filters[i] = ClientFilter(i, n)
		}
		for name, ev := range events {
			_, hasID, err := documentKeyID(ev)
			if err != nil {
				t.Fatal(err)
			}
			kept := 0
			for i, keep := range filters {
				client, err := keep(ev)
				if err != nil {
					t.Fatalf("%s: shard %d-of-%d: %v", name, i, n, err)
				}
				server := evalServer(t, ServerStage(i, n), ev, hash)
				if client != server {
					t.Errorf("%s: shard %d-of-%d: client keeps=%v, server keeps=%v", name, i, n, client, server)
				}
				if client {
					kept++
				}
			}
			if hasID && kept != 1 || !hasID && kept != n {
				t.Errorf("%s: kept by %d of %d shards (has _id: %v)", name, kept, n, hasID)
			}
		}
	}
}

func TestClientFilterRefusesMalformedEvents(t *testing.T) {
	good := insertOf(t, "abc")
	truncated := good[:len(good)-3]
	badLength := append(bson.Raw{}, good...)
	badLength[0]++
	badID := event(t, bson.E{Key: "documentKey", Value: bson.D{{Key: "_id", Value: bson.A{1, 2}}}})
	for name, ev := range map[string]bson.Raw{
		"empty":     nil,
		"truncated": truncated,
		"length":    badLength,
		"array _id": badID,
	} {
		keep, err := ClientFilter(0, 2)(ev)
		if err == nil {
			t.Errorf("%s: keep=%v, want an error", name, keep)
		} else if !strings.HasPrefix(err.Error(), "shard filter 0-of-2: ") {
			t.Errorf("%s: error %q does not name the shard", name, err)
		}
	}
}

func TestIsUnsupported(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"unknown expression (4.2.23-, mongo-java-server)", mongo.CommandError{Code: 168, Name: "InvalidPipelineOperator", Message: "Unrecognized expression '$toHashedIndexKey'"}, true},
		{"wrapped", fmt.Errorf("open change stream on shop.orders: %w", mongo.CommandError{Code: 168, Message: "Unrecognized expression '$toHashedIndexKey'"}), true},
		{"pre-3.6 server", mongo.CommandError{Code: 15999, Message: "invalid operator '$toHashedIndexKey'"}, true},
		{"feature compatibility version", mongo.CommandError{Code: 238, Name: "QueryFeatureNotAllowed", Message: "$toHashedIndexKey is not allowed in the current feature compatibility version"}, true},
		{"stable API strict", mongo.CommandError{Code: 323, Name: "APIStrictError", Message: "$toHashedIndexKey is not allowed with 'apiStrict: true' in API Version 1"}, true},
		{"user's unknown operator", mongo.CommandError{Code: 168, Message: "Unrecognized expression '$frobnicate'"}, false},
		{"other error naming it", mongo.CommandError{Code: 2, Name: "BadValue", Message: "$toHashedIndexKey: bad"}, false},
		{"history lost", mongo.CommandError{Code: 286, Name: "ChangeStreamHistoryLost"}, false},
		{"not a command error", errors.New("Unrecognized expression '$toHashedIndexKey'"), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		if got := IsUnsupported(tt.err); got != tt.want {
			t.Errorf("%s: IsUnsupported = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func BenchmarkClientFilter(b *testing.B) {
	for _, bm := range []struct {
		name string
		ev   bson.Raw
	}{
		{"ObjectID", insertOf(b, oid(b, "5b2be413c06d924ab26ff9ca"))},
		{"String", insertOf(b, "customer-0000001234")},
		{"NoDocumentKey", event(b, bson.E{Key: "operationType", Value: "drop"})},
	} {
		keep := ClientFilter(1, 4)
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := keep(bm.ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzClientFilter: whatever bytes arrive as an event, the filter answers or errs, never panics.
func FuzzClientFilter(f *testing.F) {
	f.Add([]byte(insertOf(f, "abc")))
	f.Add([]byte(insertOf(f, bson.D{{Key: "a", Value: bson.A{1}}})))
	f.Add([]byte(event(f, bson.E{Key: "operationType", Value: "drop"})))
	keep := ClientFilter(0, 3)
	f.Fuzz(func(t *testing.T, ev []byte) {
		_, _ = keep(ev)
	})
}
