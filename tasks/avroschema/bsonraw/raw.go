// Package bsonraw reads raw BSON without allocating: it walks a document's elements, splits
// composite values into their parts and appends canonical Extended JSON.
//
// Every function bounds-checks its input and reports malformed BSON as an error wrapping
// ErrMalformed instead of panicking: change events come from the network.
package bsonraw

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ErrMalformed is wrapped by every error caused by bytes that are not valid BSON.
var ErrMalformed = errors.New("malformed BSON")

// Element is one key/value pair of a document. Key and Value alias the document's bytes.
type Element struct {
	Key   []byte
	Type  bson.Type
	Value []byte
}

// Iter walks the elements of one document in their stored order.
type Iter struct {
	rest []byte
	err  error
}

// Elements returns an iterator over doc, which must be a whole BSON document (length prefix
// included); a bad header surfaces through Err after the first Next.
func Elements(doc []byte) Iter {
	if len(doc) < 5 {
		return Iter{err: fmt.Errorf("%w: document of %d bytes", ErrMalformed, len(doc))}
	}
	n := int(int32(binary.LittleEndian.Uint32(doc)))
	if n != len(doc) || doc[n-1] != 0 {
		return Iter{err: fmt.Errorf("%w: document length %d in %d bytes", ErrMalformed, n, len(doc))}
	}
	return Iter{rest: doc[4 : n-1]}
}

// Next stores the next element in e and reports whether there was one.
func (it *Iter) Next(e *Element) bool {
	if it.err != nil || len(it.rest) == 0 {
		return false
	}
	src := it.rest
	t := bson.Type(src[0])
	end := bytes.IndexByte(src[1:], 0)
	if end < 0 {
		it.err = fmt.Errorf("%w: unterminated key", ErrMalformed)
		return false
	}
	key := src[1 : 1+end]
	src = src[end+2:]
	n, ok := valueLength(src, t)
	if !ok {
		it.err = fmt.Errorf("%w: bad %s value for key %q", ErrMalformed, t, key)
		return false
	}
	e.Key, e.Type, e.Value = key, t, src[:n]
	it.rest = src[n:]
	return true
}

// Err returns what stopped the iteration early, if anything did.
func (it *Iter) Err() error { return it.err }

// Count returns the number of elements of doc.
func Count(doc []byte) (int, error) {
	it := Elements(doc)
	var e Element
	n := 0
	for it.Next(&e) {
		n++
	}
	return n, it.Err()
}

// valueLength returns how many bytes of src the value of type t takes, checking that they are
// there and that embedded lengths are sane.
func valueLength(src []byte, t bson.Type) (int, bool) {
	var n int
	switch t {
	case bson.TypeDouble, bson.TypeDateTime, bson.TypeInt64, bson.TypeTimestamp:
		n = 8
	case bson.TypeInt32:
		n = 4
	case bson.TypeDecimal128:
		n = 16
	case bson.TypeObjectID:
		n = 12
	case bson.TypeBoolean:
		if len(src) < 1 || src[0] > 1 {
			return 0, false
		}
		n = 1
	case bson.TypeNull, bson.TypeUndefined, bson.TypeMinKey, bson.TypeMaxKey:
		n = 0
	case bson.TypeString, bson.TypeJavaScript, bson.TypeSymbol:
		l, ok := length(src)
		if !ok || l < 1 {
			return 0, false
		}
		n = 4 + l
	case bson.TypeEmbeddedDocument, bson.TypeArray, bson.TypeCodeWithScope:
		l, ok := length(src)
		if !ok || l < 5 {
			return 0, false
		}
		n = l
	case bson.TypeBinary:
		l, ok := length(src)
		if !ok {
			return 0, false
		}
		n = 5 + l
	case bson.TypeDBPointer:
		l, ok := length(src)
		if !ok || l < 1 {
			return 0, false
		}
		n = 4 + l + 12
	case bson.TypeRegex:
		p := indexZero(src, 0)
		if p < 0 {
			return 0, false
		}
		o := indexZero(src, p+1)
		if o < 0 {
			return 0, false
		}
		n = o + 1
	default:
		return 0, false
	}
	return n, n <= len(src)
}

