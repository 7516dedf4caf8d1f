package tasks

import (
	"context"
	"errors"
	"fmt"

	"github.com/mongorelay/mongorelay/registry"
	"github.com/mongorelay/mongorelay/tasks/avroschema"
	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/envelope"
)

// SchemaRegistry is what a task needs of a schema registry. The built-in *registry.Registry and
// the external registry's client (behind client.Cached) both have these methods.
type SchemaRegistry interface {
	Register(ctx context.Context, subject, schema string) (int, error)
	Latest(ctx context.Context, subject string) (registry.Schema, error)
	SchemaAt(ctx context.Context, subject string, version int) (registry.Schema, error)
}

// maxRegisterAttempts bounds the merge-and-register loop when other tasks keep registering
// newer versions of the same subject at the same moment; each round merges their version in,
// so it converges in as many rounds as there are concurrent writers.
const maxRegisterAttempts = 8

// recordEncoder writes one topic's keys and values in the Confluent wire format. In typed mode
// it evolves the value schema when a document does not fit: it merges the document's shape
// into the newest registered version and registers the result (DESIGN.md 4), so that tasks
// writing one topic converge on one schema instead of alternating. Not safe for concurrent use.
type recordEncoder struct {
	reg     SchemaRegistry
	typed   bool
	names   envelope.Names
	subject string
	src     envelope.Source
	opts    avroschema.Options

	// evolutions, shared by the process's tasks, makes an evolution of the subject atomic
	// among them; nil when there is none to share.
	evolutions *Evolutions
	// stalls times the evolutions, which wait on the registry (nil: not timed).
	stalls *stalls

	keyID   int
	valueID int
	value   *envelope.Encoder // nil in typed mode until the first document
	// encode is value's AppendValue, or AppendDocument in output.shape=document.
	encode func(dst []byte, ev *envelope.Event, tsMs int64) ([]byte, error)

	// document is output.shape=document: the value is the document, written by
	// envelope.Encoder.AppendDocument in a DocumentValueSchema.
	document bool
	fields   envelope.AddedFields

	// appendKey appends ev's key and appendValue its value, in the connector's key.format,
	// value.format and output.shape: chosen once, when the encoder is made. appendValue
	// returns errors envelope.ErrTombstone and envelope.ErrNoDocument as they are.
	appendKey   func(dst []byte, ev *envelope.Event) ([]byte, error)
	appendValue func(ctx context.Context, dst []byte, ev *envelope.Event, tsMs int64) ([]byte, error)
}

// newRecordEncoder returns the encoder of collection coll of db, which writes to its topic
// (config.Config.Topic). Its records are named after the topic, or under the RecordName
// strategies after the collection's own topic, so that each collection sharing a topic has its
// own subject; a routed record's key names the collection (envelope.CollectionField).
func newRecordEncoder(ctx context.Context, reg SchemaRegistry, cfg *config.Config, db, coll string) (*recordEncoder, error) {
	topic := cfg.Topic(db, coll)
	names := envelope.NamesFor(topic)
	if cfg.ValueSubjectStrategy.NamesRecordsByCollection() {
		names = envelope.NamesFor(cfg.CollectionTopic(db, coll))
	}
	e := &recordEncoder{
		reg:      reg,
		typed:    cfg.DocumentMode == config.DocumentTyped,
		names:    names,
		src:      envelope.Source{Connector: "mongodb", Name: cfg.TopicPrefix},
		opts:     avroschema.Options{Name: names.Value},
		document: cfg.OutputShape == config.ShapeDocument,
	}
	record := names.Envelope
	if e.document {
		record = names.Value
	}
	e.subject = cfg.ValueSubjectStrategy.Subject(topic, "value", record)
	var err error
	if e.fields, err = envelope.ParseAddedFields(cfg.DocumentFields); err != nil {
		return nil, fmt.Errorf("output.document.add.fields: %w", err)
	}
	if err := e.chooseKey(ctx, cfg, topic, db, coll); err != nil {
		return nil, err
	}
	if cfg.ValueFormat == config.ValueJSON || cfg.ValueFormat == config.ValueJSONSchema {
		// json_schema declares the envelope's documents strings (io.debezium.data.Json), as
		// Debezium does, whatever document.mode says.
		objects := e.typed && cfg.ValueFormat == config.ValueJSON
		e.appendValue = e.jsonValue(cfg.ValueFormat, envelope.NewJSONEncoder(names, e.src, objects, e.fields))
		return e, nil
	}
	e.appendValue = e.appendAvroValue
	if !e.typed {
		vs, err := e.valueSchema(nil)
		if err != nil {
			return nil, err
		}
		return e, e.use(ctx, vs)
	}
	latest, _, err := e.latestDocument(ctx)
	if err != nil || latest == nil {
		return e, err
	}
	vs, err := e.valueSchema(latest)
	if err != nil {
		return nil, err
	}
	return e, e.use(ctx, vs)
}

