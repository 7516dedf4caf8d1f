package avroschema

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
)

// kind is one BSON value representation that can be a branch of a value's union. The set of
// kinds seen at a position, not the order in which they were seen, decides the schema, which is
// what makes merging order-independent.
type kind uint8

const (
	kBoolean kind = iota
	kInt
	kLong
	kDouble
	kString
	kObjectID
	kDecimal
	kExtJSON
	kDateTime
	kBytes
	kBinary
	kRegex
	kDBPointer
	kJavaScript
	kCodeWithScope
	kSymbol
	kTimestamp
	kMinKey
	kMaxKey
	kNull // an explicit null or undefined field, told apart from an absent one
	numKinds
)

type kindSet uint32

func (s kindSet) has(k kind) bool { return s&(1<<k) != 0 }

// family returns the set of kinds in family fam.
func family(fam []kind) kindSet {
	var s kindSet
	for _, k := range fam {
		s |= 1 << k
	}
	return s
}

// bsonNamespace holds the fixed records that represent BSON types Avro lacks.
const bsonNamespace = "mongorelay.bson"

// Property names written into schemas.
const (
	propName = "mongodb.name" // the original field name, when it had to be sanitized
	propType = "mongodb.type" // what a string really holds: objectId, decimal128, extjson
)

// kindInfo says how a kind appears in a schema: bare is the Avro type used when the kind is
// alone in its family within a union; record is the name of the fixed record that holds it
// otherwise (or always, for kinds with no bare form).
type kindInfo struct {
	bare   string
	record string
	fields string
}

const (
	hintObjectID = `{"type":"string","mongodb.type":"objectId"}`
	hintDecimal  = `{"type":"string","mongodb.type":"decimal128"}`
	hintExtJSON  = `{"type":"string","mongodb.type":"extjson"}`
	timestampMs  = `{"type":"long","logicalType":"timestamp-millis"}`
)

var kinds = [numKinds]kindInfo{
	kBoolean:       {bare: `"boolean"`},
	kInt:           {bare: `"int"`},
	kLong:          {bare: `"long"`, record: "Int64", fields: `[{"name":"value","type":"long"}]`},
	kDouble:        {bare: `"double"`},
	kString:        {bare: `"string"`, record: "String", fields: `[{"name":"value","type":"string"}]`},
	kObjectID:      {bare: hintObjectID, record: "ObjectId", fields: `[{"name":"value","type":` + hintObjectID + `}]`},
	kDecimal:       {bare: hintDecimal, record: "Decimal128", fields: `[{"name":"value","type":` + hintDecimal + `}]`},
	kExtJSON:       {bare: hintExtJSON, record: "ExtJSON", fields: `[{"name":"value","type":` + hintExtJSON + `}]`},
	kDateTime:      {bare: timestampMs, record: "DateTime", fields: `[{"name":"value","type":` + timestampMs + `}]`},
	kBytes:         {bare: `"bytes"`, record: "Bytes", fields: `[{"name":"value","type":"bytes"}]`},
	kBinary:        {record: "Binary", fields: `[{"name":"subtype","type":"int"},{"name":"data","type":"bytes"}]`},
	kRegex:         {record: "Regex", fields: `[{"name":"pattern","type":"string"},{"name":"options","type":"string"}]`},
	kDBPointer:     {record: "DBPointer", fields: `[{"name":"ref","type":"string"},{"name":"id","type":` + hintObjectID + `}]`},
	kJavaScript:    {record: "JavaScript", fields: `[{"name":"code","type":"string"}]`},
	kCodeWithScope: {record: "JavaScriptWithScope", fields: `[{"name":"code","type":"string"},{"name":"scope","type":` + hintExtJSON + `}]`},
	kSymbol:        {record: "Symbol", fields: `[{"name":"symbol","type":"string"}]`},
	kTimestamp:     {record: "Timestamp", fields: `[{"name":"t","type":"long"},{"name":"i","type":"long"}]`},
	kMinKey:        {record: "MinKey", fields: `[]`},
	kMaxKey:        {record: "MaxKey", fields: `[]`},
	kNull:          {record: "Null", fields: `[]`},
}

// families list kinds whose Avro types a reader cannot tell apart, owner first. Readers resolve
// a writer's union branch to the first reader branch of the same Avro type or one it promotes
// to (fastavro ignores logical types and properties; string and bytes promote to each other),
// so a union holds at most one bare member per family. Only the owner is ever written bare;
// the others always go into their wrapper records. A value written bare therefore never has to
// be read through another kind's branch when a later kind joins the union.
var families = [...][]kind{
	{kDateTime, kLong},
	{kString, kObjectID, kDecimal, kExtJSON, kBytes},
}

// union is the type of one value position (a field, an array item, a map value): always
// nullable, holding at most one branch per kind, one document record, one array and one map.
type union struct {
	kinds kindSet
	// legacy holds the kinds that registered schemas of an earlier mapping wrote bare although
	// they are not their family's owner (and the owner, when it was bare beside them): they stay
	// bare, since their old values are read through those branches, and the family's other
	// kinds are wrapped.
	legacy kindSet
	record string // full name of the document record, "" if no document was seen as a record
	items  *union // array branch
	values *union // map branch
}

