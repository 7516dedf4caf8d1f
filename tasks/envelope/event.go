// Package envelope turns MongoDB change stream events into Debezium-style change records: it
// parses raw events without copying document bodies and writes their keys and envelope values
// as Avro binary into reused buffers.
//
// # Events
//
// Parse reads a raw event (ChangeStream.Current) into an Event whose byte fields alias the raw
// event: it is valid as long as the raw bytes are, which for the Go driver is until the next
// call to Next. Snapshot builds the Event of an initial-snapshot read (op "r").
//
// Events of kind KindControl (drop, rename, dropDatabase, invalidate and any other event without
// a documentKey) give no record: the caller decides what they mean for the task.
//
// # Records
//
// Key: record <namespace>.Key {id: string}, the canonical Extended JSON (relaxed=false) of
// documentKey._id: the same _id always gives the same bytes, and two _ids of different BSON
// types never collide (1, 1.0 and "1" differ).
//
// Value: record <namespace>.Envelope with Debezium's field names:
//
//	before             null | document  fullDocumentBeforeChange (pre-images), when present
//	after              null | document  fullDocument; null for deletes
//	updateDescription  null | mongorelay.UpdateDescription
//	                     updatedFields    null | string (canonical Extended JSON document)
//	                     removedFields    null | array<string>
//	                     truncatedArrays  null | array<mongorelay.TruncatedArray{field: string, newSize: int}>
//	source             mongorelay.Source
//	                     connector, name  strings from the task's Source
//	                     ts_ms            long: wallTime when the event has it, else clusterTime seconds × 1000
//	                     snapshot         string "true", "last", "incremental" or "false" (default "false")
//	                     db, collection   strings
//	                     ord              int: clusterTime increment (0 for snapshot reads)
//	                     resume_token     null | string: _id._data of the event
//	                     txn_id           null | string: "<lsid>:<txnNumber>" for events in a transaction
//	                     lsid             null | string: the session id (UUID text, else Extended JSON of lsid.id)
//	                     txnNumber        null | long
//	op                 string  "c" insert, "u" update and replace, "d" delete, "r" snapshot read
//	ts_ms              null | long: processing time, given by the caller
//
// In document.mode=typed the document is the avroschema record <namespace>.Value (defined in
// before, referenced in after); in document.mode=json it is a string holding the canonical
// Extended JSON of the document (connect.name io.debezium.data.Json), Debezium's MongoDB shape.
// The namespace is the topic name made a valid Avro namespace (NamesFor).
//
// With value.format=json, AppendJSONValue writes the same envelope as a JSON object (documents
// as Extended JSON objects in typed mode, as strings in JSON mode).
package envelope

