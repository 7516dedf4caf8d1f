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

// Decoder turns wire-format messages into generic Go values (records become maps), for tools
// and tests that read what the tasks wrote. Parsed schemas are kept per id.
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
	return v, nil
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
