package envelope

import (
	"errors"
	"fmt"

	"github.com/mongorelay/mongorelay/tasks/avrobin"
	"github.com/mongorelay/mongorelay/tasks/avroschema/bsonraw"
	"go.mongodb.org/mongo-driver/v2/bson"
)

var (
	// ErrTombstone is returned by the document encoders for deletes: in output.shape=document
	// a delete is written as a tombstone, a record with a null value.
	ErrTombstone = errors.New("a delete is a tombstone in output.shape=document")
	// ErrNoDocument is returned by the document encoders for an update without its document
	// (no updateLookup, or the document was deleted before it was looked up): there is no
	// record to write, and the delete, if any, follows.
	ErrNoDocument = errors.New("the update comes without its document")
)

// shapeDocument returns the document of ev the encoder writes in output.shape=document.
func (e *Encoder) shapeDocument(ev *Event) (bson.Raw, error) {
	doc, err := ev.Document()
	if err != nil {
		return nil, err
	}
	return doc, e.schema.fields.Check(doc)
}

// Document returns the document output.shape=document writes for ev: the document after the
// change, ErrTombstone for a delete, ErrNoDocument when the event lacks it, ErrNoRecord for
// events of KindControl.
func (e *Event) Document() (bson.Raw, error) {
	switch {
	case e.Kind() != KindRecord:
		return nil, ErrNoRecord
	case e.Op == OpDelete:
		return nil, ErrTombstone
	case e.FullDocument == nil:
		return nil, ErrNoDocument
	}
	return e.FullDocument, nil
}

// AppendDocument appends the Avro value of ev in output.shape=document (the encoder's schema
// is a DocumentValueSchema): the typed document record followed by the added fields, or in
// JSON document mode a string of the document's Extended JSON with the added fields as
// members. On error dst is returned unchanged; errors.Is tells ErrTombstone, ErrNoDocument,
// ErrFieldTaken and, in typed mode, avroschema.ErrNotCovered (the schema must evolve first,
// see Evolve).
func (e *Encoder) AppendDocument(dst []byte, ev *Event, tsMs int64) ([]byte, error) {
	start := len(dst)
	dst, err := e.appendDocument(dst, ev, tsMs)
	if err != nil {
		return dst[:start], fmt.Errorf("encode the document of %s event on %s.%s: %w", ev.Op, ev.DB, ev.Collection, err)
	}
	return dst, nil
}

func (e *Encoder) appendDocument(dst []byte, ev *Event, tsMs int64) ([]byte, error) {
	doc, err := e.shapeDocument(ev)
	if err != nil {
		return dst, err
	}
	if e.doc == nil {
		at := len(dst)
		dst, err = e.appendJSONDocument(dst, doc, ev, tsMs)
		return avrobin.PrefixLength(dst, at), err
	}
	if dst, err = e.doc.Append(dst, doc); err != nil {
		return dst, err
	}
	return e.schema.fields.appendAvro(dst, e, ev, tsMs)
}

// AppendJSONDocument appends ev's document as canonical Extended JSON with the added fields as
// its last members (value.format=json, output.shape=document). Errors are AppendDocument's.
func (e *Encoder) AppendJSONDocument(dst []byte, ev *Event, tsMs int64) ([]byte, error) {
	start := len(dst)
	doc, err := e.shapeDocument(ev)
	if err == nil {
		dst, err = e.appendJSONDocument(dst, doc, ev, tsMs)
	}
	if err != nil {
		return dst[:start], fmt.Errorf("encode the document of %s event on %s.%s as JSON: %w", ev.Op, ev.DB, ev.Collection, err)
	}
	return dst, nil
}

func (e *Encoder) appendJSONDocument(dst []byte, doc bson.Raw, ev *Event, tsMs int64) ([]byte, error) {
	dst, err := bsonraw.AppendExtJSON(dst, doc)
	if err != nil || len(e.schema.fields) == 0 {
		return dst, err
	}
	// A document always has _id, so its object has members the added ones follow.
	if dst, err = e.schema.fields.appendJSON(dst[:len(dst)-1], e, ev, tsMs); err != nil {
		return dst, err
	}
	return append(dst, '}'), nil
}

// AppendJSONKey appends the key of ev as JSON (key.format=json): {"id": string}, the Avro
// key's field, as Kafka Connect's JsonConverter writes Debezium's key without schemas.
func (e *Event) AppendJSONKey(dst []byte) ([]byte, error) {
	if e.idValue == nil {
		return dst, ErrNoRecord
	}
	at := len(dst)
	dst, err := appendJSONStringOf(append(dst, `{"id":`...), func(b []byte) ([]byte, error) {
		return bsonraw.AppendExtJSONValue(b, e.idType, e.idValue)
	})
	if err != nil {
		return dst[:at], fmt.Errorf("encode key of %s.%s: %w", e.DB, e.Collection, err)
	}
	return append(dst, '}'), nil
}

// AppendStringKey appends the key of ev as text (key.format=string): the canonical Extended
// JSON of documentKey._id, the Avro key's id.
func (e *Event) AppendStringKey(dst []byte) ([]byte, error) {
	if e.idValue == nil {
		return dst, ErrNoRecord
	}
	at := len(dst)
	dst, err := bsonraw.AppendExtJSONValue(dst, e.idType, e.idValue)
	if err != nil {
		return dst[:at], fmt.Errorf("encode key of %s.%s: %w", e.DB, e.Collection, err)
	}
	return dst, nil
}