// chooseKey sets appendKey for key.format, registering the Avro key schema under the key
// subject strategy's subject. A routed collection's key adds its own topic.
func (e *recordEncoder) chooseKey(ctx context.Context, cfg *config.Config, topic, db, coll string) error {
	routed := cfg.Routed(db, coll)
	collection := cfg.CollectionTopic(db, coll)
	switch {
	case cfg.KeyFormat == config.KeyJSON && routed:
		e.appendKey = func(dst []byte, ev *envelope.Event) ([]byte, error) { return ev.AppendRoutedJSONKey(dst, collection) }
	case cfg.KeyFormat == config.KeyJSON:
		e.appendKey = func(dst []byte, ev *envelope.Event) ([]byte, error) { return ev.AppendJSONKey(dst) }
	case cfg.KeyFormat == config.KeyString:
		e.appendKey = func(dst []byte, ev *envelope.Event) ([]byte, error) { return ev.AppendStringKey(dst) }
	default:
		names := envelope.NamesFor(topic)
		if cfg.KeySubjectStrategy.NamesRecordsByCollection() {
			names = envelope.NamesFor(collection)
		}
		schema := envelope.KeySchema(names)
		if routed {
			schema = envelope.RoutedKeySchema(names)
		}
		subject := cfg.KeySubjectStrategy.Subject(topic, "key", names.Key)
		var err error
		if e.keyID, err = e.reg.Register(ctx, subject, schema); err != nil {
			return fmt.Errorf("register the key schema of %s: %w", topic, err)
		}
		e.appendKey = e.appendAvroKey
		if routed {
			e.appendKey = func(dst []byte, ev *envelope.Event) ([]byte, error) {
				start := len(dst)
				dst, err := ev.AppendRoutedKey(registry.AppendWireHeader(dst, e.keyID), collection)
				if err != nil {
					return dst[:start], err
				}
				return dst, nil
			}
		}
	}
	return nil
}

// jsonValue returns the appendValue of a JSON value format, which needs no registry.
func (e *recordEncoder) jsonValue(format config.ValueFormat, enc *envelope.Encoder) func(context.Context, []byte, *envelope.Event, int64) ([]byte, error) {
	write := enc.AppendJSONValue
	switch {
	case format == config.ValueJSON && e.document:
		write = enc.AppendJSONDocument
	case format == config.ValueJSONSchema && e.document:
		write = enc.AppendConnectDocument
	case format == config.ValueJSONSchema:
		write = enc.AppendConnectValue
	}
	return func(_ context.Context, dst []byte, ev *envelope.Event, tsMs int64) ([]byte, error) {
		out, err := write(dst, ev, tsMs)
		if err != nil {
			return dst, conversionError{err}
		}
		return out, nil
	}
}

// valueSchema is the Avro value schema of the output shape around doc, the document schema in
// typed mode (nil in JSON document mode).
func (e *recordEncoder) valueSchema(doc *avroschema.Schema) (*envelope.ValueSchema, error) {
	switch {
	case e.document:
		return envelope.DocumentValueSchema(e.names, doc, e.fields)
	case doc == nil:
		return envelope.JSONValueSchema(e.names)
	}
	return envelope.TypedValueSchema(e.names, doc)
}

// appendAvroKey appends ev's Avro key, header included.
func (e *recordEncoder) appendAvroKey(dst []byte, ev *envelope.Event) ([]byte, error) {
	start := len(dst)
	dst, err := ev.AppendKey(registry.AppendWireHeader(dst, e.keyID))
	if err != nil {
		return dst[:start], err
	}
	return dst, nil
}

// conversionError marks a document that cannot be written as a record (as opposed to a schema
// registry that cannot be reached): errors.tolerance decides what happens to the document.
type conversionError struct{ err error }

func (e conversionError) Error() string { return e.err.Error() }
func (e conversionError) Unwrap() error { return e.err }

func isConversion(err error) bool {
	var c conversionError
	return errors.As(err, &c)
}

// appendAvroValue appends ev's Avro value, header included, evolving the schema first when
// needed.
func (e *recordEncoder) appendAvroValue(ctx context.Context, dst []byte, ev *envelope.Event, tsMs int64) ([]byte, error) {
	if e.value != nil {
		out, err := e.encode(registry.AppendWireHeader(dst, e.valueID), ev, tsMs)
		if err == nil {
			return out, nil
		}
		if !e.typed || !errors.Is(err, avroschema.ErrNotCovered) {
			return dst, conversionError{err}
		}
	}
	if e.document {
		// A delete or an update without its document has nothing to evolve the schema with,
		// and a document with a field named as an added one cannot be written.
		doc, err := ev.Document()
		if err != nil {
			return dst, err
		}
		if err := e.fields.Check(doc); err != nil {
			return dst, conversionError{fmt.Errorf("document of %s: %w", e.subject, err)}
		}
	}
	if err := e.evolve(ctx, ev); err != nil {
		return dst, err
	}
	out, err := e.encode(registry.AppendWireHeader(dst, e.valueID), ev, tsMs)
	if err != nil {
		return dst, conversionError{fmt.Errorf("encode with the evolved schema of %s: %w", e.subject, err)}
	}
	return out, nil
}

