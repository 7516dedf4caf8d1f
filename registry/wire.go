package registry

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/hamba/avro/v2"
)

// The Confluent wire format: magic byte 0, the schema id as a big-endian uint32, then the Avro
// binary body. Every Confluent serializer and deserializer reads and writes it.
const (
	wireMagic = 0
	// WireHeaderLen is the length of the prefix AppendWireHeader writes.
	WireHeaderLen = 5
)

// ErrNotWireFormat means bytes do not start with the Confluent wire format's header.
var ErrNotWireFormat = errors.New("not in the Confluent wire format (magic byte 0 and a 4-byte schema id)")

// AppendWireHeader appends the wire format's header for schema id to dst.
func AppendWireHeader(dst []byte, id int) []byte {
	return binary.BigEndian.AppendUint32(append(dst, wireMagic), uint32(id))
}

// SplitWire returns the schema id and the Avro body of a wire-format message.
func SplitWire(b []byte) (id int, body []byte, err error) {
	if len(b) < WireHeaderLen || b[0] != wireMagic {
		return 0, nil, ErrNotWireFormat
	}
	return int(binary.BigEndian.Uint32(b[1:WireHeaderLen])), b[WireHeaderLen:], nil
}

// SchemaSource finds a schema's text by its id; *Registry and the HTTP client are both one.
type SchemaSource interface {
	SchemaByID(ctx context.Context, id int) (string, error)
}

// Decoder turns wire-format messages into plain Go values, for tools and tests that read what
// the tasks wrote: records become maps and a union's value is the branch's value itself (as
// Confluent's JSON rendering shows it), not a one-entry map naming the branch. Parsed schemas
// are kept per id.
type Decoder struct {
	src     SchemaSource
	mu      sync.Mutex
	schemas map[int]avro.Schema
}

// NewDecoder returns a Decoder that looks schemas up in src.
func NewDecoder(src SchemaSource) *Decoder {
	return &Decoder{src: src, schemas: make(map[int]avro.Schema)}
}

// Decode decodes one wire-format message.
func (d *Decoder) Decode(ctx context.Context, b []byte) (any, error) {
	id, body, err := SplitWire(b)
	if err != nil {
		return nil, err
	}
	sch, err := d.schema(ctx, id)
	if err != nil {
		return nil, err
	}
	var v any
	if err := avro.Unmarshal(sch, body, &v); err != nil {
		return nil, fmt.Errorf("decode Avro body with schema %d: %w", id, err)
	}
	return unwrapUnions(sch, v), nil
}

// unwrapUnions replaces hamba's generic union values ({"<branch name>": value}) with the value.
func unwrapUnions(s avro.Schema, v any) any {
	if r, ok := s.(*avro.RefSchema); ok {
		s = r.Schema()
	}
	switch s := s.(type) {
	case *avro.RecordSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		for _, f := range s.Fields() {
			if fv, ok := m[f.Name()]; ok {
				m[f.Name()] = unwrapUnions(f.Type(), fv)
			}
		}
	case *avro.ArraySchema:
		if a, ok := v.([]any); ok {
			for i, e := range a {
				a[i] = unwrapUnions(s.Items(), e)
			}
		}
	case *avro.MapSchema:
		if m, ok := v.(map[string]any); ok {
			for k, e := range m {
				m[k] = unwrapUnions(s.Values(), e)
			}
		}
	case *avro.UnionSchema:
		m, ok := v.(map[string]any)
		if !ok || len(m) != 1 {
			return v // null, or a nullable union hamba already unwrapped
		}
		for _, branch := range s.Types() {
			if inner, ok := m[branchName(branch)]; ok {
				return unwrapUnions(branch, inner)
			}
		}
	}
	return v
}

// branchName is the key hamba gives a union branch: a named type's full name, else the type
// and its logical type ("long.timestamp-millis").
func branchName(s avro.Schema) string {
	if r, ok := s.(*avro.RefSchema); ok {
		s = r.Schema()
	}
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	name := string(s.Type())
	if l, ok := s.(avro.LogicalTypeSchema); ok && l.Logical() != nil {
		name += "." + string(l.Logical().Type())
	}
	return name
}

func (d *Decoder) schema(ctx context.Context, id int) (avro.Schema, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.schemas[id]; ok {
		return s, nil
	}
	text, err := d.src.SchemaByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("look up schema %d: %w", id, err)
	}
	// A cache per schema: names defined by one subject's schema must not leak into another's.
	s, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("parse schema %d: %w", id, err)
	}
	d.schemas[id] = s
	return s, nil
}
