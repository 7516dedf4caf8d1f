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

	keyID   int
	valueID int
	value   *envelope.Encoder // nil in typed mode until the first document
}

func newRecordEncoder(ctx context.Context, reg SchemaRegistry, topic string, cfg *config.Config) (*recordEncoder, error) {
	names := envelope.NamesFor(topic)
	e := &recordEncoder{
		reg:     reg,
		typed:   cfg.DocumentMode == config.DocumentTyped,
		names:   names,
		subject: topic + "-value",
		src:     envelope.Source{Connector: "mongodb", Name: cfg.TopicPrefix},
		opts:    avroschema.Options{Name: names.Value},
	}
	var err error
	if e.keyID, err = reg.Register(ctx, topic+"-key", envelope.KeySchema(names)); err != nil {
		return nil, fmt.Errorf("register the key schema of %s: %w", topic, err)
	}
	if !e.typed {
		vs, err := envelope.JSONValueSchema(names)
		if err != nil {
			return nil, err
		}
		return e, e.use(ctx, vs)
	}
	latest, err := e.latestDocument(ctx)
	if err != nil || latest == nil {
		return e, err
	}
	vs, err := envelope.TypedValueSchema(names, latest)
	if err != nil {
		return nil, err
	}
	return e, e.use(ctx, vs)
}

// appendKey appends ev's key, header included.
func (e *recordEncoder) appendKey(dst []byte, ev *envelope.Event) ([]byte, error) {
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

// appendValue appends ev's value, header included, evolving the schema first when needed.
func (e *recordEncoder) appendValue(ctx context.Context, dst []byte, ev *envelope.Event, tsMs int64) ([]byte, error) {
	if e.value != nil {
		out, err := e.value.AppendValue(registry.AppendWireHeader(dst, e.valueID), ev, tsMs)
		if err == nil {
			return out, nil
		}
		if !e.typed || !errors.Is(err, avroschema.ErrNotCovered) {
			return dst, conversionError{err}
		}
	}
	if err := e.evolve(ctx, ev); err != nil {
		return dst, err
	}
	out, err := e.value.AppendValue(registry.AppendWireHeader(dst, e.valueID), ev, tsMs)
	if err != nil {
		return dst, conversionError{fmt.Errorf("encode with the evolved schema of %s: %w", e.subject, err)}
	}
	return out, nil
}

func (e *recordEncoder) evolve(ctx context.Context, ev *envelope.Event) error {
	var err error
	for attempt := 0; attempt < maxRegisterAttempts; attempt++ {
		// Merge into the newest registered version, not only our own: another task may have
		// added fields since, and dropping them would make the two of us alternate versions.
		var base *avroschema.Schema
		if base, err = e.latestDocument(ctx); err != nil {
			return err
		}
		if e.value != nil {
			if base, err = avroschema.Merge(base, e.value.Schema().Document()); err != nil {
				return fmt.Errorf("merge schemas of %s: %w", e.subject, err)
			}
		}
		var doc *avroschema.Schema
		if doc, err = envelope.Evolve(base, ev, e.opts); err != nil {
			return conversionError{fmt.Errorf("infer the schema of a document of %s: %w", e.subject, err)}
		}
		var vs *envelope.ValueSchema
		if vs, err = envelope.TypedValueSchema(e.names, doc); err != nil {
			return err
		}
		err = e.use(ctx, vs)
		if err == nil {
			return nil
		}
		if !errors.Is(err, registry.ErrIncompatible) {
			return err
		}
		// Someone registered a version ours does not extend: merge theirs in and try again.
	}
	return fmt.Errorf("register an evolved schema for %s after %d attempts: %w", e.subject, maxRegisterAttempts, err)
}

// latestDocument returns the document schema of the newest registered value schema, or nil.
func (e *recordEncoder) latestDocument(ctx context.Context) (*avroschema.Schema, error) {
	latest, err := e.reg.Latest(ctx, e.subject)
	if errors.Is(err, registry.ErrSubjectNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up the latest schema of %s: %w", e.subject, err)
	}
	doc, err := envelope.ParseTypedValueSchema(latest.Schema, e.opts)
	if err != nil {
		return nil, fmt.Errorf("read the registered schema %d of %s: %w", latest.ID, e.subject, err)
	}
	return doc, nil
}

func (e *recordEncoder) use(ctx context.Context, vs *envelope.ValueSchema) error {
	id, err := e.reg.Register(ctx, e.subject, vs.String())
	if err != nil {
		return fmt.Errorf("register the value schema of %s: %w", e.subject, err)
	}
	e.valueID = id
	e.value = envelope.NewEncoder(vs, e.src)
	return nil
}
