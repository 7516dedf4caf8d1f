// Package avrobin appends Avro binary encodings of primitive values to a byte slice, the
// building blocks of the hot-path encoders (no allocation beyond the slice's growth).
package avrobin

import "encoding/binary"

// AppendLong appends v as an Avro int or long: a zigzag varint.
func AppendLong(dst []byte, v int64) []byte {
	return binary.AppendUvarint(dst, uint64(v<<1)^uint64(v>>63))
}

// AppendBytes appends b as Avro bytes or string: its length, then its content.
func AppendBytes(dst, b []byte) []byte {
	return append(AppendLong(dst, int64(len(b))), b...)
}

// AppendString appends s as an Avro string.
func AppendString(dst []byte, s string) []byte {
	return append(AppendLong(dst, int64(len(s))), s...)
}

// PrefixLength turns the bytes written since at into an Avro string or bytes by inserting their
// length in front of them, for text whose length is known only once written (Extended JSON).
func PrefixLength(dst []byte, at int) []byte {
	n := len(dst) - at
	var l [binary.MaxVarintLen64]byte
	k := len(AppendLong(l[:0], int64(n)))
	dst = append(dst, l[:k]...)
	copy(dst[at+k:], dst[at:at+n])
	copy(dst[at:], l[:k])
	return dst
}
