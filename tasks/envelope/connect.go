package envelope

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"

	"github.com/mongorelay/mongorelay/tasks/avroschema/bsonraw"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// value.format=json_schema writes what Kafka Connect's JsonConverter writes with
// schemas.enable=true: {"schema": <Connect schema>, "payload": <value>}. A Connect schema is
// {"type", then "fields" (struct; each field's schema ends with "field": name) or "items"
// (array), "optional", and "name" and "version" when set}, in that order; types are named as
// JsonConverter names them (a Connect FLOAT64 is "double").

const (
	connectJSONDocument = `"optional":true,"name":"io.debezium.data.Json","version":1`
	connectTimestamp    = `"type":"int64","optional":true,"name":"org.apache.kafka.connect.data.Timestamp","version":1`
	connectUpdate       = `{"type":"struct","fields":[` +
		`{"type":"string",` + connectJSONDocument + `,"field":"updatedFields"},` +
		`{"type":"array","items":{"type":"string","optional":false},"optional":true,"field":"removedFields"},` +
		`{"type":"array","items":{"type":"struct","fields":[` +
		`{"type":"string","optional":false,"field":"field"},{"type":"int32","optional":false,"field":"newSize"}],` +
		`"optional":false,"name":"mongorelay.TruncatedArray"},"optional":true,"field":"truncatedArrays"}],` +
		`"optional":true,"name":"mongorelay.UpdateDescription","field":"updateDescription"}`
	connectSource = `{"type":"struct","fields":[` +
		`{"type":"string","optional":false,"field":"connector"},` +
		`{"type":"string","optional":false,"field":"name"},` +
		`{"type":"int64","optional":false,"field":"ts_ms"},` +
		`{"type":"string","optional":false,"field":"snapshot"},` +
		`{"type":"string","optional":false,"field":"db"},` +
		`{"type":"string","optional":false,"field":"collection"},` +
		`{"type":"int32","optional":false,"field":"ord"},` +
		`{"type":"string","optional":true,"field":"resume_token"},` +
		`{"type":"string","optional":true,"field":"txn_id"},` +
		`{"type":"string","optional":true,"field":"lsid"},` +
		`{"type":"int64","optional":true,"field":"txnNumber"}],` +
		`"optional":false,"name":"mongorelay.Source","field":"source"}`
)

// appendConnectEnvelopeSchema writes the Connect schema of the envelope: the Avro envelope's
// fields, with documents as strings of Extended JSON (io.debezium.data.Json, as Debezium's
// MongoDB connector declares them).
func appendConnectEnvelopeSchema(dst []byte, n Names) []byte {
	dst = append(dst, `{"type":"struct","fields":[`+
		`{"type":"string",`+connectJSONDocument+`,"field":"before"},`+
		`{"type":"string",`+connectJSONDocument+`,"field":"after"},`+
		connectUpdate+`,`+connectSource+`,`+
		`{"type":"string","optional":false,"field":"op"},`+
		`{"type":"int64","optional":true,"field":"ts_ms"}],"optional":false,"name":`...)
	return append(bsonraw.AppendJSONString(dst, []byte(n.Envelope)), '}')
}

// AppendConnectValue appends the envelope of ev as JsonConverter writes it with schemas
// (value.format=json_schema): the envelope's schema, and as payload what AppendJSONValue
// writes with documents as strings. The encoder must come from NewJSONEncoder with objects
// false.
func (e *Encoder) AppendConnectValue(dst []byte, ev *Event, tsMs int64) ([]byte, error) {
	start := len(dst)
	dst = append(append(append(dst, `{"schema":`...), e.connectSchema...), `,"payload":`...)
	dst, err := e.appendJSONValue(dst, ev, tsMs)
	if err != nil {
		return dst[:start], fmt.Errorf("encode %s event on %s.%s as JSON with schema: %w", ev.Op, ev.DB, ev.Collection, err)
	}
	return append(dst, '}'), nil
}

