package envelope

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/mongorelay/mongorelay/tasks/avrobin"
	"github.com/mongorelay/mongorelay/tasks/avroschema/bsonraw"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// AddedFields are the change's fields written into each document of output.shape=document,
// named as Debezium's ExtractNewDocumentState add.fields names them: "op" becomes __op, "ts_ms"
// __ts_ms and "source.<field>" __source_<field>.
type AddedFields []addedField

type addedField struct {
	name string // the document field: "__op", "__source_db", ...
	long bool   // a number (Avro long, Connect int64); else a string
	// value appends the field's text to dst, or returns its number; ok is false for null, and
	// then nothing was appended.
	value func(e *Encoder, dst []byte, ev *Event, tsMs int64) (out []byte, n int64, ok bool, err error)
}

func textField(text func(*Encoder, *Event) string) func(*Encoder, []byte, *Event, int64) ([]byte, int64, bool, error) {
	return func(e *Encoder, dst []byte, ev *Event, _ int64) ([]byte, int64, bool, error) {
		return append(dst, text(e, ev)...), 0, true, nil
	}
}

func bytesField(b func(*Event) []byte) func(*Encoder, []byte, *Event, int64) ([]byte, int64, bool, error) {
	return func(_ *Encoder, dst []byte, ev *Event, _ int64) ([]byte, int64, bool, error) {
		v := b(ev)
		return append(dst, v...), 0, v != nil, nil
	}
}

func longField(n func(*Event, int64) (int64, bool)) func(*Encoder, []byte, *Event, int64) ([]byte, int64, bool, error) {
	return func(_ *Encoder, dst []byte, ev *Event, tsMs int64) ([]byte, int64, bool, error) {
		v, ok := n(ev, tsMs)
		return dst, v, ok, nil
	}
}

// addable lists every field add.fields may name, with how the envelope writes it.
var addable = map[string]addedField{
	"op":                  {value: textField(func(_ *Encoder, ev *Event) string { return opCode(ev.Op) })},
	"ts_ms":               {long: true, value: longField(func(_ *Event, tsMs int64) (int64, bool) { return tsMs, true })},
	"source.connector":    {value: textField(func(e *Encoder, _ *Event) string { return e.src.Connector })},
	"source.name":         {value: textField(func(e *Encoder, _ *Event) string { return e.src.Name })},
	"source.ts_ms":        {long: true, value: longField(func(ev *Event, _ int64) (int64, bool) { return sourceTsMs(ev), true })},
	"source.snapshot":     {value: textField(func(_ *Encoder, ev *Event) string { return ev.Snapshot.String() })},
	"source.db":           {value: bytesField(func(ev *Event) []byte { return ev.DB })},
	"source.collection":   {value: bytesField(func(ev *Event) []byte { return ev.Collection })},
	"source.ord":          {long: true, value: longField(func(ev *Event, _ int64) (int64, bool) { return int64(ev.ClusterTime.I), true })},
	"source.resume_token": {value: bytesField(func(ev *Event) []byte { return ev.ResumeToken })},
	"source.txn_id": {value: func(_ *Encoder, dst []byte, ev *Event, _ int64) ([]byte, int64, bool, error) {
		if ev.LSID == nil || !ev.HasTxnNumber {
			return dst, 0, false, nil
		}
		dst, err := appendSessionID(dst, ev.LSID)
		return strconv.AppendInt(append(dst, ':'), ev.TxnNumber, 10), 0, true, err
	}},
	"source.lsid": {value: func(_ *Encoder, dst []byte, ev *Event, _ int64) ([]byte, int64, bool, error) {
		if ev.LSID == nil {
			return dst, 0, false, nil
		}
		dst, err := appendSessionID(dst, ev.LSID)
		return dst, 0, true, err
	}},
	"source.txnNumber": {long: true, value: longField(func(ev *Event, _ int64) (int64, bool) { return ev.TxnNumber, ev.HasTxnNumber })},
}