import (
	"errors"
	"fmt"

	"github.com/mongorelay/mongorelay/tasks/avroschema/bsonraw"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Operation is a change event's operationType.
type Operation uint8

// Operations. OpRead is not a change stream operation: it marks snapshot reads.
const (
	OpOther Operation = iota
	OpInsert
	OpUpdate
	OpReplace
	OpDelete
	OpDrop
	OpRename
	OpDropDatabase
	OpInvalidate
	OpRead
)

var operationNames = [...]string{
	OpOther:        "other",
	OpInsert:       "insert",
	OpUpdate:       "update",
	OpReplace:      "replace",
	OpDelete:       "delete",
	OpDrop:         "drop",
	OpRename:       "rename",
	OpDropDatabase: "dropDatabase",
	OpInvalidate:   "invalidate",
	OpRead:         "read",
}

func (o Operation) String() string { return operationNames[o] }

// Kind says whether an event gives a record.
type Kind uint8

const (
	// KindRecord events (insert, update, replace, delete, snapshot read) give a key and a value.
	KindRecord Kind = iota
	// KindControl events have no documentKey and give no record.
	KindControl
)

// SnapshotMarker is source.snapshot: whether a record comes from the initial snapshot.
type SnapshotMarker uint8

// Snapshot markers, as Debezium writes them.
const (
	SnapshotFalse       SnapshotMarker = iota // streamed change
	SnapshotTrue                              // snapshot read
	SnapshotLast                              // the last read of the snapshot
	SnapshotIncremental                       // a read of an incremental (ad-hoc) snapshot
)

var snapshotNames = [...]string{SnapshotFalse: "false", SnapshotTrue: "true", SnapshotLast: "last", SnapshotIncremental: "incremental"}

func (s SnapshotMarker) String() string { return snapshotNames[s] }

// Event is one parsed change event. Byte slices and bson.Raw fields alias the raw event; nil
// means absent (or BSON null).
type Event struct {
	Op Operation
	// OperationType is the raw operationType, which names the operation when Op is OpOther.
	OperationType []byte
	// ResumeToken is the event's _id._data: the token to resume after this event.
	ResumeToken []byte
	// ClusterTime is the oplog time of the operation; zero when absent (snapshot reads).
	ClusterTime bson.Timestamp
	// WallTime is the server's wall clock time in milliseconds, when HasWallTime.
	WallTime    int64
	HasWallTime bool
	DB          []byte
	Collection  []byte
	DocumentKey bson.Raw
	// FullDocument is the document after the change: inserts and replaces always, updates with
	// fullDocument updateLookup (nil if the document was deleted since).
	FullDocument bson.Raw
	// FullDocumentBeforeChange is the pre-image, when the collection records them.
	FullDocumentBeforeChange bson.Raw
	// UpdatedFields, RemovedFields and TruncatedArrays are updateDescription's parts;
	// HasUpdateDescription tells whether the event had one.
	HasUpdateDescription bool
	UpdatedFields        bson.Raw
	RemovedFields        bson.RawArray
	TruncatedArrays      bson.RawArray
	// TxnNumber and LSID identify the transaction of events written in one.
	TxnNumber    int64
	HasTxnNumber bool
	LSID         bson.Raw
	Snapshot     SnapshotMarker

	idType  bson.Type // documentKey._id
	idValue []byte
}

// Kind tells whether the event gives a record.
func (e *Event) Kind() Kind {
	switch e.Op {
	case OpInsert, OpUpdate, OpReplace, OpDelete, OpRead:
		if e.idValue != nil {
			return KindRecord
		}
	}
	return KindControl
}

// ID returns documentKey._id, the value that keys the record.
func (e *Event) ID() bson.RawValue { return bson.RawValue{Type: e.idType, Value: e.idValue} }

// Parse reads a raw change event without copying it. Unknown fields (collectionUUID,
// splitEvent, expanded-event fields) are ignored; known fields of the wrong type are errors.
func Parse(raw bson.Raw) (Event, error) {
	var ev Event
	it := bsonraw.Elements(raw)
	var el bsonraw.Element
	for it.Next(&el) {
		if err := ev.set(&el); err != nil {
			return Event{}, fmt.Errorf("parse change event: %s: %w", el.Key, err)
		}
	}
	if err := it.Err(); err != nil {
		return Event{}, fmt.Errorf("parse change event: %w", err)
	}
	if ev.OperationType == nil {
		return Event{}, errors.New("parse change event: no operationType")
	}
	return ev, nil
}

func (e *Event) set(el *bsonraw.Element) error {
	var err error
	switch string(el.Key) {
	case "_id":
		var id bson.Raw
		if id, err = document(el); err == nil {
			e.ResumeToken, err = stringField(id, "_data")
		}
	case "operationType":
		if e.OperationType, err = str(el); err == nil {
			e.Op = operation(e.OperationType)
		}
	case "clusterTime":
		if el.Type != bson.TypeTimestamp {
			return typeError(el, bson.TypeTimestamp)
		}
		e.ClusterTime.T, e.ClusterTime.I = bsonraw.Timestamp(el.Value)
	case "wallTime":
		if el.Type != bson.TypeDateTime {
			return typeError(el, bson.TypeDateTime)
		}
		e.WallTime, e.HasWallTime = bsonraw.Int64(el.Value), true
	case "ns":
		// dropDatabase events name only the database.
		var ns bson.Raw
		if ns, err = document(el); err == nil {
			if e.DB, err = stringField(ns, "db"); err == nil {
				e.Collection, err = optionalStringField(ns, "coll")
			}
		}
	case "documentKey":
		if e.DocumentKey, err = document(el); err == nil {
			err = e.setID(e.DocumentKey)
		}
	case "fullDocument":
		e.FullDocument, err = optionalDocument(el)
	case "fullDocumentBeforeChange":
		e.FullDocumentBeforeChange, err = optionalDocument(el)
	case "updateDescription":
		var ud bson.Raw
		if ud, err = document(el); err == nil {
			e.HasUpdateDescription = true
			err = e.setUpdateDescription(ud)
		}
	case "txnNumber":
		if el.Type != bson.TypeInt64 {
			return typeError(el, bson.TypeInt64)
		}
		e.TxnNumber, e.HasTxnNumber = bsonraw.Int64(el.Value), true
	case "lsid":
		e.LSID, err = document(el)
	}
	return err
}

func (e *Event) setID(key bson.Raw) error {
	it := bsonraw.Elements(key)
	var el bsonraw.Element
	for it.Next(&el) {
		if string(el.Key) == "_id" {
			e.idType, e.idValue = el.Type, el.Value
			return nil
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	return errors.New("no _id")
}

func (e *Event) setUpdateDescription(ud bson.Raw) error {
	it := bsonraw.Elements(ud)
	var el bsonraw.Element
	for it.Next(&el) {
		var err error
		switch string(el.Key) {
		case "updatedFields":
			e.UpdatedFields, err = document(&el)
		case "removedFields":
			e.RemovedFields, err = array(&el)
		case "truncatedArrays":
			e.TruncatedArrays, err = array(&el)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", el.Key, err)
		}
	}
	return it.Err()
}

func operation(name []byte) Operation {
	for op, n := range operationNames {
		if Operation(op) != OpOther && Operation(op) != OpRead && string(name) == n {
			return Operation(op)
		}
	}
	return OpOther
}

// Snapshot returns the Event of one document copied by the initial snapshot: op "r", no
// resume token, db and coll naming where it was read.
func Snapshot(doc bson.Raw, db, coll []byte, marker SnapshotMarker) (Event, error) {
	ev := Event{Op: OpRead, DB: db, Collection: coll, FullDocument: doc, Snapshot: marker}
	if err := ev.setID(doc); err != nil {
		return Event{}, fmt.Errorf("snapshot read of %s.%s: %w", db, coll, err)
	}
	return ev, nil
}

func typeError(el *bsonraw.Element, want bson.Type) error {
	return fmt.Errorf("got BSON %s, want %s", el.Type, want)
}

func document(el *bsonraw.Element) (bson.Raw, error) {
	if el.Type != bson.TypeEmbeddedDocument {
		return nil, typeError(el, bson.TypeEmbeddedDocument)
	}
	return el.Value, nil
}

func optionalDocument(el *bsonraw.Element) (bson.Raw, error) {
	if el.Type == bson.TypeNull {
		return nil, nil
	}
	return document(el)
}

func array(el *bsonraw.Element) (bson.RawArray, error) {
	if el.Type != bson.TypeArray {
		return nil, typeError(el, bson.TypeArray)
	}
	return el.Value, nil
}

func str(el *bsonraw.Element) ([]byte, error) {
	if el.Type != bson.TypeString {
		return nil, typeError(el, bson.TypeString)
	}
	return bsonraw.String(el.Value)
}

// stringField returns the string field key of doc.
func stringField(doc bson.Raw, key string) ([]byte, error) {
	s, err := optionalStringField(doc, key)
	if err == nil && s == nil {
		return nil, fmt.Errorf("no %s", key)
	}
	return s, err
}

// optionalStringField returns the string field key of doc, nil if doc lacks it.
func optionalStringField(doc bson.Raw, key string) ([]byte, error) {
	it := bsonraw.Elements(doc)
	var el bsonraw.Element
	for it.Next(&el) {
		if string(el.Key) == key {
			s, err := str(&el)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			return s, nil
		}
	}
	return nil, it.Err()
}