// AppendConnectDocument appends ev's document as JsonConverter writes a struct with schemas
// (value.format=json_schema, output.shape=document). The schema is the document's own, derived
// from its BSON types, every field optional:
//
//	int32, int64, double       int32, int64, double (NaN and ±Infinity: string "NaN", "Infinity", "-Infinity")
//	string, boolean            string, boolean
//	embedded document          struct
//	array                      array of its elements' schema when they share one (an empty array: of string),
//	                           else a string of its Extended JSON (io.debezium.data.Json)
//	ObjectId                   string, 24 hex digits
//	date                       int64 org.apache.kafka.connect.data.Timestamp (milliseconds)
//	Decimal128                 string, the exact decimal
//	binary                     bytes (base64 in JSON, as JsonConverter writes bytes)
//	null                       string, value null
//	any other type             string of its Extended JSON (io.debezium.data.Json)
//
// The record is named Names.Value; the added fields follow the document's. Errors are
// AppendDocument's.
func (e *Encoder) AppendConnectDocument(dst []byte, ev *Event, tsMs int64) ([]byte, error) {
	start := len(dst)
	dst, err := e.appendConnectDocument(dst, ev, tsMs)
	if err != nil {
		return dst[:start], fmt.Errorf("encode the document of %s event on %s.%s as JSON with schema: %w", ev.Op, ev.DB, ev.Collection, err)
	}
	return dst, nil
}

func (e *Encoder) appendConnectDocument(dst []byte, ev *Event, tsMs int64) ([]byte, error) {
	doc, err := e.shapeDocument(ev)
	if err != nil {
		return dst, err
	}
	dst = append(dst, `{"schema":{"type":"struct","fields":`...)
	if dst, err = appendStructFieldsSchema(dst, doc); err != nil {
		return dst, err
	}
	dst = e.schema.fields.appendConnectSchema(dst[:len(dst)-1])
	dst = append(dst, `],"optional":false,"name":`...)
	dst = bsonraw.AppendJSONString(dst, []byte(e.schema.names.Value))
	dst = append(dst, `},"payload":`...)
	if dst, err = appendStructPayload(dst, doc); err != nil {
		return dst, err
	}
	if dst, err = e.schema.fields.appendJSON(dst[:len(dst)-1], e, ev, tsMs); err != nil {
		return dst, err
	}
	return append(dst, "}}"...), nil
}

// appendStructFieldsSchema writes the "fields" array of a document's struct schema.
func appendStructFieldsSchema(dst []byte, doc []byte) ([]byte, error) {
	dst = append(dst, '[')
	it := bsonraw.Elements(doc)
	var el bsonraw.Element
	for i := 0; it.Next(&el); i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = appendConnectSchema(dst, el.Type, el.Value); err != nil {
			return dst, fmt.Errorf("%s: %w", el.Key, err)
		}
		dst = bsonraw.AppendJSONString(append(dst[:len(dst)-1], `,"field":`...), el.Key)
		dst = append(dst, '}')
	}
	return append(dst, ']'), it.Err()
}

// appendConnectSchema writes the optional Connect schema of one BSON value.
func appendConnectSchema(dst []byte, t bson.Type, v []byte) ([]byte, error) {
	switch t {
	case bson.TypeInt32:
		return append(dst, `{"type":"int32","optional":true}`...), nil
	case bson.TypeInt64:
		return append(dst, `{"type":"int64","optional":true}`...), nil
	case bson.TypeDouble:
		if f := math.Float64frombits(uint64(bsonraw.Int64(v))); math.IsNaN(f) || math.IsInf(f, 0) {
			return append(dst, `{"type":"string","optional":true}`...), nil
		}
		return append(dst, `{"type":"double","optional":true}`...), nil
	case bson.TypeString, bson.TypeObjectID, bson.TypeDecimal128, bson.TypeNull:
		return append(dst, `{"type":"string","optional":true}`...), nil
	case bson.TypeBoolean:
		return append(dst, `{"type":"boolean","optional":true}`...), nil
	case bson.TypeDateTime:
		return append(dst, `{`+connectTimestamp+`}`...), nil
	case bson.TypeBinary:
		return append(dst, `{"type":"bytes","optional":true}`...), nil
	case bson.TypeEmbeddedDocument:
		dst = append(dst, `{"type":"struct","fields":`...)
		dst, err := appendStructFieldsSchema(dst, v)
		return append(dst, `,"optional":true}`...), err
	case bson.TypeArray:
		if items, ok, err := arrayItemsSchema(dst, v); err != nil || ok {
			return items, err
		}
	}
	return append(dst, `{"type":"string",`+connectJSONDocument+`}`...), nil
}