func (u *union) clone() *union {
	if u == nil {
		return nil
	}
	c := *u
	c.items, c.values = u.items.clone(), u.values.clone()
	return &c
}

// add adds a kind to u.
func (u *union) add(k kind) {
	u.kinds |= 1 << k
	u.normalize()
}

// normalize applies the one numeric widening left: int32 values join a bare long branch that a
// legacy schema has (Avro int promotes to long without loss). Anywhere else an int32 keeps its
// int branch, beside double or the Int64 wrapper, so that it reads back as an int.
func (u *union) normalize() {
	if u.kinds.has(kInt) && u.kinds.has(kLong) && u.legacy.has(kLong) {
		u.kinds &^= 1 << kInt
	}
}

// bare returns the kinds of u written as bare Avro types.
func (u *union) bare() kindSet {
	var wrapped kindSet
	for _, fam := range families {
		present := u.kinds & family(fam)
		keep := u.legacy & present
		if keep == 0 {
			keep = present & (1 << fam[0])
		}
		wrapped |= present &^ keep
	}
	var bare kindSet
	for k := range numKinds {
		if u.kinds.has(k) && !wrapped.has(k) && kinds[k].bare != "" {
			bare |= 1 << k
		}
	}
	return bare
}

// merge adds o's branches to u.
func (u *union) merge(o *union) error {
	u.kinds |= o.kinds
	u.legacy |= o.legacy
	u.normalize()
	switch {
	case o.record == "" || o.record == u.record:
	case u.record == "":
		u.record = o.record
	default:
		return fmt.Errorf("documents named both %s and %s", u.record, o.record)
	}
	var err error
	if u.items, err = mergeOptional(u.items, o.items); err != nil {
		return fmt.Errorf("array items: %w", err)
	}
	if u.values, err = mergeOptional(u.values, o.values); err != nil {
		return fmt.Errorf("map values: %w", err)
	}
	return nil
}

func mergeOptional(a, b *union) (*union, error) {
	if b == nil {
		return a, nil
	}
	if a == nil {
		return b.clone(), nil
	}
	return a, a.merge(b)
}

// branchKind tells what a union branch is.
type branchKind uint8

const (
	branchNull branchKind = iota
	branchBare
	branchWrapped
	branchRecord
	branchArray
	branchMap
)

type branch struct {
	what branchKind
	kind kind
}

// branches lists u's branches in their canonical order, which depends only on the union's
// content: null first (so that the default null is valid), then bare types, wrapper and BSON
// records in kind order, the document record, the array, the map.
func (u *union) branches() []branch {
	bs := []branch{{what: branchNull}}
	bare := u.bare()
	for _, k := range bareOrder {
		if bare.has(k) {
			bs = append(bs, branch{what: branchBare, kind: k})
		}
	}
	for k := range numKinds {
		if u.kinds.has(k) && !bare.has(k) {
			bs = append(bs, branch{what: branchWrapped, kind: k})
		}
	}
	if u.record != "" {
		bs = append(bs, branch{what: branchRecord})
	}
	if u.items != nil {
		bs = append(bs, branch{what: branchArray})
	}
	if u.values != nil {
		bs = append(bs, branch{what: branchMap})
	}
	return bs
}

// bareOrder is the order of bare branches in a union.
var bareOrder = [...]kind{kBoolean, kInt, kLong, kDateTime, kDouble, kString, kObjectID, kDecimal, kExtJSON, kBytes}

// field is one field of a document record.
type field struct {
	name string // the BSON key
	avro string // the sanitized Avro field name
	typ  *union
}

// record is the Avro record of the documents found at one path.
type record struct {
	name   string // full Avro name
	fields []*field
	byName map[string]int // BSON key → index in fields
	byAvro map[string]int // Avro name → index in fields
}

func newRecord(name string) *record {
	return &record{name: name, byName: map[string]int{}, byAvro: map[string]int{}}
}

// add appends a field, failing if its sanitized name is taken by another key.
func (r *record) add(f *field) error {
	if i, taken := r.byAvro[f.avro]; taken {
		return fmt.Errorf("keys %q and %q both sanitize to the Avro name %q", r.fields[i].name, f.name, f.avro)
	}
	r.byName[f.name] = len(r.fields)
	r.byAvro[f.avro] = len(r.fields)
	r.fields = append(r.fields, f)
	return nil
}

func (r *record) clone() *record {
	c := newRecord(r.name)
	for _, f := range r.fields {
		// Cannot fail: the names were unique in r.
		_ = c.add(&field{name: f.name, avro: f.avro, typ: f.typ.clone()})
	}
	return c
}

// childName is the full name of the record of documents found under field f of r. Field names
// are unique within r and hold no dot, so the name is unique in the schema; the "_record"
// suffix keeps the simple name from ever being a primitive type name such as "string".
func childName(r *record, f string) string {
	return r.name + "." + f + "_record"
}

