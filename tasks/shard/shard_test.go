package shard

import (
	"math"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestOf(t *testing.T) {
	tests := []struct {
		h    int64
		n    int
		want int
	}{
		{0, 1, 0},
		{math.MaxInt64, 1, 0},
		{math.MinInt64, 1, 0},
		{7, 4, 3},
		{-7, 4, 1}, // -7 mod 4 is -3 (sign of the dividend), -3 + 4 = 1
		{-8, 4, 0},
		{-1, 4, 3},
		{math.MaxInt64, 4, 3},
		{math.MinInt64, 4, 0},
		{math.MinInt64, 3, 1}, // -2^63 = -3074457345618258602*3 - 2, so -2 + 3
		{math.MinInt64 + 1, 3, 2},
		{-944302157085130861, 16, 3}, // hash of 42
		{-944302157085130861, 7, 4},
		{5902408780260971510, 16, 6},              // hash of 1
		{math.MinInt64, MaxShards, MaxShards - 2}, // 2^31 ≡ 1, so 2^63 ≡ 2
		{math.MaxInt64, MaxShards, 1},
	}
	for _, tt := range tests {
		if got := Of(tt.h, tt.n); got != tt.want {
			t.Errorf("Of(%d, %d) = %d, want %d", tt.h, tt.n, got, tt.want)
		}
		// The definition, checked with big enough arithmetic.
		n := int64(tt.n)
		if want := int(((tt.h % n) + n) % n); tt.n <= math.MaxInt32 && want != tt.want {
			t.Errorf("test table: ((%d mod %d) + %d) mod %d = %d, not %d", tt.h, n, n, n, want, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		i, n int
		ok   bool
	}{
		{0, 1, true}, {3, 4, true}, {0, MaxShards, true},
		{0, 0, false}, {-1, 4, false}, {4, 4, false}, {0, -1, false}, {0, MaxShards + 1, false},
	} {
		if err := Validate(tt.i, tt.n); (err == nil) != tt.ok {
			t.Errorf("Validate(%d, %d) = %v, want ok %v", tt.i, tt.n, err, tt.ok)
		}
	}
	for name, f := range map[string]func(){
		"Of":           func() { Of(1, 0) },
		"ForID":        func() { _, _ = ForID(rv(t, 1), -1) },
		"ServerStage":  func() { ServerStage(2, 2) },
		"ClientFilter": func() { ClientFilter(-1, 2) },
		"Header":       func() { Header(0, 0) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s accepted an invalid shard", name)
				}
			}()
			f()
		}()
	}
}

func TestForID(t *testing.T) {
	// Equal numbers of any type land on one shard; the shard is Of(hash).
	for _, id := range []any{int32(42), int64(42), 42.0, 42.9, dec(t, "42")} {
		got, err := ForID(rv(t, id), 16)
		if err != nil {
			t.Fatal(err)
		}
		if got != Of(-944302157085130861, 16) {
			t.Errorf("ForID(%v, 16) = %d, want %d", id, got, Of(-944302157085130861, 16))
		}
	}
	if _, err := ForID(rv(t, bson.A{1}), 4); err == nil || !strings.Contains(err.Error(), "cannot be an array") {
		t.Errorf("array _id: err = %v", err)
	}
	if _, err := ForID(bson.RawValue{Type: bson.TypeString, Value: []byte{1}}, 4); err == nil ||
		!strings.HasPrefix(err.Error(), "shard of _id: hash string: ") {
		t.Errorf("malformed _id: err = %v", err)
	}
}

func TestHeader(t *testing.T) {
	h := Header(3, 16)
	if h.Key != "mongorelay.shard" || string(h.Value) != "3-of-16" {
		t.Errorf("Header(3, 16) = %q: %q", h.Key, h.Value)
	}
	if got := Name(0, 1); got != "0-of-1" {
		t.Errorf("Name(0, 1) = %q", got)
	}
}