// arrayItemsSchema writes the schema of an array whose elements share one schema; ok is false
// (and dst unchanged) when they do not.
func arrayItemsSchema(dst []byte, arr []byte) (out []byte, ok bool, err error) {
	start := len(dst)
	dst = append(dst, `{"type":"array","items":`...)
	at := len(dst)
	it := bsonraw.Elements(arr)
	var el bsonraw.Element
	n := 0
	for ; it.Next(&el); n++ {
		if n == 0 {
			if dst, err = appendConnectSchema(dst, el.Type, el.Value); err != nil {
				return dst[:start], false, err
			}
			continue
		}
		end := len(dst)
		if dst, err = appendConnectSchema(dst, el.Type, el.Value); err != nil {
			return dst[:start], false, err
		}
		same := bytes.Equal(dst[at:end], dst[end:])
		dst = dst[:end]
		if !same {
			return dst[:start], false, nil
		}
	}
	if err := it.Err(); err != nil {
		return dst[:start], false, err
	}
	if n == 0 {
		dst = append(dst, `{"type":"string","optional":true}`...)
	}
	return append(dst, `,"optional":true}`...), true, nil
}

// appendStructPayload writes a document as the payload of its struct schema.
func appendStructPayload(dst []byte, doc []byte) ([]byte, error) {
	dst = append(dst, '{')
	it := bsonraw.Elements(doc)
	var el bsonraw.Element
	for i := 0; it.Next(&el); i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(bsonraw.AppendJSONString(dst, el.Key), ':')
		var err error
		if dst, err = appendConnectPayload(dst, el.Type, el.Value); err != nil {
			return dst, fmt.Errorf("%s: %w", el.Key, err)
		}
	}
	return append(dst, '}'), it.Err()
}

// appendConnectPayload writes one BSON value as the payload of appendConnectSchema's schema.
func appendConnectPayload(dst []byte, t bson.Type, v []byte) ([]byte, error) {
	switch t {
	case bson.TypeInt32:
		return strconv.AppendInt(dst, int64(bsonraw.Int32(v)), 10), nil
	case bson.TypeInt64, bson.TypeDateTime:
		return strconv.AppendInt(dst, bsonraw.Int64(v), 10), nil
	case bson.TypeDouble:
		f := math.Float64frombits(uint64(bsonraw.Int64(v)))
		switch {
		case math.IsNaN(f):
			return append(dst, `"NaN"`...), nil
		case math.IsInf(f, 1):
			return append(dst, `"Infinity"`...), nil
		case math.IsInf(f, -1):
			return append(dst, `"-Infinity"`...), nil
		}
		at := len(dst)
		dst = strconv.AppendFloat(dst, f, 'g', -1, 64)
		if !bytes.ContainsAny(dst[at:], ".e") {
			dst = append(dst, ".0"...) // a double stays a double for JSON readers: 3.0, not 3
		}
		return dst, nil
	case bson.TypeString:
		s, err := bsonraw.String(v)
		return bsonraw.AppendJSONString(dst, s), err
	case bson.TypeObjectID:
		return append(hex.AppendEncode(append(dst, '"'), v[:12]), '"'), nil
	case bson.TypeDecimal128:
		return append(bsonraw.AppendDecimal128(append(dst, '"'), v), '"'), nil
	case bson.TypeNull:
		return append(dst, "null"...), nil
	case bson.TypeBoolean:
		return strconv.AppendBool(dst, v[0] == 1), nil
	case bson.TypeBinary:
		_, data, err := bsonraw.Binary(v)
		return append(base64.StdEncoding.AppendEncode(append(dst, '"'), data), '"'), err
	case bson.TypeEmbeddedDocument:
		return appendStructPayload(dst, v)
	case bson.TypeArray:
		if _, ok, err := arrayItemsSchema(dst, v); err != nil {
			return dst, err
		} else if ok {
			return appendArrayPayload(dst, v)
		}
	}
	return appendJSONStringOf(dst, func(b []byte) ([]byte, error) { return bsonraw.AppendExtJSONValue(b, t, v) })
}

func appendArrayPayload(dst []byte, arr []byte) ([]byte, error) {
	dst = append(dst, '[')
	it := bsonraw.Elements(arr)
	var el bsonraw.Element
	for i := 0; it.Next(&el); i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = appendConnectPayload(dst, el.Type, el.Value); err != nil {
			return dst, fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return append(dst, ']'), it.Err()
}
