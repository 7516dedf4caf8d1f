package avroschema

import (
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"
	"github.com/mongorelay/mongorelay/tasks/avroschema/bsonraw"
)

// render writes the schema as Avro JSON. Each named type is defined where it first appears in
// a depth-first walk from the root and referenced by full name after that.
func (s *Schema) render() string {
	r := renderer{records: s.records, defined: map[string]bool{}}
	r.record(s.records[s.opts.Name])
	return string(r.b)
}

type renderer struct {
	records map[string]*record
	defined map[string]bool
	b       []byte
}

func (r *renderer) record(rec *record) {
	if r.defined[rec.name] {
		r.b = bsonraw.AppendJSONString(r.b, []byte(rec.name))
		return
	}
	r.defined[rec.name] = true
	r.b = append(r.b, `{"type":"record","name":`...)
	r.b = bsonraw.AppendJSONString(r.b, []byte(rec.name))
	r.b = append(r.b, `,"fields":[`...)
	for i, f := range rec.fields {
		if i > 0 {
			r.b = append(r.b, ',')
		}
		r.b = append(r.b, `{"name":"`...)
		r.b = append(r.b, f.avro...)
		r.b = append(r.b, `","type":`...)
		r.union(f.typ)
		r.b = append(r.b, `,"default":null`...)
		if f.avro != f.name {
			r.b = append(r.b, `,"`+propName+`":`...)
			r.b = bsonraw.AppendJSONString(r.b, []byte(f.name))
		}
		r.b = append(r.b, '}')
	}
	r.b = append(r.b, "]}"...)
}

func (r *renderer) union(u *union) {
	r.b = append(r.b, '[')
	for i, br := range u.branches() {
		if i > 0 {
			r.b = append(r.b, ',')
		}
		switch br.what {
		case branchNull:
			r.b = append(r.b, `"null"`...)
		case branchBare:
			r.b = append(r.b, kinds[br.kind].bare...)
		case branchWrapped:
			r.bsonRecord(br.kind)
		case branchRecord:
			r.record(r.records[u.record])
		case branchArray:
			r.b = append(r.b, `{"type":"array","items":`...)
			r.union(u.items)
			r.b = append(r.b, '}')
		case branchMap:
			r.b = append(r.b, `{"type":"map","values":`...)
			r.union(u.values)
			r.b = append(r.b, '}')
		}
	}
	r.b = append(r.b, ']')
}

func (r *renderer) bsonRecord(k kind) {
	name := bsonNamespace + "." + kinds[k].record
	if r.defined[name] {
		r.b = append(r.b, `"`+name+`"`...)
		return
	}
	r.defined[name] = true
	r.b = append(r.b, `{"type":"record","name":"`+name+`","fields":`+kinds[k].fields+`}`...)
}

// Parse reads a document schema from its Avro JSON, typically the latest version registered
// for a subject, so that it can be merged with new shapes.
func Parse(text string, opts Options) (*Schema, error) {
	parsed, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("parse document schema: %w", err)
	}
	return FromAvro(parsed, opts)
}

// FromAvro converts a hamba schema of a document record (for example the "after" branch of an
// envelope) back into a Schema. It accepts only what this package produces.
func FromAvro(sch avro.Schema, opts Options) (*Schema, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	rec, ok := deref(sch).(*avro.RecordSchema)
	if !ok || rec.FullName() != opts.Name {
		return nil, fmt.Errorf("%w: want record %s, got %s", ErrNotSchema, opts.Name, sch.Type())
	}
	p := parser{records: map[string]*record{}}
	if err := p.record(rec); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotSchema, err)
	}
	return finish(opts, p.records)
}

type parser struct {
	records map[string]*record
}

func deref(s avro.Schema) avro.Schema {
	if ref, ok := s.(*avro.RefSchema); ok {
		return ref.Schema()
	}
	return s
}