func (e *recordEncoder) evolve(ctx context.Context, ev *envelope.Event) error {
	e.stalls.begin(waitRegistry)
	defer e.stalls.end(waitRegistry)
	defer e.evolutions.lock(e.subject)()
	var err error
	// missed holds what versions registered by others while we merged contribute, if ours
	// left it out.
	var missed *avroschema.Schema
	for attempt := 0; attempt < maxRegisterAttempts; attempt++ {
		// Merge into the newest registered version, not only our own: another task may have
		// added fields since, and dropping them would make the two of us alternate versions.
		var base *avroschema.Schema
		var baseVersion int
		if base, baseVersion, err = e.latestDocument(ctx); err != nil {
			return err
		}
		for _, s := range []*avroschema.Schema{e.valueDocument(), missed} {
			if s != nil {
				if base, err = avroschema.Merge(base, s); err != nil {
					return fmt.Errorf("merge schemas of %s: %w", e.subject, err)
				}
			}
		}
		var doc *avroschema.Schema
		if doc, err = envelope.Evolve(base, ev, e.opts); err != nil {
			return conversionError{fmt.Errorf("infer the schema of a document of %s: %w", e.subject, err)}
		}
		var vs *envelope.ValueSchema
		if vs, err = e.valueSchema(doc); err != nil {
			return err
		}
		err = e.use(ctx, vs)
		if errors.Is(err, registry.ErrIncompatible) {
			continue // someone registered a version ours does not extend: merge theirs in
		}
		if err != nil {
			return err
		}
		if missed, err = e.interleaved(ctx, baseVersion, doc); err != nil || missed == nil {
			return err
		}
	}
	return fmt.Errorf("register an evolved schema for %s after %d attempts: %w", e.subject, maxRegisterAttempts, err)
}

// interleaved checks the versions registered after baseVersion, the one ours was merged
// from: a task that registered between our read and our write added fields ours lacks, and
// ours, newer, would hide them from consumers that read with the latest version. It returns
// those versions merged into doc when they add anything, else nil.
func (e *recordEncoder) interleaved(ctx context.Context, baseVersion int, doc *avroschema.Schema) (*avroschema.Schema, error) {
	latest, err := e.reg.Latest(ctx, e.subject)
	if err != nil {
		return nil, fmt.Errorf("look up the latest schema of %s: %w", e.subject, err)
	}
	if latest.ID == e.valueID && latest.Version == baseVersion+1 {
		return nil, nil // ours came right after the version it extends
	}
	merged := doc
	for v := baseVersion + 1; v <= latest.Version; v++ {
		s, err := e.reg.SchemaAt(ctx, e.subject, v)
		if errors.Is(err, registry.ErrVersionNotFound) {
			continue // deleted since
		}
		if err != nil {
			return nil, fmt.Errorf("read version %d of %s: %w", v, e.subject, err)
		}
		if s.ID == e.valueID {
			continue
		}
		other, err := envelope.ParseTypedValueSchema(s.Schema, e.opts)
		if err != nil {
			return nil, fmt.Errorf("read the registered schema %d of %s: %w", s.ID, e.subject, err)
		}
		if merged, err = avroschema.Merge(merged, other); err != nil {
			return nil, fmt.Errorf("merge schemas of %s: %w", e.subject, err)
		}
	}
	if merged.Equal(doc) {
		return nil, nil
	}
	return merged, nil
}

// valueDocument is the document schema of the value schema in use, or nil.
func (e *recordEncoder) valueDocument() *avroschema.Schema {
	if e.value == nil {
		return nil
	}
	return e.value.Schema().Document()
}

// latestDocument returns the document schema of the newest registered value schema and its
// version, or nil and 0.
func (e *recordEncoder) latestDocument(ctx context.Context) (*avroschema.Schema, int, error) {
	latest, err := e.reg.Latest(ctx, e.subject)
	if errors.Is(err, registry.ErrSubjectNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("look up the latest schema of %s: %w", e.subject, err)
	}
	doc, err := envelope.ParseTypedValueSchema(latest.Schema, e.opts)
	if err != nil {
		return nil, 0, fmt.Errorf("read the registered schema %d of %s: %w", latest.ID, e.subject, err)
	}
	return doc, latest.Version, nil
}

func (e *recordEncoder) use(ctx context.Context, vs *envelope.ValueSchema) error {
	id, err := e.reg.Register(ctx, e.subject, vs.String())
	if err != nil {
		return fmt.Errorf("register the value schema of %s: %w", e.subject, err)
	}
	e.valueID = id
	e.value = envelope.NewEncoder(vs, e.src)
	e.encode = e.value.AppendValue
	if e.document {
		e.encode = e.value.AppendDocument
	}
	return nil
}
