// Package shard splits a collection's change events into n shards by MongoDB's hashed-index hash of documentKey._id.
package shard

import (
	"fmt"
	"math"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// MaxShards bounds n. Well beyond any useful shard count, it keeps ((h mod n) + n) inside the
// int64 range, where the server's $add stays an integer (it turns to a double on overflow).
const MaxShards = math.MaxInt32

// HeaderKey is the Kafka record header that names the shard a record came from.
const HeaderKey = "mongorelay.shard"

// Validate reports whether i of n names a shard: 1 <= n <= MaxShards and 0 <= i < n. The
// other functions of this package panic on what Validate refuses, as they cannot be used
// meaningfully with it; check configuration with Validate first.
func Validate(i, n int) error {
	if n < 1 || n > MaxShards {
		return fmt.Errorf("shard count %d out of range [1, %d]", n, MaxShards)
	}
	if i < 0 || i >= n {
		return fmt.Errorf("shard %d out of range [0, %d)", i, n)
	}
	return nil
}

func mustValidate(i, n int) {
	if err := Validate(i, n); err != nil {
		panic("shard: " + err.Error())
	}
}

// Of is the shard, in [0, n), of a document whose _id hashes to h: ((h mod n) + n) mod n, where
// mod keeps the dividend's sign as Go's % and MongoDB's $mod do (DESIGN.md section 1). It panics
// unless 1 <= n <= MaxShards.
func Of(h int64, n int) int {
	mustValidate(0, n)
	r := h % int64(n)
	if r < 0 {
		r += int64(n) // the same as (r + n) mod n for r in (-n, n), without the second division
	}
	return int(r)
}

// ForID is the shard, in [0, n), of the document with this _id. An array is refused: MongoDB
// does not allow one as an _id, so meeting one means the input is not an _id. It panics unless
// 1 <= n <= MaxShards.
func ForID(id bson.RawValue, n int) (int, error) {
	mustValidate(0, n)
	if id.Type == bson.TypeArray {
		return 0, fmt.Errorf("shard of _id: an _id cannot be an array")
	}
	h, err := Hash(id)
	if err != nil {
		return 0, fmt.Errorf("shard of _id: %w", err)
	}
	return Of(h, n), nil
}

// Name is the shard's "i-of-n" form, as used in task names, offset keys and Header.
func Name(i, n int) string {
	mustValidate(i, n)
	return strconv.Itoa(i) + "-of-" + strconv.Itoa(n)
}

// Header is the record header naming shard i of n ("mongorelay.shard": "i-of-n"). Build it once
// per task and attach it to every record: records share its value bytes, which nobody may
// modify. It panics on what Validate refuses.
func Header(i, n int) kgo.RecordHeader {
	return kgo.RecordHeader{Key: HeaderKey, Value: []byte(Name(i, n))}
}