func (p *parser) record(rs *avro.RecordSchema) error {
	if _, done := p.records[rs.FullName()]; done {
		return nil
	}
	rec := newRecord(rs.FullName())
	p.records[rec.name] = rec
	for _, f := range rs.Fields() {
		name := f.Name()
		if orig, ok := f.Prop(propName).(string); ok {
			name = orig
		}
		if sanitize(name) != f.Name() {
			return fmt.Errorf("field %s of %s: name is not the sanitized form of %q", f.Name(), rec.name, name)
		}
		u, err := p.union(f.Type())
		if err != nil {
			return fmt.Errorf("field %s of %s: %w", f.Name(), rec.name, err)
		}
		if err := rec.add(&field{name: name, avro: f.Name(), typ: u}); err != nil {
			return fmt.Errorf("record %s: %w", rec.name, err)
		}
	}
	return nil
}

func (p *parser) union(s avro.Schema) (*union, error) {
	us, ok := s.(*avro.UnionSchema)
	if !ok || len(us.Types()) == 0 || us.Types()[0].Type() != avro.Null {
		return nil, fmt.Errorf("type %s is not a union starting with null", s.Type())
	}
	u := &union{}
	var bare kindSet
	for _, b := range us.Types()[1:] {
		b = deref(b)
		switch b := b.(type) {
		case *avro.RecordSchema:
			if k, ok := bsonRecordKind(b.FullName()); ok {
				u.kinds |= 1 << k
				continue
			}
			if u.record != "" {
				return nil, fmt.Errorf("two document records %s and %s", u.record, b.FullName())
			}
			u.record = b.FullName()
			if err := p.record(b); err != nil {
				return nil, err
			}
		case *avro.ArraySchema:
			items, err := p.union(b.Items())
			if err != nil {
				return nil, fmt.Errorf("array items: %w", err)
			}
			u.items = items
		case *avro.MapSchema:
			values, err := p.union(b.Values())
			if err != nil {
				return nil, fmt.Errorf("map values: %w", err)
			}
			u.values = values
		case *avro.PrimitiveSchema:
			k, err := primitiveKind(b)
			if err != nil {
				return nil, err
			}
			u.kinds |= 1 << k
			bare |= 1 << k
		default:
			return nil, fmt.Errorf("unexpected union branch %s", b.Type())
		}
	}
	// A family member other than the owner written bare comes from the earlier mapping: the
	// family's bare branches then stay as they are (see union.legacy).
	for _, fam := range families {
		if fb := bare & family(fam); fb&^(1<<fam[0]) != 0 {
			u.legacy |= fb
		}
	}
	if u.bare() != bare {
		return nil, fmt.Errorf("bare branches (kinds %b) that neither mapping writes (kinds %b)", bare, u.bare())
	}
	return u, nil
}

func bsonRecordKind(fullName string) (kind, bool) {
	name, ok := strings.CutPrefix(fullName, bsonNamespace+".")
	if !ok {
		return 0, false
	}
	for k := range numKinds {
		if kinds[k].record == name {
			return k, true
		}
	}
	return 0, false
}

func primitiveKind(p *avro.PrimitiveSchema) (kind, error) {
	hint, _ := p.Prop(propType).(string)
	logical := ""
	if l := p.Logical(); l != nil {
		logical = string(l.Type())
	}
	switch {
	case p.Type() == avro.Boolean:
		return kBoolean, nil
	case p.Type() == avro.Int:
		return kInt, nil
	case p.Type() == avro.Long && logical == "":
		return kLong, nil
	case p.Type() == avro.Long && logical == string(avro.TimestampMillis):
		return kDateTime, nil
	case p.Type() == avro.Double:
		return kDouble, nil
	case p.Type() == avro.Bytes && logical == "":
		return kBytes, nil
	case p.Type() == avro.String && hint == "":
		return kString, nil
	case p.Type() == avro.String && hint == "objectId":
		return kObjectID, nil
	case p.Type() == avro.String && hint == "decimal128":
		return kDecimal, nil
	case p.Type() == avro.String && hint == "extjson":
		return kExtJSON, nil
	}
	return 0, fmt.Errorf("unexpected union branch %s (logical type %q, hint %q)", p.Type(), logical, hint)
}
