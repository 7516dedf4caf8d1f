package bsonraw

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// AppendExtJSON appends the canonical Extended JSON (v2, relaxed=false) of document doc to dst,
// byte for byte what bson.MarshalExtJSON(doc, true, false) returns except that a DBPointer's
// namespace is escaped (the driver leaves it raw). Canonical output is exact and stable: the same
// document always gives the same bytes, and every BSON type keeps its identity.
func AppendExtJSON(dst, doc []byte) ([]byte, error) {
	it := Elements(doc)
	var e Element
	dst = append(dst, '{')
	first := true
	for it.Next(&e) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = AppendJSONString(dst, e.Key)
		dst = append(dst, ':')
		var err error
		if dst, err = AppendExtJSONValue(dst, e.Type, e.Value); err != nil {
			return dst, fmt.Errorf("%s: %w", e.Key, err)
		}
	}
	return append(dst, '}'), it.Err()
}

// AppendExtJSONValue appends the canonical Extended JSON of one value of type t.
func AppendExtJSONValue(dst []byte, t bson.Type, v []byte) ([]byte, error) {
	switch t {
	case bson.TypeDouble:
		dst = append(dst, `{"$numberDouble":"`...)
		dst = appendDouble(dst, math.Float64frombits(binary.LittleEndian.Uint64(v)))
		return append(dst, `"}`...), nil
	case bson.TypeString:
		s, err := String(v)
		if err != nil {
			return dst, err
		}
		return AppendJSONString(dst, s), nil
	case bson.TypeEmbeddedDocument:
		return AppendExtJSON(dst, v)
	case bson.TypeArray:
		return appendArray(dst, v)
	case bson.TypeBinary:
		sub, data, err := Binary(v)
		if err != nil {
			return dst, err
		}
		dst = append(dst, `{"$binary":{"base64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, data)
		dst = append(dst, `","subType":"`...)
		dst = append(dst, hexDigits[sub>>4], hexDigits[sub&0xF])
		return append(dst, `"}}`...), nil
	case bson.TypeUndefined:
		return append(dst, `{"$undefined":true}`...), nil
	case bson.TypeObjectID:
		dst = append(dst, `{"$oid":"`...)
		dst = hex.AppendEncode(dst, v)
		return append(dst, `"}`...), nil
	case bson.TypeBoolean:
		if v[0] != 0 {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case bson.TypeDateTime:
		dst = append(dst, `{"$date":{"$numberLong":"`...)
		dst = strconv.AppendInt(dst, Int64(v), 10)
		return append(dst, `"}}`...), nil
	case bson.TypeNull:
		return append(dst, "null"...), nil
	case bson.TypeRegex:
		pattern, options, err := Regex(v)
		if err != nil {
			return dst, err
		}
		dst = append(dst, `{"$regularExpression":{"pattern":`...)
		dst = AppendJSONString(dst, pattern)
		dst = append(dst, `,"options":`...)
		dst = appendSortedOptions(dst, options)
		return append(dst, `}}`...), nil
	case bson.TypeDBPointer:
		ns, oid, err := DBPointer(v)
		if err != nil {
			return dst, err
		}
		dst = append(dst, `{"$dbPointer":{"$ref":`...)
		dst = AppendJSONString(dst, ns)
		dst = append(dst, `,"$id":{"$oid":"`...)
		dst = hex.AppendEncode(dst, oid)
		return append(dst, `"}}}`...), nil
	case bson.TypeJavaScript:
		code, err := String(v)
		if err != nil {
			return dst, err
		}
		dst = append(dst, `{"$code":`...)
		dst = AppendJSONString(dst, code)
		return append(dst, '}'), nil
	case bson.TypeSymbol:
		sym, err := String(v)
		if err != nil {
			return dst, err
		}
		dst = append(dst, `{"$symbol":`...)
		dst = AppendJSONString(dst, sym)
		return append(dst, '}'), nil
	case bson.TypeCodeWithScope:
		code, scope, err := CodeWithScope(v)
		if err != nil {
			return dst, err
		}
		dst = append(dst, `{"$code":`...)
		dst = AppendJSONString(dst, code)
		dst = append(dst, `,"$scope":`...)
		if dst, err = AppendExtJSON(dst, scope); err != nil {
			return dst, err
		}
		return append(dst, '}'), nil
	case bson.TypeInt32:
		dst = append(dst, `{"$numberInt":"`...)
		dst = strconv.AppendInt(dst, int64(Int32(v)), 10)
		return append(dst, `"}`...), nil
	case bson.TypeTimestamp:
		ts, inc := Timestamp(v)
		dst = append(dst, `{"$timestamp":{"t":`...)
		dst = strconv.AppendUint(dst, uint64(ts), 10)
		dst = append(dst, `,"i":`...)
		dst = strconv.AppendUint(dst, uint64(inc), 10)
		return append(dst, `}}`...), nil
	case bson.TypeInt64:
		dst = append(dst, `{"$numberLong":"`...)
		dst = strconv.AppendInt(dst, Int64(v), 10)
		return append(dst, `"}`...), nil
	case bson.TypeDecimal128:
		dst = append(dst, `{"$numberDecimal":"`...)
		dst = AppendDecimal128(dst, v)
		return append(dst, `"}`...), nil
	case bson.TypeMinKey:
		return append(dst, `{"$minKey":1}`...), nil
	case bson.TypeMaxKey:
		return append(dst, `{"$maxKey":1}`...), nil
	}
	return dst, fmt.Errorf("%w: unknown type 0x%02x", ErrMalformed, byte(t))
}

func appendArray(dst, arr []byte) ([]byte, error) {
	it := Elements(arr)
	var e Element
	dst = append(dst, '[')
	first := true
	for it.Next(&e) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		var err error
		if dst, err = AppendExtJSONValue(dst, e.Type, e.Value); err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), it.Err()
}

// appendDouble formats like the Go driver: shortest round-trip form, with ".0" added to integral
// values so that the JSON number reads back as a double.
func appendDouble(dst []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'G', -1, 64)
	for _, c := range dst[start:] {
		if c == '.' || c == 'E' {
			return dst
		}
	}
	return append(dst, ".0"...)
}

