package envelope

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/mongorelay/mongorelay/tasks/avrobin"
	"github.com/mongorelay/mongorelay/tasks/avroschema"
	"github.com/mongorelay/mongorelay/tasks/avroschema/bsonraw"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// ErrNoRecord is returned for events of KindControl, which give no record.
var ErrNoRecord = errors.New("change event gives no record")

// Source is what every record of a task says about where it comes from.
type Source struct {
	Connector string // source.connector, e.g. "mongodb"
	Name      string // source.name: the connector's logical name (topic.prefix)
}

// Encoder writes envelope values of one topic. It keeps scratch state: use one per goroutine.
type Encoder struct {
	schema *ValueSchema
	doc    *avroschema.Encoder // typed mode only
	src    Source
	// objects writes JSON documents as objects, not as strings holding them.
	objects bool
	// connectSchema is the JsonConverter schema of the envelope, for AppendConnectValue.
	connectSchema []byte
}

// NewEncoder returns an encoder of Avro values in schema s: envelopes, or documents when s is a
// document schema (DocumentValueSchema).
func NewEncoder(s *ValueSchema, src Source) *Encoder {
	e := &Encoder{schema: s, src: src}
	if s.document != nil {
		e.doc = avroschema.NewEncoder(s.document)
		e.objects = true
	}
	return e
}

// NewJSONEncoder returns an encoder of JSON values for the topic named n (AppendJSONValue,
// AppendJSONDocument, AppendConnectValue, AppendConnectDocument), which needs no registry.
// objects writes the envelope's documents as Extended JSON objects, else as strings holding
// it; fields are the change's fields added to documents.
func NewJSONEncoder(n Names, src Source, objects bool, fields AddedFields) *Encoder {
	e := &Encoder{src: src, objects: objects}
	e.schema = &ValueSchema{names: n, fields: fields}
	e.connectSchema = appendConnectEnvelopeSchema(nil, n)
	return e
}

// Schema returns the value schema the encoder writes.
func (e *Encoder) Schema() *ValueSchema { return e.schema }

// AppendValue appends the Avro envelope of ev to dst; tsMs is the processing time for ts_ms.
// On error dst is returned unchanged. In typed mode, errors.Is(err, avroschema.ErrNotCovered)
// means the document schema must evolve first (see Evolve).
func (e *Encoder) AppendValue(dst []byte, ev *Event, tsMs int64) ([]byte, error) {
	start := len(dst)
	dst, err := e.appendValue(dst, ev, tsMs)
	if err != nil {
		return dst[:start], fmt.Errorf("encode %s event on %s.%s: %w", ev.Op, ev.DB, ev.Collection, err)
	}
	return dst, nil
}

func (e *Encoder) appendValue(dst []byte, ev *Event, tsMs int64) ([]byte, error) {
	if ev.Kind() != KindRecord {
		return dst, ErrNoRecord
	}
	dst, err := e.document(dst, ev.FullDocumentBeforeChange)
	if err != nil {
		return dst, fmt.Errorf("before: %w", err)
	}
	after := ev.FullDocument
	if ev.Op == OpDelete {
		after = nil
	}
	if dst, err = e.document(dst, after); err != nil {
		return dst, fmt.Errorf("after: %w", err)
	}
	if dst, err = appendUpdateDescription(dst, ev); err != nil {
		return dst, fmt.Errorf("updateDescription: %w", err)
	}
	if dst, err = e.appendSource(dst, ev); err != nil {
		return dst, fmt.Errorf("source: %w", err)
	}
	dst = avrobin.AppendString(dst, opCode(ev.Op))
	return avrobin.AppendLong(append(dst, 2), tsMs), nil
}

func opCode(op Operation) string {
	switch op {
	case OpInsert:
		return "c"
	case OpDelete:
		return "d"
	case OpRead:
		return "r"
	}
	return "u"
}

// document writes a nullable document: the typed record, or its Extended JSON in JSON mode.
func (e *Encoder) document(dst []byte, doc bson.Raw) ([]byte, error) {
	if doc == nil {
		return append(dst, 0), nil
	}
	dst = append(dst, 2)
	if e.doc != nil {
		return e.doc.Append(dst, doc)
	}
	at := len(dst)
	dst, err := bsonraw.AppendExtJSON(dst, doc)
	return avrobin.PrefixLength(dst, at), err
}

func appendUpdateDescription(dst []byte, ev *Event) ([]byte, error) {
	if ev.Op != OpUpdate || !ev.HasUpdateDescription {
		return append(dst, 0), nil
	}
	dst = append(dst, 2)
	if ev.UpdatedFields == nil {
		dst = append(dst, 0)
	} else {
		at := len(dst) + 1
		var err error
		if dst, err = bsonraw.AppendExtJSON(append(dst, 2), ev.UpdatedFields); err != nil {
			return dst, fmt.Errorf("updatedFields: %w", err)
		}
		dst = avrobin.PrefixLength(dst, at)
	}
	var err error
	if dst, err = appendArray(dst, ev.RemovedFields, appendRemovedField); err != nil {
		return dst, fmt.Errorf("removedFields: %w", err)
	}
	if dst, err = appendArray(dst, ev.TruncatedArrays, appendTruncatedArray); err != nil {
		return dst, fmt.Errorf("truncatedArrays: %w", err)
	}
	return dst, nil
}

