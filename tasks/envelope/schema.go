package envelope

import (
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"
	"github.com/mongorelay/mongorelay/tasks/avroschema"
)

// Names are the Avro names of one topic's schemas, after Debezium's convention: the topic is
// the namespace of the Key, Value (the document) and Envelope records.
type Names struct {
	Namespace string // the topic as an Avro namespace
	Key       string // <namespace>.Key
	Value     string // <namespace>.Value, the document record in typed mode
	Envelope  string // <namespace>.Envelope
}

// NamesFor derives the names from a topic such as "prefix.shop.orders". Each dot-separated part
// keeps [A-Za-z0-9_], any other character becomes '_', and a part that is empty or starts with
// a digit gets a leading '_' ("my-app.2024" → "my_app._2024").
func NamesFor(topic string) Names {
	parts := strings.Split(topic, ".")
	for i, p := range parts {
		b := []byte(p)
		for j, c := range b {
			if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				b[j] = '_'
			}
		}
		if len(b) == 0 || b[0] >= '0' && b[0] <= '9' {
			b = append([]byte{'_'}, b...)
		}
		parts[i] = string(b)
	}
	ns := strings.Join(parts, ".")
	return Names{Namespace: ns, Key: ns + ".Key", Value: ns + ".Value", Envelope: ns + ".Envelope"}
}

// KeySchema returns the key schema of a topic: {id: string}.
func KeySchema(n Names) string {
	return `{"type":"record","name":"` + n.Key + `","fields":[{"name":"id","type":"string"}]}`
}

const (
	jsonDocument      = `{"type":"string","connect.name":"io.debezium.data.Json"}`
	updateDescription = `{"type":"record","name":"mongorelay.UpdateDescription","fields":[` +
		`{"name":"updatedFields","type":["null",` + jsonDocument + `],"default":null},` +
		`{"name":"removedFields","type":["null",{"type":"array","items":"string"}],"default":null},` +
		`{"name":"truncatedArrays","type":["null",{"type":"array","items":{"type":"record","name":"mongorelay.TruncatedArray","fields":[` +
		`{"name":"field","type":"string"},{"name":"newSize","type":"int"}]}}],"default":null}]}`
	source = `{"type":"record","name":"mongorelay.Source","fields":[` +
		`{"name":"connector","type":"string"},` +
		`{"name":"name","type":"string"},` +
		`{"name":"ts_ms","type":"long"},` +
		`{"name":"snapshot","type":"string","default":"false"},` +
		`{"name":"db","type":"string"},` +
		`{"name":"collection","type":"string"},` +
		`{"name":"ord","type":"int"},` +
		`{"name":"resume_token","type":["null","string"],"default":null},` +
		`{"name":"txn_id","type":["null","string"],"default":null},` +
		`{"name":"lsid","type":["null","string"],"default":null},` +
		`{"name":"txnNumber","type":["null","long"],"default":null}]}`
)

// ValueSchema is the value schema of one topic: the envelope, or in output.shape=document the
// document itself (DocumentValueSchema); in typed or JSON document mode.
type ValueSchema struct {
	names    Names
	document *avroschema.Schema // nil in JSON mode
	// fields are the change's fields appended to the document record in output.shape=document.
	fields AddedFields
	text   string
	parsed avro.Schema
}

// TypedValueSchema wraps the document schema of a topic (named Names.Value) in the envelope.
func TypedValueSchema(n Names, document *avroschema.Schema) (*ValueSchema, error) {
	if document.Name() != n.Value {
		return nil, fmt.Errorf("envelope schema %s: document record is %s, want %s", n.Envelope, document.Name(), n.Value)
	}
	return newValueSchema(n, document, document.String(), `"`+n.Value+`"`)
}

// JSONValueSchema is the fixed envelope of document.mode=json.
func JSONValueSchema(n Names) (*ValueSchema, error) {
	return newValueSchema(n, nil, jsonDocument, jsonDocument)
}

func newValueSchema(n Names, document *avroschema.Schema, before, after string) (*ValueSchema, error) {
	text := `{"type":"record","name":"` + n.Envelope + `","fields":[` +
		`{"name":"before","type":["null",` + before + `],"default":null},` +
		`{"name":"after","type":["null",` + after + `],"default":null},` +
		`{"name":"updateDescription","type":["null",` + updateDescription + `],"default":null},` +
		`{"name":"source","type":` + source + `},` +
		`{"name":"op","type":"string"},` +
		`{"name":"ts_ms","type":["null","long"],"default":null}]}`
	parsed, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("envelope schema %s: %w", n.Envelope, err)
	}
	return &ValueSchema{names: n, document: document, text: text, parsed: parsed}, nil
}

