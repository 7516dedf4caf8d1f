package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/hamba/avro/v2"
)

// SchemaTypeAvro is the only schema type this registry accepts.
const SchemaTypeAvro = "AVRO"

// CheckSchemaType accepts the schema types a request may name: AVRO, or none
// (Confluent's default).
func CheckSchemaType(schemaType string) error {
	if schemaType == "" || strings.EqualFold(schemaType, SchemaTypeAvro) {
		return nil
	}
	return fmt.Errorf("%w: schema type %s is not supported, only %s is", ErrInvalidSchema, schemaType, SchemaTypeAvro)
}

// Compatibility is a subject's compatibility level, with Confluent's names
// and meanings.
type Compatibility string

// The compatibility levels. BACKWARD: the new schema reads data written with
// the latest one; FORWARD: the latest reads data written with the new one;
// FULL: both. The _TRANSITIVE variants check against every live version, not
// only the latest.
const (
	None               Compatibility = "NONE"
	Backward           Compatibility = "BACKWARD"
	BackwardTransitive Compatibility = "BACKWARD_TRANSITIVE"
	Forward            Compatibility = "FORWARD"
	ForwardTransitive  Compatibility = "FORWARD_TRANSITIVE"
	Full               Compatibility = "FULL"
	FullTransitive     Compatibility = "FULL_TRANSITIVE"
)

var levels = []Compatibility{None, Backward, BackwardTransitive, Forward, ForwardTransitive, Full, FullTransitive}

// ParseCompatibility reads a level name, in any letter case as Confluent
// does.
func ParseCompatibility(s string) (Compatibility, error) {
	c := Compatibility(strings.ToUpper(strings.TrimSpace(s)))
	if slices.Contains(levels, c) {
		return c, nil
	}
	return "", fmt.Errorf("%w: %q", ErrInvalidCompatibility, s)
}

func (c Compatibility) backward() bool {
	return c == Backward || c == BackwardTransitive || c == Full || c == FullTransitive
}

func (c Compatibility) forward() bool {
	return c == Forward || c == ForwardTransitive || c == Full || c == FullTransitive
}

func (c Compatibility) transitive() bool {
	return c == BackwardTransitive || c == ForwardTransitive || c == FullTransitive
}

// check returns one message per earlier version the candidate conflicts
// with under level c; earlier is oldest first and holds live versions only.
func (c Compatibility) check(candidate avro.Schema, earlier []checkedVersion) ([]string, error) {
	if !c.transitive() && len(earlier) > 1 {
		earlier = earlier[len(earlier)-1:]
	}
	var msgs []string
	for _, v := range earlier {
		old, err := v.entry.parsed()
		if err != nil {
			return nil, fmt.Errorf("parse version %d (id %d): %w", v.version, v.entry.id, err)
		}
		// A fresh checker each time: hamba caches verdicts by schema
		// fingerprint, which ignores defaults, so a shared one could reuse
		// the verdict of a schema that differs only in a default.
		if c.backward() {
			if err := avro.NewSchemaCompatibility().Compatible(candidate, old); err != nil {
				msgs = append(msgs, fmt.Sprintf("version %d (id %d): the new schema cannot read data written with it: %v", v.version, v.entry.id, err))
			}
		}
		if c.forward() {
			if err := avro.NewSchemaCompatibility().Compatible(old, candidate); err != nil {
				msgs = append(msgs, fmt.Sprintf("version %d (id %d): it cannot read data written with the new schema: %v", v.version, v.entry.id, err))
			}
		}
	}
	return msgs, nil
}

// checkedVersion is an earlier version a candidate is checked against.
type checkedVersion struct {
	version int
	entry   *entry
}

// parseAvro parses a schema on its own: avro.Parse would share
// avro.DefaultSchemaCache, so a schema could borrow a named type that only
// some other subject's schema defines, and the cache would grow forever.
func parseAvro(text string) (avro.Schema, error) {
	s, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	return s, nil
}

// parse checks that text is an Avro schema and returns its canonical form.
func parse(text string) (string, avro.Schema, error) {
	canon, err := Canonical(text)
	if err != nil {
		return "", nil, err
	}
	s, err := parseAvro(canon)
	if err != nil {
		return "", nil, err
	}
	return canon, s, nil
}

// Canonical returns the form under which the registry identifies a schema:
// the same JSON without insignificant whitespace, object keys in a fixed
// order (name, type, namespace, doc, aliases, fields, symbols, items, values,
// size, logicalType, precision, scale, default, order, then the others
// sorted), and {"type":"int"} written "int". Nothing is dropped, so defaults,
// docs and custom properties still tell schemas apart; two schemas that
// differ only in formatting or key order get the same id, as in Confluent.
// It checks JSON syntax only, not Avro.
func Canonical(schema string) (string, error) {
	dec := json.NewDecoder(strings.NewReader(schema))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("%w: not JSON: %v", ErrInvalidSchema, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("%w: trailing data after the JSON value", ErrInvalidSchema)
	}
	var b bytes.Buffer
	writeCanonical(&b, v)
	return b.String(), nil
}

var keyRank = map[string]int{
	"name": 1, "type": 2, "namespace": 3, "doc": 4, "aliases": 5, "fields": 6, "symbols": 7,
	"items": 8, "values": 9, "size": 10, "logicalType": 11, "precision": 12, "scale": 13,
	"default": 14, "order": 15,
}

var primitives = []string{"null", "boolean", "int", "long", "float", "double", "bytes", "string"}

func writeCanonical(b *bytes.Buffer, v any) {
	switch v := v.(type) {
	case map[string]any:
		if t, ok := v["type"].(string); ok && len(v) == 1 && slices.Contains(primitives, t) {
			writeString(b, t)
			return
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, c string) int {
			ra, rc := rank(a), rank(c)
			if ra != rc {
				return ra - rc
			}
			return strings.Compare(a, c)
		})
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			writeCanonical(b, v[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonical(b, e)
		}
		b.WriteByte(']')
	case string:
		writeString(b, v)
	case json.Number:
		b.WriteString(v.String())
	case bool:
		if v {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	default: // nil: json.Decoder yields no other types
		b.WriteString("null")
	}
}

func rank(key string) int {
	if r, ok := keyRank[key]; ok {
		return r
	}
	return len(keyRank) + 1
}

// writeString quotes s as JSON without escaping <, > and &, which
// json.Marshal would turn into \u003c and friends.
func writeString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	b.Truncate(b.Len() - 1)
}