// appendArray writes a nullable Avro array with one item per element of arr.
func appendArray(dst []byte, arr bson.RawArray, item func([]byte, bsonraw.Element) ([]byte, error)) ([]byte, error) {
	if arr == nil {
		return append(dst, 0), nil
	}
	n, err := bsonraw.Count(arr)
	if err != nil {
		return dst, err
	}
	dst = avrobin.AppendLong(append(dst, 2), int64(n))
	it := bsonraw.Elements(arr)
	var el bsonraw.Element
	for i := 0; it.Next(&el); i++ {
		// By value: a pointer passed to a func value would move el to the heap.
		if dst, err = item(dst, el); err != nil {
			return dst, fmt.Errorf("[%d]: %w", i, err)
		}
	}
	if n > 0 {
		dst = append(dst, 0)
	}
	return dst, nil
}

func appendRemovedField(dst []byte, el bsonraw.Element) ([]byte, error) {
	s, err := str(&el)
	return avrobin.AppendBytes(dst, s), err
}

// appendTruncatedArray writes {field, newSize} from MongoDB's {field: string, newSize: int}.
func appendTruncatedArray(dst []byte, el bsonraw.Element) ([]byte, error) {
	doc, err := document(&el)
	if err != nil {
		return dst, err
	}
	var field []byte
	var size int32
	var haveSize bool
	it := bsonraw.Elements(doc)
	var f bsonraw.Element
	for it.Next(&f) {
		switch string(f.Key) {
		case "field":
			if field, err = str(&f); err != nil {
				return dst, fmt.Errorf("field: %w", err)
			}
		case "newSize":
			switch f.Type {
			case bson.TypeInt32:
				size, haveSize = bsonraw.Int32(f.Value), true
			case bson.TypeInt64:
				size, haveSize = int32(bsonraw.Int64(f.Value)), true
			default:
				return dst, fmt.Errorf("newSize: %w", typeError(&f, bson.TypeInt32))
			}
		}
	}
	if err := it.Err(); err != nil {
		return dst, err
	}
	if field == nil || !haveSize {
		return dst, errors.New("want field and newSize")
	}
	return avrobin.AppendLong(avrobin.AppendBytes(dst, field), int64(size)), nil
}

func (e *Encoder) appendSource(dst []byte, ev *Event) ([]byte, error) {
	dst = avrobin.AppendString(dst, e.src.Connector)
	dst = avrobin.AppendString(dst, e.src.Name)
	ts := int64(ev.ClusterTime.T) * 1000
	if ev.HasWallTime {
		ts = ev.WallTime
	}
	dst = avrobin.AppendLong(dst, ts)
	dst = avrobin.AppendString(dst, ev.Snapshot.String())
	dst = avrobin.AppendBytes(dst, ev.DB)
	dst = avrobin.AppendBytes(dst, ev.Collection)
	dst = avrobin.AppendLong(dst, int64(ev.ClusterTime.I))
	if ev.ResumeToken == nil {
		dst = append(dst, 0)
	} else {
		dst = avrobin.AppendBytes(append(dst, 2), ev.ResumeToken)
	}
	if ev.LSID == nil {
		// txn_id and lsid
		dst = append(dst, 0, 0)
	} else {
		var err error
		if ev.HasTxnNumber {
			at := len(dst) + 1
			if dst, err = appendSessionID(append(dst, 2), ev.LSID); err != nil {
				return dst, fmt.Errorf("lsid: %w", err)
			}
			dst = avrobin.PrefixLength(strconv.AppendInt(append(dst, ':'), ev.TxnNumber, 10), at)
		} else {
			dst = append(dst, 0)
		}
		at := len(dst) + 1
		if dst, err = appendSessionID(append(dst, 2), ev.LSID); err != nil {
			return dst, fmt.Errorf("lsid: %w", err)
		}
		dst = avrobin.PrefixLength(dst, at)
	}
	if !ev.HasTxnNumber {
		return append(dst, 0), nil
	}
	return avrobin.AppendLong(append(dst, 2), ev.TxnNumber), nil
}

// appendSessionID writes lsid.id as UUID text when it is a UUID (as drivers make them), else the
// Extended JSON of lsid.id, or of lsid when it has no id.
func appendSessionID(dst []byte, lsid bson.Raw) ([]byte, error) {
	it := bsonraw.Elements(lsid)
	var el bsonraw.Element
	for it.Next(&el) {
		if string(el.Key) != "id" {
			continue
		}
		if el.Type == bson.TypeBinary {
			if sub, data, err := bsonraw.Binary(el.Value); err == nil && sub == 0x04 && len(data) == 16 {
				dst = hex.AppendEncode(dst, data[:4])
				dst = hex.AppendEncode(append(dst, '-'), data[4:6])
				dst = hex.AppendEncode(append(dst, '-'), data[6:8])
				dst = hex.AppendEncode(append(dst, '-'), data[8:10])
				return hex.AppendEncode(append(dst, '-'), data[10:]), nil
			}
		}
		return bsonraw.AppendExtJSONValue(dst, el.Type, el.Value)
	}
	if err := it.Err(); err != nil {
		return dst, err
	}
	return bsonraw.AppendExtJSON(dst, lsid)
}

// AppendKey appends the Avro key record of ev: {id: canonical Extended JSON of documentKey._id}.
func (e *Event) AppendKey(dst []byte) ([]byte, error) {
	if e.idValue == nil {
		return dst, ErrNoRecord
	}
	at := len(dst)
	dst, err := bsonraw.AppendExtJSONValue(dst, e.idType, e.idValue)
	if err != nil {
		return dst[:at], fmt.Errorf("encode key of %s.%s: %w", e.DB, e.Collection, err)
	}
	return avrobin.PrefixLength(dst, at), nil
}
