package mongosink

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// errNotRead marks a record value or key that is in none of the formats value.format allows.
var errNotRead = errors.New("cannot be read")

// avroDecoder turns a Confluent wire-format Avro message into a document (avro.go).
type avroDecoder interface {
	decode(ctx context.Context, b []byte) (any, error)
}

// decoder reads record keys and values into BSON values: a document (bson.D) for objects,
// else the scalar.
type decoder struct {
	format string
	avro   avroDecoder
}

// value reads b, a record's key or value, in d.format. JSON is read as relaxed Extended JSON,
// so that {"$oid": ..} and friends keep their BSON types; Kafka Connect's {"schema","payload"}
// envelope is unwrapped to its payload.
func (d *decoder) value(ctx context.Context, b []byte) (any, error) {
	format := d.format
	if format == FormatAuto {
		format = sniff(b)
	}
	switch format {
	case FormatAvro:
		if d.avro == nil {
			return nil, fmt.Errorf("%w: Avro needs a schema registry", errNotRead)
		}
		return d.avro.decode(ctx, b)
	case FormatBSON:
		if err := bson.Raw(b).Validate(); err != nil {
			return nil, fmt.Errorf("%w as BSON: %v", errNotRead, err)
		}
		var doc bson.D
		if err := bson.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("%w as BSON: %v", errNotRead, err)
		}
		return doc, nil
	case FormatJSON, FormatJSONSchema:
		v, err := parseJSON(b)
		if err != nil {
			return nil, err
		}
		if doc, ok := v.(bson.D); ok {
			if payload, ok := connectPayload(doc); ok {
				v = payload
			} else if format == FormatJSONSchema {
				return nil, fmt.Errorf("%w as json_schema: not a {\"schema\", \"payload\"} object", errNotRead)
			}
		}
		// A JSON string holding an object is a document serialised twice (Debezium's, or a
		// StringConverter's): read the inner one.
		if s, ok := v.(string); ok && looksLikeObject([]byte(s)) {
			if inner, err := parseJSON([]byte(s)); err == nil {
				v = inner
			}
		}
		return v, nil
	}
	if utf8.Valid(b) {
		return string(b), nil
	}
	return nil, fmt.Errorf("%w: neither Avro (magic byte 0), JSON, BSON nor UTF-8 text", errNotRead)
}

// sniff guesses the format of b for value.format=auto.
func sniff(b []byte) string {
	// BSON first: a document whose length's low byte is 0 starts like the wire format.
	switch {
	case isBSON(b):
		return FormatBSON
	case len(b) >= 5 && b[0] == 0:
		return FormatAvro
	}
	t := bytes.TrimSpace(b)
	if len(t) > 0 && (t[0] == '{' || t[0] == '[' || t[0] == '"') {
		return FormatJSON
	}
	return ""
}

// isBSON reports whether b is framed as one BSON document: its length prefix is its length
// and it ends with a zero byte. JSON text never starts with a length that matches.
func isBSON(b []byte) bool {
	return len(b) >= 5 && int(binary.LittleEndian.Uint32(b)) == len(b) && b[len(b)-1] == 0 && b[0] != '{'
}

func looksLikeObject(b []byte) bool {
	t := bytes.TrimSpace(b)
	return len(t) > 1 && t[0] == '{' && t[len(t)-1] == '}'
}

// parseJSON reads a JSON text as relaxed Extended JSON: an object into a bson.D, anything else
// into its value.
func parseJSON(b []byte) (any, error) {
	if v, ok, err := parsePlainJSON(b); ok {
		return v, err
	}
	wrapped := make([]byte, 0, len(b)+6)
	wrapped = append(append(append(wrapped, `{"v":`...), b...), '}')
	var doc bson.D
	if err := bson.UnmarshalExtJSON(wrapped, false, &doc); err != nil {
		return nil, fmt.Errorf("%w as JSON: %v", errNotRead, err)
	}
	if len(doc) != 1 {
		return nil, fmt.Errorf("%w as JSON: not one JSON value", errNotRead)
	}
	return doc[0].Value, nil
}

// connectPayload returns the payload of Kafka Connect's JsonConverter envelope.
func connectPayload(doc bson.D) (any, bool) {
	if len(doc) != 2 {
		return nil, false
	}
	var payload any
	var hasSchema, hasPayload bool
	for _, e := range doc {
		switch e.Key {
		case "schema":
			hasSchema = true
		case "payload":
			hasPayload, payload = true, e.Value
		}
	}
	return payload, hasSchema && hasPayload
}

// lookup returns the value of a top-level field of doc.
func lookup(doc bson.D, key string) (any, bool) {
	for _, e := range doc {
		if e.Key == key {
			return e.Value, true
		}
	}
	return nil, false
}

// without returns doc without the fields drop reports.
func without(doc bson.D, drop func(string) bool) bson.D {
	out := make(bson.D, 0, len(doc))
	for _, e := range doc {
		if !drop(e.Key) {
			out = append(out, e)
		}
	}
	return out
}

// asDocument reads v as a document: a bson.D, or a string of Extended JSON holding one (as
// Debezium and mongorelay's JSON document mode write documents). nil is no document.
func asDocument(v any) (bson.D, bool, error) {
	switch v := v.(type) {
	case nil:
		return nil, false, nil
	case bson.D:
		return v, true, nil
	case string:
		parsed, err := parseJSON([]byte(v))
		if err != nil {
			return nil, false, err
		}
		if parsed == nil {
			return nil, false, nil
		}
		doc, ok := parsed.(bson.D)
		if !ok {
			return nil, false, fmt.Errorf("%w: a document string holds %T, not an object", errNotRead, parsed)
		}
		return doc, true, nil
	}
	return nil, false, fmt.Errorf("%w: %T is not a document", errNotRead, v)
}

// idFromKeyString reads an id written as Extended JSON text in a key (mongorelay's and
// Debezium's {"id": "<extended JSON of _id>"}); text that is not JSON is the id itself.
func idFromKeyString(s string) any {
	if v, err := parseJSON([]byte(s)); err == nil {
		return v
	}
	return s
}
