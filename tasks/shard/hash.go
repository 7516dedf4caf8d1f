package shard

import (
	"crypto/fips140"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// MongoDB's hashed-index hash (BSONElementHasher::hash64 in src/mongo/db/hasher.cpp) is MD5 over
// a byte string built like this, of which the first 8 digest bytes are read as a little-endian
// int64:
//
//	seed                      int32 LE (0 for hashed indexes and $toHashedIndexKey)
//	value:  canonical type    int32 LE (canonicalizeBSONType: all numbers 10, string/symbol 15, ...)
//	        payload           numbers: int64 LE after safeNumberLongForHash (so 1, NumberLong(1),
//	                            1.9 and NumberDecimal("1") hash alike);
//	                          documents, arrays: each element as (canonical type, field name
//	                            with its NUL, payload), then the end-of-object element, which
//	                            adds its canonical type 0 and nothing else;
//	                          code with scope: the code's bytes with their NUL, then the scope
//	                            as a document;
//	                          anything else: the raw BSON value bytes (a string's length prefix
//	                            and NUL included, a binary's length and subtype included).
//
// The top-level value contributes no field name. The byte string is assembled in a stack buffer
// and summed once, so hashing a usual _id allocates nothing.

// defaultSeed is BSONElementHasher::DEFAULT_HASH_SEED, the seed of every hashed index and of
// $toHashedIndexKey.
const defaultSeed = 0

// maxDepth caps how deep documents nest before Hash refuses them, which keeps the walk's stack
// of open documents a fixed array. MongoDB stores at most 100 levels of user documents and its
// own hard limit is 200 (BSONDepth), so no real _id comes near it.
const maxDepth = 200

// stackInput is the hash input that fits the stack buffer; longer inputs (long string _ids,
// large subdocuments) spill to one heap allocation.
const stackInput = 256

// Canonical type numbers from canonicalizeBSONType (src/mongo/bson/bsontypes.h). They order
// types in indexes and are part of every hash, so equal canonical types hash together (a symbol
// like a string, undefined like the end of an object).
const (
	canonMinKey     = -1
	canonEOO        = 0
	canonNull       = 5
	canonNumber     = 10
	canonString     = 15
	canonObject     = 20
	canonArray      = 25
	canonBinary     = 30
	canonObjectID   = 35
	canonBool       = 40
	canonDate       = 45
	canonTimestamp  = 47
	canonRegex      = 50
	canonDBPointer  = 55
	canonCode       = 60
	canonCodeWScope = 65
	canonMaxKey     = 127
)

// Hash returns MongoDB's hashed-index key of v: the value $toHashedIndexKey and
// convertShardKeyToHashed return and a {field: "hashed"} index stores. It is bit for bit the
// server's BSONElementHasher::hash64 with seed 0 for every BSON type, arrays included (as
// $toHashedIndexKey accepts them). Malformed bytes give an error naming the type, never a panic.
func Hash(v bson.RawValue) (int64, error) {
	return hashSeeded(v, defaultSeed)
}

// hashSeeded is Hash with another seed; MongoDB's own hash tests (jstests/core/hash.js) use
// seed 1, so the tests need it.
func hashSeeded(v bson.RawValue, seed int32) (int64, error) {
	var buf [stackInput]byte
	b := binary.LittleEndian.AppendUint32(buf[:0], uint32(seed))
	b, err := appendValue(b, v.Type, v.Value)
	if err != nil {
		return 0, fmt.Errorf("hash %s: %w", typeName(v.Type), err)
	}
	sum := md5Sum(b)
	return int64(binary.LittleEndian.Uint64(sum[:8])), nil
}

// md5Sum is md5.Sum that still works under GODEBUG=fips140=only, where crypto/md5 panics: this
// MD5 protects nothing, it only has to agree with the server's, which hashes regardless.
func md5Sum(b []byte) [md5.Size]byte {
	if !fips140.Enforced() {
		return md5.Sum(b)
	}
	var sum [md5.Size]byte
	fips140.WithoutEnforcement(func() { sum = md5.Sum(b) })
	return sum
}

// appendValue appends the hash input of one value (canonical type and payload, no field name);
// v must be exactly the value's bytes.
func appendValue(b []byte, t bson.Type, v []byte) ([]byte, error) {
	n, err := valueLen(t, v)
	if err != nil {
		return b, err
	}
	if n != len(v) {
		return b, fmt.Errorf("%d bytes of value, %d expected", len(v), n)
	}
	canon, err := canonicalType(t)
	if err != nil {
		return b, err
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(canon))
	if !isContainer(t) {
		return appendScalar(b, t, v), nil
	}
	return appendContainer(b, t, v)
}

// isContainer tells the types whose payload is elements (BSONElement::mayEncapsulate).
func isContainer(t bson.Type) bool {
	return t == bson.TypeEmbeddedDocument || t == bson.TypeArray || t == bson.TypeCodeWithScope
}

// appendScalar appends the payload of a value that holds no elements: an int64 for numbers,
// else its raw bytes.
func appendScalar(b []byte, t bson.Type, x []byte) []byte {
	switch t {
	case bson.TypeDouble, bson.TypeInt32, bson.TypeInt64, bson.TypeDecimal128:
		return binary.LittleEndian.AppendUint64(b, uint64(numberForHash(t, x)))
	default:
		return append(b, x...)
	}
}

// span is a document being walked inside the value being hashed: its next element starts at
// byte next of the value, its final NUL is at byte end.
type span struct{ next, end int }

// appendContainer appends the payload of a document, array or code with scope v: every
// element as (canonical type, field name and NUL, payload), depth first, each document closed
// by its end-of-object element. It walks with an explicit stack of open documents rather than
// by recursion, because Go's escape analysis gives up on an append buffer threaded through
// recursive calls and would move Hash's stack buffer to the heap.
func appendContainer(b []byte, t bson.Type, v []byte) ([]byte, error) {
	var open [maxDepth]span // innermost last
	b, depth, err := openContainer(b, t, v, 0, open[:], 0)
	if err != nil {
		return b, err
	}
	for depth > 0 {
		doc := &open[depth-1]
		if doc.next == doc.end {
			// The end-of-object element: canonical type 0, no name, no value.
			b = binary.LittleEndian.AppendUint32(b, canonEOO)
			depth--
			continue
		}
		p := doc.next
		t := bson.Type(v[p])
		name, rest, err := cstring(v[p+1 : doc.end])
		if err != nil {
			return b, fmt.Errorf("field name at byte %d: %w", p+1, err)
		}
		n, err := valueLen(t, rest)
		if err != nil {
			return b, fmt.Errorf("field %q: %w", name, err)
		}
		canon, err := canonicalType(t)
		if err != nil {
			return b, fmt.Errorf("field %q: %w", name, err)
		}
		start := p + 1 + len(name) + 1
		doc.next = start + n
		b = binary.LittleEndian.AppendUint32(b, uint32(canon))
		b = append(b, name...)
		b = append(b, 0)
		if !isContainer(t) {
			b = appendScalar(b, t, v[start:start+n])
			continue
		}
		if b, depth, err = openContainer(b, t, v[start:start+n], start, open[:], depth); err != nil {
			return b, fmt.Errorf("field %q: %w", name, err)
		}
	}
	return b, nil
}

// openContainer pushes the container x, which starts at byte at of the whole value, on open;
// for code with scope it first appends the code, which MongoDB hashes (NUL included, length
// prefix not) before the scope's elements.
func openContainer(b []byte, t bson.Type, x []byte, at int, open []span, depth int) ([]byte, int, error) {
	if depth == len(open) {
		return b, depth, fmt.Errorf("documents nested deeper than %d levels", len(open))
	}
	elements := 4 // after the document's int32 length
	if t == bson.TypeCodeWithScope {
		// int32 total, the code as a string (int32 length counting its NUL, bytes, NUL),
		// then the scope document.
		codeLen := int(int32(binary.LittleEndian.Uint32(x[4:])))
		b = append(b, x[8:8+codeLen]...)
		elements = 8 + codeLen + 4
	}
	open[depth] = span{next: at + elements, end: at + len(x) - 1}
	return b, depth + 1, nil
}

// canonicalType is canonicalizeBSONType; MongoDB refuses to hash a type byte it does not know.
func canonicalType(t bson.Type) (int32, error) {
	switch t {
	case bson.TypeMinKey:
		return canonMinKey, nil
	case bson.TypeMaxKey:
		return canonMaxKey, nil
	case bson.TypeUndefined:
		return canonEOO, nil
	case bson.TypeNull:
		return canonNull, nil
	case bson.TypeDouble, bson.TypeInt32, bson.TypeInt64, bson.TypeDecimal128:
		return canonNumber, nil
	case bson.TypeString, bson.TypeSymbol:
		return canonString, nil
	case bson.TypeEmbeddedDocument:
		return canonObject, nil
	case bson.TypeArray:
		return canonArray, nil
	case bson.TypeBinary:
		return canonBinary, nil
	case bson.TypeObjectID:
		return canonObjectID, nil
	case bson.TypeBoolean:
		return canonBool, nil
	case bson.TypeDateTime:
		return canonDate, nil
	case bson.TypeTimestamp:
		return canonTimestamp, nil
	case bson.TypeRegex:
		return canonRegex, nil
	case bson.TypeDBPointer:
		return canonDBPointer, nil
	case bson.TypeJavaScript:
		return canonCode, nil
	case bson.TypeCodeWithScope:
		return canonCodeWScope, nil
	default:
		return 0, fmt.Errorf("unknown BSON type 0x%02x", byte(t))
	}
}

var errShort = errors.New("value truncated")

// valueLen returns how many bytes of b the value of type t takes, checking that every length
// prefix fits and every string ends in NUL, so that nothing after it can index out of range.
func valueLen(t bson.Type, b []byte) (int, error) {
	fixed := func(n int) (int, error) {
		if len(b) < n {
			return 0, errShort
		}
		return n, nil
	}
	switch t {
	case bson.TypeUndefined, bson.TypeNull, bson.TypeMinKey, bson.TypeMaxKey:
		return 0, nil
	case bson.TypeBoolean:
		if len(b) < 1 {
			return 0, errShort
		}
		if b[0] > 1 {
			return 0, fmt.Errorf("boolean byte 0x%02x is neither 0 nor 1", b[0])
		}
		return 1, nil
	case bson.TypeInt32:
		return fixed(4)
	case bson.TypeDouble, bson.TypeDateTime, bson.TypeTimestamp, bson.TypeInt64:
		return fixed(8)
	case bson.TypeObjectID:
		return fixed(12)
	case bson.TypeDecimal128:
		return fixed(16)
	case bson.TypeString, bson.TypeJavaScript, bson.TypeSymbol:
		return stringLen(b)
	case bson.TypeDBPointer:
		n, err := stringLen(b)
		if err != nil {
			return 0, err
		}
		if len(b)-n < 12 {
			return 0, errShort
		}
		return n + 12, nil
	case bson.TypeBinary:
		if len(b) < 5 {
			return 0, errShort
		}
		n := int64(int32(binary.LittleEndian.Uint32(b)))
		if n < 0 || n > int64(len(b)-5) {
			return 0, fmt.Errorf("binary length %d does not fit %d bytes", n, len(b)-5)
		}
		return int(n) + 5, nil
	case bson.TypeRegex:
		pattern, rest, err := cstring(b)
		if err != nil {
			return 0, fmt.Errorf("regex pattern: %w", err)
		}
		options, _, err := cstring(rest)
		if err != nil {
			return 0, fmt.Errorf("regex options: %w", err)
		}
		return len(pattern) + 1 + len(options) + 1, nil
	case bson.TypeEmbeddedDocument, bson.TypeArray:
		return documentLen(b)
	case bson.TypeCodeWithScope:
		if len(b) < 4 {
			return 0, errShort
		}
		total := int64(int32(binary.LittleEndian.Uint32(b)))
		if total < 4+5+5 || total > int64(len(b)) {
			return 0, fmt.Errorf("code with scope length %d does not fit %d bytes", total, len(b))
		}
		body := b[4:total]
		code, err := stringLen(body)
		if err != nil {
			return 0, fmt.Errorf("code with scope code: %w", err)
		}
		scope, err := documentLen(body[code:])
		if err != nil {
			return 0, fmt.Errorf("code with scope scope: %w", err)
		}
		if 4+code+scope != int(total) {
			return 0, fmt.Errorf("code with scope length %d is not %d", total, 4+code+scope)
		}
		return int(total), nil
	default:
		return 0, fmt.Errorf("unknown BSON type 0x%02x", byte(t))
	}
}

// stringLen is the length of a BSON string value: int32 size counting the NUL, bytes, NUL.
func stringLen(b []byte) (int, error) {
	if len(b) < 5 {
		return 0, errShort
	}
	n := int64(int32(binary.LittleEndian.Uint32(b)))
	if n < 1 || n > int64(len(b)-4) {
		return 0, fmt.Errorf("string length %d does not fit %d bytes", n, len(b)-4)
	}
	if b[4+n-1] != 0 {
		return 0, errors.New("string does not end in NUL")
	}
	return int(n) + 4, nil
}

// documentLen is the length of an embedded document or array: int32 size, elements, NUL.
// The elements themselves are checked as they are hashed.
func documentLen(b []byte) (int, error) {
	if len(b) < 5 {
		return 0, errShort
	}
	n := int64(int32(binary.LittleEndian.Uint32(b)))
	if n < 5 || n > int64(len(b)) {
		return 0, fmt.Errorf("document length %d does not fit %d bytes", n, len(b))
	}
	if b[n-1] != 0 {
		return 0, errors.New("document does not end in NUL")
	}
	return int(n), nil
}

// cstring splits b after the first NUL: the bytes before it, and what follows it.
func cstring(b []byte) (s, rest []byte, err error) {
	for i, c := range b {
		if c == 0 {
			return b[:i], b[i+1:], nil
		}
	}
	return nil, nil, errors.New("missing NUL terminator")
}

// numberForHash is BSONElement::safeNumberLongForHash: every numeric type becomes an int64
// before it is hashed, which is why NumberInt(1), NumberLong(1), 1.0 and 1.5 share a hash.
func numberForHash(t bson.Type, v []byte) int64 {
	switch t {
	case bson.TypeInt32:
		return int64(int32(binary.LittleEndian.Uint32(v)))
	case bson.TypeInt64:
		return int64(binary.LittleEndian.Uint64(v))
	case bson.TypeDouble:
		return doubleForHash(math.Float64frombits(binary.LittleEndian.Uint64(v)))
	default: // decimal128
		return decimalForHash(binary.LittleEndian.Uint64(v[8:]), binary.LittleEndian.Uint64(v))
	}
}

// doubleForHash converts like safeNumberLongForHash: NaN is 0, values past the int64 range clamp
// to it, fractions truncate toward zero, and 2^63 exactly becomes -2^63 — the result older
// servers got from an overflowing cast, kept forever because indexes on disk hold it
// (SERVER-37183).
func doubleForHash(d float64) int64 {
	const twoTo63 = 9223372036854775808.0
	switch {
	case math.IsNaN(d):
		return 0
	case d == twoTo63:
		return math.MinInt64
	case d > twoTo63:
		return math.MaxInt64
	case d < -twoTo63:
		return math.MinInt64
	default:
		return int64(d)
	}
}

// typeName names a BSON type for errors.
func typeName(t bson.Type) string {
	if _, err := canonicalType(t); err != nil || t == 0 {
		return fmt.Sprintf("BSON type 0x%02x", byte(t))
	}
	return t.String()
}