// ParseAddedFields reads add.fields names ("op", "ts_ms", "source.db", ...).
func ParseAddedFields(names []string) (AddedFields, error) {
	var out AddedFields
	seen := map[string]bool{}
	for _, n := range names {
		f, ok := addable[n]
		if !ok {
			return nil, fmt.Errorf("%q is not a field of the envelope: use op, ts_ms or source.<field> with a field of source (connector, name, ts_ms, snapshot, db, collection, ord, resume_token, txn_id, lsid, txnNumber)", n)
		}
		if seen[n] {
			return nil, fmt.Errorf("%q is listed twice", n)
		}
		seen[n] = true
		f.name = "__" + strings.ReplaceAll(n, ".", "_")
		out = append(out, f)
	}
	return out, nil
}

// ErrFieldTaken is returned for a document that has a field of the name an added field takes:
// the document cannot be written with the added fields.
var ErrFieldTaken = errors.New("the document has a field of an added field's name (output.document.add.fields)")

// Check returns ErrFieldTaken when doc has a top-level field named as one of fs.
func (fs AddedFields) Check(doc bson.Raw) error {
	if len(fs) == 0 {
		return nil
	}
	it := bsonraw.Elements(doc)
	var el bsonraw.Element
	for it.Next(&el) {
		for _, f := range fs {
			if string(el.Key) == f.name {
				return fmt.Errorf("%w: %s", ErrFieldTaken, f.name)
			}
		}
	}
	return it.Err()
}

// sourceTsMs is source.ts_ms: wallTime when the event has it, else clusterTime seconds × 1000.
func sourceTsMs(ev *Event) int64 {
	if ev.HasWallTime {
		return ev.WallTime
	}
	return int64(ev.ClusterTime.T) * 1000
}

// avroSchema returns the fields as optional Avro record fields, to append to the document's.
func (fs AddedFields) avroSchema() string {
	var b strings.Builder
	for _, f := range fs {
		typ := "string"
		if f.long {
			typ = "long"
		}
		fmt.Fprintf(&b, `,{"name":"%s","type":["null","%s"],"default":null}`, f.name, typ)
	}
	return b.String()
}

// appendAvro writes the fields' values in the order of avroSchema.
func (fs AddedFields) appendAvro(dst []byte, e *Encoder, ev *Event, tsMs int64) ([]byte, error) {
	for _, f := range fs {
		mark := len(dst)
		dst = append(dst, 2)
		at := len(dst)
		var n int64
		var ok bool
		var err error
		if dst, n, ok, err = f.value(e, dst, ev, tsMs); err != nil {
			return dst, fmt.Errorf("%s: %w", f.name, err)
		}
		switch {
		case !ok:
			dst = append(dst[:mark], 0)
		case f.long:
			dst = avrobin.AppendLong(dst, n)
		default:
			dst = avrobin.PrefixLength(dst, at)
		}
	}
	return dst, nil
}

// appendJSON writes the fields as JSON members, each after a comma.
func (fs AddedFields) appendJSON(dst []byte, e *Encoder, ev *Event, tsMs int64) ([]byte, error) {
	for _, f := range fs {
		dst = append(append(append(dst, `,"`...), f.name...), `":`...)
		at := len(dst)
		var n int64
		var ok bool
		var err error
		if dst, n, ok, err = f.value(e, dst, ev, tsMs); err != nil {
			return dst, fmt.Errorf("%s: %w", f.name, err)
		}
		switch {
		case !ok:
			dst = append(dst, "null"...)
		case f.long:
			dst = strconv.AppendInt(dst, n, 10)
		default:
			dst = quoteFrom(dst, at)
		}
	}
	return dst, nil
}

// appendConnectSchema writes the fields' Connect schemas, each after a comma.
func (fs AddedFields) appendConnectSchema(dst []byte) []byte {
	for _, f := range fs {
		typ := `,{"type":"string"`
		if f.long {
			typ = `,{"type":"int64"`
		}
		dst = append(append(append(dst, typ...), `,"optional":true,"field":"`...), f.name...)
		dst = append(dst, `"}`...)
	}
	return dst
}

// quoteFrom turns the text written since at into a JSON string: its quoted form is appended
// after it and moved back over it, so nothing is allocated once dst has grown.
func quoteFrom(dst []byte, at int) []byte {
	end := len(dst)
	dst = bsonraw.AppendJSONString(dst, dst[at:end])
	n := copy(dst[at:], dst[end:])
	return dst[:at+n]
}