// Options configure inference and encoding. A schema carries the options it was built with and
// schemas merge only when their options match.
type Options struct {
	// Name is the full Avro name of the document record, e.g. "mongorelay.shop.orders.Value";
	// nested records are named after it and their path. Required.
	Name string
	// MaxDepth is how deep documents and arrays nest before the rest of a branch is written as a
	// canonical Extended JSON string (property "mongodb.type":"extjson"): the root's fields are at
	// depth 1. Default 32. Deep trees would otherwise give schemas too large for registries and
	// decoders that recurse.
	MaxDepth int
	// MaxFields is how many keys a subdocument may have and still be a record; a wider one is a
	// map. Default 256.
	MaxFields int
}

const (
	defaultMaxDepth  = 32
	defaultMaxFields = 256
)

func (o Options) withDefaults() (Options, error) {
	if o.MaxDepth == 0 {
		o.MaxDepth = defaultMaxDepth
	}
	if o.MaxFields == 0 {
		o.MaxFields = defaultMaxFields
	}
	if o.MaxDepth < 1 || o.MaxFields < 1 {
		return o, fmt.Errorf("avroschema options: MaxDepth %d and MaxFields %d must be positive", o.MaxDepth, o.MaxFields)
	}
	for part := range strings.SplitSeq(o.Name, ".") {
		if !validName(part) {
			return o, fmt.Errorf("avroschema options: invalid Avro name %q", o.Name)
		}
	}
	return o, nil
}

// Schema is an immutable inferred document schema: the Avro record for one collection's
// documents, with its text and hamba form.
type Schema struct {
	opts    Options
	records map[string]*record
	text    string
	parsed  avro.Schema
}

// ErrNotSchema is wrapped by errors about Avro schemas this package did not produce.
var ErrNotSchema = errors.New("not an avroschema document schema")

// finish renders and validates a schema built from records.
func finish(opts Options, records map[string]*record) (*Schema, error) {
	s := &Schema{opts: opts, records: records}
	s.text = s.render()
	// A fresh cache per parse: hamba's default cache is process-global and would keep every
	// superseded version of our evolving names forever.
	parsed, err := avro.ParseWithCache(s.text, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("validate schema %s: %w", opts.Name, err)
	}
	s.parsed = parsed
	return s, nil
}

// String returns the Avro schema as JSON, the text to register. It is deterministic: equal
// schemas have equal text.
func (s *Schema) String() string { return s.text }

// Avro returns the schema as parsed by hamba/avro.
func (s *Schema) Avro() avro.Schema { return s.parsed }

// Name returns the full name of the document record.
func (s *Schema) Name() string { return s.opts.Name }

// Options returns the options the schema was built with, defaults filled in.
func (s *Schema) Options() Options { return s.opts }

// Equal reports whether s and o are the same schema, field order included.
func (s *Schema) Equal(o *Schema) bool { return s.text == o.text && s.opts == o.opts }

// validName reports whether s is a valid Avro name: [A-Za-z_][A-Za-z0-9_]*.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// sanitize maps a BSON key to an Avro field name. Valid names are kept; any other becomes its
// cleaned form plus a hash of the original, so the result depends on the key alone (never on
// which keys came first) and "a.b" and "a_b" cannot collide.
func sanitize(key string) string {
	if validName(key) {
		return key
	}
	b := make([]byte, 0, len(key)+10)
	if key == "" || (key[0] >= '0' && key[0] <= '9') {
		b = append(b, '_')
	}
	for _, r := range key {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b = append(b, byte(r))
		default:
			b = append(b, '_')
		}
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	b = append(b, '_')
	b = strconv.AppendUint(b, uint64(h.Sum32()), 36)
	return string(b)
}

// dynamicKeys reports whether a document's keys look like data (numbers, ObjectIds, UUIDs,
// dates) rather than field names: such a document is a map.
func dynamicKey(k []byte) bool {
	switch {
	case len(k) == 0:
		return false
	case allDigits(k) || (k[0] == '-' && len(k) > 1 && allDigits(k[1:])):
		return true
	case len(k) == 24 && allHex(k):
		return true
	case len(k) == 36 && k[8] == '-' && k[13] == '-' && k[18] == '-' && k[23] == '-':
		return allHex(k[:8]) && allHex(k[9:13]) && allHex(k[14:18]) && allHex(k[19:23]) && allHex(k[24:])
	case len(k) >= 10 && k[4] == '-' && k[7] == '-':
		return allDigits(k[:4]) && allDigits(k[5:7]) && allDigits(k[8:10])
	}
	return false
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

func allHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return len(b) > 0
}

// sortedNew returns the fields of from that into lacks, sorted by BSON key.
func sortedNew(into, from *record) []*field {
	var out []*field
	for _, f := range from.fields {
		if _, ok := into.byName[f.name]; !ok {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b *field) int { return strings.Compare(a.name, b.name) })
	return out
}
