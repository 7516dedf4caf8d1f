package envelope

import (
	"fmt"
	"strconv"

	"github.com/mongorelay/mongorelay/tasks/avroschema/bsonraw"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// AppendJSONValue appends the envelope of ev as JSON (value.format=json), with the Avro
// envelope's field names and nulls. Documents are canonical Extended JSON: embedded objects in
// typed mode, strings holding it in JSON document mode (Debezium's MongoDB shape; see
// NewJSONEncoder). Like
// AppendValue it allocates nothing and leaves dst unchanged on error.
func (e *Encoder) AppendJSONValue(dst []byte, ev *Event, tsMs int64) ([]byte, error) {
	start := len(dst)
	dst, err := e.appendJSONValue(dst, ev, tsMs)
	if err != nil {
		return dst[:start], fmt.Errorf("encode %s event on %s.%s as JSON: %w", ev.Op, ev.DB, ev.Collection, err)
	}
	return dst, nil
}

func (e *Encoder) appendJSONValue(dst []byte, ev *Event, tsMs int64) ([]byte, error) {
	if ev.Kind() != KindRecord {
		return dst, ErrNoRecord
	}
	after := ev.FullDocument
	if ev.Op == OpDelete {
		after = nil
	}
	dst = append(dst, `{"before":`...)
	dst, err := e.jsonDocument(dst, ev.FullDocumentBeforeChange)
	if err != nil {
		return dst, fmt.Errorf("before: %w", err)
	}
	dst = append(dst, `,"after":`...)
	if dst, err = e.jsonDocument(dst, after); err != nil {
		return dst, fmt.Errorf("after: %w", err)
	}
	dst = append(dst, `,"updateDescription":`...)
	if dst, err = jsonUpdateDescription(dst, ev); err != nil {
		return dst, fmt.Errorf("updateDescription: %w", err)
	}
	dst = append(dst, `,"source":{"connector":`...)
	dst = bsonraw.AppendJSONString(dst, []byte(e.src.Connector))
	dst = append(dst, `,"name":`...)
	dst = bsonraw.AppendJSONString(dst, []byte(e.src.Name))
	ts := int64(ev.ClusterTime.T) * 1000
	if ev.HasWallTime {
		ts = ev.WallTime
	}
	dst = strconv.AppendInt(append(dst, `,"ts_ms":`...), ts, 10)
	dst = append(append(append(dst, `,"snapshot":"`...), ev.Snapshot.String()...), '"')
	dst = bsonraw.AppendJSONString(append(dst, `,"db":`...), ev.DB)
	dst = bsonraw.AppendJSONString(append(dst, `,"collection":`...), ev.Collection)
	dst = strconv.AppendUint(append(dst, `,"ord":`...), uint64(ev.ClusterTime.I), 10)
	dst = append(dst, `,"resume_token":`...)
	if ev.ResumeToken == nil {
		dst = append(dst, "null"...)
	} else {
		dst = bsonraw.AppendJSONString(dst, ev.ResumeToken)
	}
	if dst, err = jsonSession(dst, ev); err != nil {
		return dst, fmt.Errorf("source: %w", err)
	}
	dst = append(append(append(dst, `},"op":"`...), opCode(ev.Op)...), '"')
	dst = strconv.AppendInt(append(dst, `,"ts_ms":`...), tsMs, 10)
	return append(dst, '}'), nil
}

func (e *Encoder) jsonDocument(dst []byte, doc bson.Raw) ([]byte, error) {
	if doc == nil {
		return append(dst, "null"...), nil
	}
	if e.objects {
		return bsonraw.AppendExtJSON(dst, doc)
	}
	return appendJSONStringOf(dst, func(b []byte) ([]byte, error) { return bsonraw.AppendExtJSON(b, doc) })
}

// appendJSONStringOf writes what write produces as a JSON string: the text is written, its
// quoted form appended after it, and moved back over it, so nothing is allocated once dst has
// grown.
func appendJSONStringOf(dst []byte, write func([]byte) ([]byte, error)) ([]byte, error) {
	at := len(dst)
	dst, err := write(dst)
	if err != nil {
		return dst[:at], err
	}
	return quoteFrom(dst, at), nil
}

func jsonUpdateDescription(dst []byte, ev *Event) ([]byte, error) {
	if ev.Op != OpUpdate || !ev.HasUpdateDescription {
		return append(dst, "null"...), nil
	}
	dst = append(dst, `{"updatedFields":`...)
	var err error
	if ev.UpdatedFields == nil {
		dst = append(dst, "null"...)
	} else if dst, err = appendJSONStringOf(dst, func(b []byte) ([]byte, error) { return bsonraw.AppendExtJSON(b, ev.UpdatedFields) }); err != nil {
		return dst, fmt.Errorf("updatedFields: %w", err)
	}
	dst = append(dst, `,"removedFields":`...)
	if dst, err = jsonArray(dst, ev.RemovedFields, func(dst []byte, el bsonraw.Element) ([]byte, error) {
		s, err := str(&el)
		return bsonraw.AppendJSONString(dst, s), err
	}); err != nil {
		return dst, fmt.Errorf("removedFields: %w", err)
	}
	dst = append(dst, `,"truncatedArrays":`...)
	if dst, err = jsonArray(dst, ev.TruncatedArrays, func(dst []byte, el bsonraw.Element) ([]byte, error) {
		doc, err := document(&el)
		if err != nil {
			return dst, err
		}
		return bsonraw.AppendExtJSON(dst, doc)
	}); err != nil {
		return dst, fmt.Errorf("truncatedArrays: %w", err)
	}
	return append(dst, '}'), nil
}

func jsonArray(dst []byte, arr bson.RawArray, item func([]byte, bsonraw.Element) ([]byte, error)) ([]byte, error) {
	if arr == nil {
		return append(dst, "null"...), nil
	}
	dst = append(dst, '[')
	it := bsonraw.Elements(arr)
	var el bsonraw.Element
	for i := 0; it.Next(&el); i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = item(dst, el); err != nil {
			return dst, fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return append(dst, ']'), it.Err()
}

func jsonSession(dst []byte, ev *Event) ([]byte, error) {
	var err error
	dst = append(dst, `,"txn_id":`...)
	switch {
	case ev.LSID == nil || !ev.HasTxnNumber:
		dst = append(dst, "null"...)
	default:
		if dst, err = appendJSONStringOf(dst, func(b []byte) ([]byte, error) {
			b, err := appendSessionID(b, ev.LSID)
			return strconv.AppendInt(append(b, ':'), ev.TxnNumber, 10), err
		}); err != nil {
			return dst, err
		}
	}
	dst = append(dst, `,"lsid":`...)
	if ev.LSID == nil {
		dst = append(dst, "null"...)
	} else if dst, err = appendJSONStringOf(dst, func(b []byte) ([]byte, error) { return appendSessionID(b, ev.LSID) }); err != nil {
		return dst, err
	}
	dst = append(dst, `,"txnNumber":`...)
	if !ev.HasTxnNumber {
		return append(dst, "null"...), nil
	}
	return strconv.AppendInt(dst, ev.TxnNumber, 10), nil
}
