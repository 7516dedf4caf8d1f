package avroschema

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"

	"github.com/mongorelay/mongorelay/tasks/avrobin"
	"github.com/mongorelay/mongorelay/tasks/avroschema/bsonraw"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Encoder writes documents as Avro binary in a schema, straight from raw BSON. It keeps scratch
// state between calls so that a covered document is encoded without allocating: use one
// Encoder per goroutine.
type Encoder struct {
	schema *Schema
	root   *recordEnc
	// slots holds, for each record being encoded (a stack, since records nest), the value of
	// each schema field found in the document: BSON order is arbitrary, Avro order is not.
	slots []slot
	keys  keySet
}

type slot struct {
	t bson.Type // 0 when the document lacks the field
	v []byte
}

type recordEnc struct {
	fields []fieldEnc
	index  map[string]int
	// hint[i] is the field that the i-th key of the last document was: documents of one
	// collection usually keep their key order, so most lookups are one string comparison.
	hint []int
}

type fieldEnc struct {
	key string
	u   *unionEnc
}

// unionEnc maps BSON values to the branches of one union; -1 marks an absent branch.
type unionEnc struct {
	branch       [numKinds]int8
	record       *recordEnc
	recordBranch int8
	items        *unionEnc
	arrayBranch  int8
	values       *unionEnc
	mapBranch    int8
}

// NewEncoder compiles s into an encoder.
func NewEncoder(s *Schema) *Encoder {
	c := compiler{s: s, records: map[string]*recordEnc{}}
	return &Encoder{schema: s, root: c.record(s.opts.Name)}
}

type compiler struct {
	s       *Schema
	records map[string]*recordEnc
}

func (c *compiler) record(name string) *recordEnc {
	if r, ok := c.records[name]; ok {
		return r
	}
	rec := c.s.records[name]
	r := &recordEnc{index: make(map[string]int, len(rec.fields)), hint: make([]int, len(rec.fields))}
	c.records[name] = r
	for i, f := range rec.fields {
		r.fields = append(r.fields, fieldEnc{key: f.name, u: c.union(f.typ)})
		r.index[f.name] = i
		r.hint[i] = i
	}
	return r
}

func (c *compiler) union(u *union) *unionEnc {
	ue := &unionEnc{recordBranch: -1, arrayBranch: -1, mapBranch: -1}
	for k := range ue.branch {
		ue.branch[k] = -1
	}
	for i, br := range u.branches() {
		switch br.what {
		case branchBare, branchWrapped:
			// A wrapper record of one field encodes exactly as its field: only the index differs.
			ue.branch[br.kind] = int8(i)
		case branchRecord:
			ue.record, ue.recordBranch = c.record(u.record), int8(i)
		case branchArray:
			ue.items, ue.arrayBranch = c.union(u.items), int8(i)
		case branchMap:
			ue.values, ue.mapBranch = c.union(u.values), int8(i)
		}
	}
	if ue.branch[kInt] < 0 && u.bare().has(kLong) {
		// A legacy bare long holds int32 values (Avro int and long share one varint encoding);
		// any other union without an int branch must evolve first.
		ue.branch[kInt] = ue.branch[kLong]
	}
	return ue
}

// Schema returns the schema the encoder writes.
func (e *Encoder) Schema() *Schema { return e.schema }

// Append appends the Avro binary encoding of doc to dst. On error dst is returned unchanged;
// errors.Is(err, ErrNotCovered) means the schema must evolve first, any other error means doc
// cannot be encoded (malformed BSON, duplicate keys) and names the field path.
func (e *Encoder) Append(dst []byte, doc bson.Raw) ([]byte, error) {
	start := len(dst)
	base := len(e.slots)
	_, _, unknown, err := e.index(e.root, doc)
	if err == nil && unknown != nil {
		err = pathErr(ErrNotCovered, string(unknown))
	}
	if err == nil {
		dst, err = e.fields(dst, e.root, base, 1)
	}
	e.slots = e.slots[:base]
	if err != nil {
		return dst[:start], fmt.Errorf("encode %s: %w", e.schema.opts.Name, err)
	}
	return dst, nil
}