// DocumentValueSchema is the value schema of output.shape=document: the document record
// (named Names.Value) with fields appended as optional fields, or in JSON document mode
// (document nil) a string holding the document's Extended JSON, fields included.
func DocumentValueSchema(n Names, document *avroschema.Schema, fields AddedFields) (*ValueSchema, error) {
	text := jsonDocument
	if document != nil {
		if document.Name() != n.Value {
			return nil, fmt.Errorf("document schema of %s: record is %s, want %s", n.Namespace, document.Name(), n.Value)
		}
		// A record's text ends with its fields' closing "]}": the added fields go before it.
		doc := document.String()
		text = doc[:len(doc)-2] + fields.avroSchema() + "]}"
	}
	parsed, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("document schema %s: %w", n.Value, err)
	}
	return &ValueSchema{names: n, document: document, fields: fields, text: text, parsed: parsed}, nil
}

// String returns the schema's Avro JSON, the text to register.
func (s *ValueSchema) String() string { return s.text }

// Avro returns the schema as parsed by hamba/avro.
func (s *ValueSchema) Avro() avro.Schema { return s.parsed }

// Document returns the document schema in typed mode, nil in JSON mode.
func (s *ValueSchema) Document() *avroschema.Schema { return s.document }

// ParseTypedValueSchema extracts the document schema from a registered typed value schema (an
// envelope, or a document record of DocumentValueSchema without its added fields), to merge
// new shapes into it.
func ParseTypedValueSchema(text string, opts avroschema.Options) (*avroschema.Schema, error) {
	parsed, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("parse envelope schema: %w", err)
	}
	rec, ok := parsed.(*avro.RecordSchema)
	if !ok {
		return nil, fmt.Errorf("parse envelope schema: %s is not a record", parsed.Type())
	}
	if rec.FullName() == opts.Name {
		return parseDocumentSchema(rec, opts)
	}
	for _, f := range rec.Fields() {
		if f.Name() != "before" {
			continue
		}
		if u, ok := f.Type().(*avro.UnionSchema); ok && len(u.Types()) == 2 {
			return avroschema.FromAvro(u.Types()[1], opts)
		}
	}
	return nil, fmt.Errorf("parse envelope schema %s: no typed before field", rec.FullName())
}

// Evolve returns the document schema covering latest (nil if none yet) and the documents of ev:
// the schema to register after Encoder.AppendValue reported avroschema.ErrNotCovered.
func Evolve(latest *avroschema.Schema, ev *Event, opts avroschema.Options) (*avroschema.Schema, error) {
	for _, doc := range [...][]byte{ev.FullDocumentBeforeChange, ev.FullDocument} {
		if doc == nil {
			continue
		}
		shape, err := avroschema.Infer(doc, opts)
		if err != nil {
			return nil, err
		}
		if latest, err = avroschema.Merge(latest, shape); err != nil {
			return nil, err
		}
	}
	return latest, nil
}

// parseDocumentSchema reads a document record of DocumentValueSchema, leaving out the fields
// AddedFields appended.
func parseDocumentSchema(rec *avro.RecordSchema, opts avroschema.Options) (*avroschema.Schema, error) {
	var fields []*avro.Field
	for _, f := range rec.Fields() {
		if isAddedField(f.Name()) {
			continue
		}
		field, err := avro.NewField(f.Name(), f.Type(), avro.WithProps(f.Props()))
		if err != nil {
			return nil, fmt.Errorf("parse document schema %s: field %s: %w", rec.FullName(), f.Name(), err)
		}
		fields = append(fields, field)
	}
	doc, err := avro.NewRecordSchema(rec.Name(), rec.Namespace(), fields, avro.WithProps(rec.Props()))
	if err != nil {
		return nil, fmt.Errorf("parse document schema %s: %w", rec.FullName(), err)
	}
	return avroschema.FromAvro(doc, opts)
}

// isAddedField tells whether an Avro field name is one AddedFields writes.
func isAddedField(name string) bool {
	for n := range addable {
		if name == "__"+strings.ReplaceAll(n, ".", "_") {
			return true
		}
	}
	return false
}