// length reads a non-negative little-endian int32 length prefix.
func length(src []byte) (int, bool) {
	if len(src) < 4 {
		return 0, false
	}
	l := int(int32(binary.LittleEndian.Uint32(src)))
	return l, l >= 0
}

func indexZero(b []byte, from int) int {
	for i := from; i < len(b); i++ {
		if b[i] == 0 {
			return i
		}
	}
	return -1
}

// String returns the bytes of a string, JavaScript or symbol value, without the trailing NUL.
func String(v []byte) ([]byte, error) {
	l, ok := length(v)
	if !ok || l < 1 || len(v) < 4+l || v[4+l-1] != 0 {
		return nil, fmt.Errorf("%w: bad string", ErrMalformed)
	}
	return v[4 : 4+l-1], nil
}

// Binary returns the subtype and payload of a binary value. For the old binary subtype 2 the
// payload excludes its redundant inner length, as the Go driver and the Extended JSON spec do.
func Binary(v []byte) (subtype byte, data []byte, err error) {
	l, ok := length(v)
	if !ok || len(v) < 5+l {
		return 0, nil, fmt.Errorf("%w: bad binary", ErrMalformed)
	}
	subtype, data = v[4], v[5:5+l]
	if subtype == 0x02 {
		inner, ok := length(data)
		if !ok || inner != len(data)-4 {
			return 0, nil, fmt.Errorf("%w: bad old binary (subtype 2) length", ErrMalformed)
		}
		data = data[4:]
	}
	return subtype, data, nil
}

// Regex returns the pattern and options of a regular expression value.
func Regex(v []byte) (pattern, options []byte, err error) {
	p := indexZero(v, 0)
	if p < 0 {
		return nil, nil, fmt.Errorf("%w: bad regex", ErrMalformed)
	}
	o := indexZero(v, p+1)
	if o < 0 {
		return nil, nil, fmt.Errorf("%w: bad regex", ErrMalformed)
	}
	return v[:p], v[p+1 : o], nil
}

// DBPointer returns the namespace and the 12-byte ObjectId of a DBPointer value.
func DBPointer(v []byte) (ns, oid []byte, err error) {
	ns, err = String(v)
	if err != nil {
		return nil, nil, err
	}
	rest := v[4+len(ns)+1:]
	if len(rest) < 12 {
		return nil, nil, fmt.Errorf("%w: bad DBPointer", ErrMalformed)
	}
	return ns, rest[:12], nil
}

// CodeWithScope returns the code and the scope document of a JavaScript-with-scope value.
func CodeWithScope(v []byte) (code, scope []byte, err error) {
	total, ok := length(v)
	if !ok || total != len(v) || total < 4+5+5 {
		return nil, nil, fmt.Errorf("%w: bad code with scope", ErrMalformed)
	}
	code, err = String(v[4:])
	if err != nil {
		return nil, nil, err
	}
	scope = v[4+4+len(code)+1:]
	if l, ok := length(scope); !ok || l != len(scope) {
		return nil, nil, fmt.Errorf("%w: bad code with scope document", ErrMalformed)
	}
	return code, scope, nil
}

// Int32 decodes an int32 value.
func Int32(v []byte) int32 { return int32(binary.LittleEndian.Uint32(v)) }

// Int64 decodes an int64 or datetime value.
func Int64(v []byte) int64 { return int64(binary.LittleEndian.Uint64(v)) }

// Timestamp decodes a timestamp value: seconds t and increment i.
func Timestamp(v []byte) (t, i uint32) {
	return binary.LittleEndian.Uint32(v[4:]), binary.LittleEndian.Uint32(v)
}