// index pushes rec's slots (when rec is not nil) and fills them from doc. It also returns what
// decides between record and map: the key count and whether all keys look dynamic, and the
// first key rec lacks.
func (e *Encoder) index(rec *recordEnc, doc []byte) (n int, dynamic bool, unknown []byte, err error) {
	base := len(e.slots)
	if rec != nil {
		e.slots = slices.Grow(e.slots, len(rec.fields))[:base+len(rec.fields)]
		clear(e.slots[base:])
	}
	dynamic = true
	it := bsonraw.Elements(doc)
	var el bsonraw.Element
	for it.Next(&el) {
		pos := n
		n++
		if dynamic && !dynamicKey(el.Key) {
			dynamic = false
		}
		if rec == nil || unknown != nil {
			continue
		}
		i := rec.lookup(el.Key, pos)
		if i < 0 {
			unknown = el.Key
			continue
		}
		s := &e.slots[base+i]
		if s.t != 0 {
			return n, dynamic, nil, pathErr(errors.New("duplicate key"), string(el.Key))
		}
		s.t, s.v = el.Type, el.Value
	}
	return n, dynamic, unknown, it.Err()
}

func (r *recordEnc) lookup(key []byte, pos int) int {
	if pos < len(r.hint) {
		if i := r.hint[pos]; r.fields[i].key == string(key) {
			return i
		}
	}
	i, ok := r.index[string(key)]
	if !ok {
		return -1
	}
	if pos < len(r.hint) {
		r.hint[pos] = i
	}
	return i
}

// fields writes rec's fields from the slots at base; depth is the fields' depth.
func (e *Encoder) fields(dst []byte, rec *recordEnc, base, depth int) ([]byte, error) {
	for i := range rec.fields {
		s := e.slots[base+i]
		switch s.t {
		case 0:
			dst = append(dst, 0)
			continue
		case bson.TypeNull, bson.TypeUndefined:
			b := rec.fields[i].u.branch[kNull]
			if b < 0 {
				return dst, pathErr(fmt.Errorf("%w: no branch for an explicit null", ErrNotCovered), rec.fields[i].key)
			}
			dst = append(dst, byte(b)<<1)
			continue
		}
		var err error
		if dst, err = e.value(dst, rec.fields[i].u, s.t, s.v, depth); err != nil {
			return dst, pathErr(err, rec.fields[i].key)
		}
	}
	return dst, nil
}