// appendSortedOptions writes regex options in alphabetical order, as canonical Extended JSON
// requires, sorting a small stack copy so that nothing is allocated.
func appendSortedOptions(dst, options []byte) []byte {
	var buf [16]byte
	var opts []byte
	if len(options) <= len(buf) {
		opts = buf[:len(options)]
	} else {
		opts = make([]byte, len(options))
	}
	copy(opts, options)
	for i := 1; i < len(opts); i++ {
		for j := i; j > 0 && opts[j] < opts[j-1]; j-- {
			opts[j], opts[j-1] = opts[j-1], opts[j]
		}
	}
	return AppendJSONString(dst, opts)
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a quoted JSON string escaped the way the Go driver escapes
// Extended JSON with escapeHTML=false (invalid UTF-8 becomes U+FFFD, U+2028/2029 are escaped).
func AppendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendDecimal128 appends the string form of a 16-byte Decimal128 value as the BSON decimal128
// spec defines it (the IEEE 754 "to-scientific-string" rule): exact, so the value's precision
// and exponent survive ("1.50" stays "1.50"), with NaN, Infinity, -Infinity and -0.
func AppendDecimal128(dst, v []byte) []byte {
	lo := binary.LittleEndian.Uint64(v)
	hi := binary.LittleEndian.Uint64(v[8:])
	neg := hi>>63 == 1
	switch (hi >> 58) & 0x1f {
	case 0x1f:
		return append(dst, "NaN"...)
	case 0x1e:
		if neg {
			return append(dst, "-Infinity"...)
		}
		return append(dst, "Infinity"...)
	}
	var exp int
	var sigHi, sigLo uint64
	if (hi>>61)&3 == 3 {
		// The 2-bit combination form encodes significands above 2^113, all out of range:
		// the spec reads them as zero.
		exp = int((hi >> 47) & 0x3fff)
	} else {
		exp = int((hi >> 49) & 0x3fff)
		sigHi, sigLo = hi&(1<<49-1), lo
	}
	exp -= 6176

	// Decimal digits of the significand, least significant first, 9 at a time.
	var digits [45]byte
	n := 0
	for sigHi != 0 || sigLo != 0 || n == 0 {
		var rem uint32
		sigHi, sigLo, rem = divmod1e9(sigHi, sigLo)
		for range 9 {
			digits[len(digits)-1-n] = byte('0' + rem%10)
			rem /= 10
			n++
			if sigHi == 0 && sigLo == 0 && rem == 0 {
				break
			}
		}
	}
	d := digits[len(digits)-n:]
	for len(d) > 1 && d[0] == '0' {
		d = d[1:]
	}
	if neg {
		dst = append(dst, '-')
	}
	adjusted := exp + len(d) - 1
	if exp <= 0 && adjusted >= -6 {
		if exp == 0 {
			return append(dst, d...)
		}
		point := len(d) + exp
		if point <= 0 {
			dst = append(dst, '0', '.')
			for range -point {
				dst = append(dst, '0')
			}
			return append(dst, d...)
		}
		dst = append(dst, d[:point]...)
		dst = append(dst, '.')
		return append(dst, d[point:]...)
	}
	dst = append(dst, d[0])
	if len(d) > 1 {
		dst = append(dst, '.')
		dst = append(dst, d[1:]...)
	}
	dst = append(dst, 'E')
	if adjusted >= 0 {
		dst = append(dst, '+')
	}
	return strconv.AppendInt(dst, int64(adjusted), 10)
}

// divmod1e9 divides the 128-bit number hi:lo by 10^9.
func divmod1e9(hi, lo uint64) (qhi, qlo uint64, rem uint32) {
	const div = 1_000_000_000
	a := hi >> 32
	aq, ar := a/div, a%div
	b := ar<<32 | hi&(1<<32-1)
	bq, br := b/div, b%div
	c := br<<32 | lo>>32
	cq, cr := c/div, c%div
	e := cr<<32 | lo&(1<<32-1)
	eq, er := e/div, e%div
	return aq<<32 | bq, cq<<32 | eq, uint32(er)
}