// value writes one value as a branch of u.
func (e *Encoder) value(dst []byte, u *unionEnc, t bson.Type, v []byte, depth int) ([]byte, error) {
	var k kind
	switch t {
	case bson.TypeNull, bson.TypeUndefined:
		return append(dst, 0), nil
	case bson.TypeEmbeddedDocument:
		return e.document(dst, u, v, depth)
	case bson.TypeArray:
		return e.array(dst, u, v, depth)
	case bson.TypeBinary:
		k = kBinary
		if v[4] == 0x00 {
			k = kBytes
		}
	default:
		var err error
		if k, err = scalarKind(t, v); err != nil {
			return dst, err
		}
	}
	b := u.branch[k]
	if b < 0 {
		return dst, fmt.Errorf("%w: no %s branch", ErrNotCovered, t)
	}
	dst = append(dst, byte(b)<<1)
	switch k {
	case kDouble:
		return append(dst, v[:8]...), nil
	case kInt:
		return avrobin.AppendLong(dst, int64(bsonraw.Int32(v))), nil
	case kLong, kDateTime:
		return avrobin.AppendLong(dst, bsonraw.Int64(v)), nil
	case kBoolean:
		if v[0] != 0 {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case kString, kJavaScript, kSymbol:
		s, err := bsonraw.String(v)
		return avrobin.AppendBytes(dst, s), err
	case kObjectID:
		return hex.AppendEncode(append(dst, 24<<1), v), nil
	case kDecimal:
		// At most 43 characters, so the zigzag length is one byte.
		at := len(dst)
		dst = bsonraw.AppendDecimal128(append(dst, 0), v)
		dst[at] = byte(len(dst)-at-1) << 1
		return dst, nil
	case kBytes, kBinary:
		sub, data, err := bsonraw.Binary(v)
		if k == kBinary {
			dst = avrobin.AppendLong(dst, int64(sub))
		}
		return avrobin.AppendBytes(dst, data), err
	case kRegex:
		pattern, options, err := bsonraw.Regex(v)
		return avrobin.AppendBytes(avrobin.AppendBytes(dst, pattern), options), err
	case kDBPointer:
		ns, oid, err := bsonraw.DBPointer(v)
		return hex.AppendEncode(append(avrobin.AppendBytes(dst, ns), 24<<1), oid), err
	case kCodeWithScope:
		code, scope, err := bsonraw.CodeWithScope(v)
		if err != nil {
			return dst, err
		}
		dst = avrobin.AppendBytes(dst, code)
		at := len(dst)
		dst, err = bsonraw.AppendExtJSON(dst, scope)
		return avrobin.PrefixLength(dst, at), err
	case kTimestamp:
		ts, inc := bsonraw.Timestamp(v)
		return avrobin.AppendLong(avrobin.AppendLong(dst, int64(ts)), int64(inc)), nil
	case kMinKey, kMaxKey:
		return dst, nil
	}
	return dst, fmt.Errorf("%w: unknown BSON type 0x%02x", bsonraw.ErrMalformed, byte(t))
}

func (e *Encoder) document(dst []byte, u *unionEnc, v []byte, depth int) ([]byte, error) {
	if depth > e.schema.opts.MaxDepth {
		return e.extJSON(dst, u, bson.TypeEmbeddedDocument, v)
	}
	base := len(e.slots)
	n, dynamic, unknown, err := e.index(u.record, v)
	defer func() { e.slots = e.slots[:base] }()
	if err != nil {
		return dst, err
	}
	if e.schema.opts.mapLike(n, dynamic) {
		return e.mapValue(dst, u, v, n, depth)
	}
	if u.record == nil {
		return dst, fmt.Errorf("%w: no record branch for a document", ErrNotCovered)
	}
	if unknown != nil {
		return dst, pathErr(ErrNotCovered, string(unknown))
	}
	return e.fields(append(dst, byte(u.recordBranch)<<1), u.record, base, depth+1)
}

func (e *Encoder) mapValue(dst []byte, u *unionEnc, v []byte, n, depth int) ([]byte, error) {
	if u.values == nil {
		return dst, fmt.Errorf("%w: no map branch for a document with %d keys", ErrNotCovered, n)
	}
	// A reader keeps one value per map key: a duplicate would be lost without a word.
	e.keys.reset(n)
	it := bsonraw.Elements(v)
	var el bsonraw.Element
	for it.Next(&el) {
		if !e.keys.add(el.Key) {
			return dst, pathErr(errors.New("duplicate key"), string(el.Key))
		}
	}
	dst = avrobin.AppendLong(append(dst, byte(u.mapBranch)<<1), int64(n))
	it = bsonraw.Elements(v)
	for it.Next(&el) {
		var err error
		if dst, err = e.value(avrobin.AppendBytes(dst, el.Key), u.values, el.Type, el.Value, depth+1); err != nil {
			return dst, pathErr(err, string(el.Key))
		}
	}
	if n > 0 {
		dst = append(dst, 0)
	}
	return dst, it.Err()
}

func (e *Encoder) array(dst []byte, u *unionEnc, v []byte, depth int) ([]byte, error) {
	if depth > e.schema.opts.MaxDepth {
		return e.extJSON(dst, u, bson.TypeArray, v)
	}
	if u.items == nil {
		return dst, fmt.Errorf("%w: no array branch", ErrNotCovered)
	}
	n, err := bsonraw.Count(v)
	if err != nil {
		return dst, err
	}
	dst = avrobin.AppendLong(append(dst, byte(u.arrayBranch)<<1), int64(n))
	it := bsonraw.Elements(v)
	var el bsonraw.Element
	for i := 0; it.Next(&el); i++ {
		if dst, err = e.value(dst, u.items, el.Type, el.Value, depth+1); err != nil {
			return dst, pathErr(err, indexSeg(i))
		}
	}
	if n > 0 {
		dst = append(dst, 0)
	}
	return dst, nil
}

func (e *Encoder) extJSON(dst []byte, u *unionEnc, t bson.Type, v []byte) ([]byte, error) {
	b := u.branch[kExtJSON]
	if b < 0 {
		return dst, fmt.Errorf("%w: no Extended JSON branch for a %s beyond depth %d", ErrNotCovered, t, e.schema.opts.MaxDepth)
	}
	dst = append(dst, byte(b)<<1)
	at := len(dst)
	dst, err := bsonraw.AppendExtJSONValue(dst, t, v)
	return avrobin.PrefixLength(dst, at), err
}

// keySet finds duplicate map keys without allocating once warm: an open-addressing table of
// indexes into keys.
type keySet struct {
	seed  maphash.Seed
	table []int32 // 1 + index into keys, 0 when free
	keys  [][]byte
}

func (s *keySet) reset(n int) {
	if s.table == nil {
		s.seed = maphash.MakeSeed()
	}
	size := 8
	for size < 2*n {
		size <<= 1
	}
	if cap(s.table) < size {
		s.table = make([]int32, size)
	}
	s.table = s.table[:size]
	clear(s.table)
	s.keys = s.keys[:0]
}

// add records k and reports whether it was new.
func (s *keySet) add(k []byte) bool {
	mask := uint64(len(s.table) - 1)
	for i := maphash.Bytes(s.seed, k) & mask; ; i = (i + 1) & mask {
		j := s.table[i]
		if j == 0 {
			s.keys = append(s.keys, k)
			s.table[i] = int32(len(s.keys))
			return true
		}
		if bytes.Equal(s.keys[j-1], k) {
			return false
		}
	}
}
