package avroschema

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// ToBSON turns a value hamba/avro decoded with schema s (avro.Unmarshal into an any) back into
// the BSON value the Encoder wrote, from the schema alone: field names from their
// "mongodb.name" property, ObjectId, Decimal128 and Extended JSON from their "mongodb.type"
// hint, the other BSON kinds from their mongorelay.bson records. A document is a bson.D in
// the schema's field order, an array a bson.A; an absent field is left out, an explicit null
// field is bson.Null{}. It takes unions both as hamba gives named branches ({"name": value})
// and as it gives a nullable union's bare value.
func ToBSON(s avro.Schema, v any) (any, error) {
	if ref, ok := s.(*avro.RefSchema); ok {
		s = ref.Schema()
	}
	switch s := s.(type) {
	case *avro.UnionSchema:
		if v == nil {
			return nil, nil
		}
		if m, ok := v.(map[string]any); ok && len(m) == 1 {
			for name, inner := range m {
				for _, b := range s.Types() {
					if unionBranchName(b) == name {
						return ToBSON(b, inner)
					}
				}
			}
		}
		for _, b := range s.Types() {
			if goTypeMatches(b, v) {
				return ToBSON(b, v)
			}
		}
		return nil, fmt.Errorf("a %T matches no branch of %s", v, s)
	case *avro.RecordSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("record %s holds a %T", s.FullName(), v)
		}
		if name, ok := strings.CutPrefix(s.FullName(), bsonNamespace+"."); ok {
			return bsonRecord(s, name, m)
		}
		d := bson.D{}
		for _, f := range s.Fields() {
			val, err := ToBSON(f.Type(), m[f.Name()])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.Name(), err)
			}
			if val == nil {
				continue // absent
			}
			key := f.Name()
			if orig, ok := f.Prop(propName).(string); ok {
				key = orig
			}
			d = append(d, bson.E{Key: key, Value: val})
		}
		return d, nil
	case *avro.ArraySchema:
		items, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("array holds a %T", v)
		}
		a := make(bson.A, 0, len(items))
		for _, item := range items {
			val, err := ToBSON(s.Items(), item)
			if err != nil {
				return nil, err
			}
			if _, null := val.(bson.Null); null {
				val = nil
			}
			a = append(a, val)
		}
		return a, nil
	case *avro.MapSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("map holds a %T", v)
		}
		d := bson.D{}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			val, err := ToBSON(s.Values(), m[k])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if _, null := val.(bson.Null); null {
				val = nil
			}
			d = append(d, bson.E{Key: k, Value: val})
		}
		return d, nil
	case *avro.PrimitiveSchema:
		return primitiveToBSON(s, v)
	}
	return nil, fmt.Errorf("schema type %s is not one the Encoder writes", s.Type())
}

// unionBranchName is the key hamba gives a union branch: a named type's full name, else the
// type and its logical type ("long.timestamp-millis").
func unionBranchName(s avro.Schema) string {
	if ref, ok := s.(*avro.RefSchema); ok {
		s = ref.Schema()
	}
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	if p, ok := s.(*avro.PrimitiveSchema); ok && p.Logical() != nil {
		return string(p.Type()) + "." + string(p.Logical().Type())
	}
	return string(s.Type())
}

func goTypeMatches(s avro.Schema, v any) bool {
	switch v.(type) {
	case string:
		return s.Type() == avro.String
	case int:
		return s.Type() == avro.Int
	case int64, time.Time:
		return s.Type() == avro.Long
	case float64:
		return s.Type() == avro.Double
	case bool:
		return s.Type() == avro.Boolean
	case []byte:
		return s.Type() == avro.Bytes
	case []any:
		return s.Type() == avro.Array
	case map[string]any:
		return s.Type() == avro.Map
	}
	return false
}

func primitiveToBSON(s *avro.PrimitiveSchema, v any) (any, error) {
	hint, _ := s.Prop(propType).(string)
	bad := func() (any, error) { return nil, fmt.Errorf("%s value holds a %T", s.Type(), v) }
	switch s.Type() {
	case avro.String:
		str, ok := v.(string)
		if !ok {
			return bad()
		}
		switch hint {
		case "objectId":
			return bson.ObjectIDFromHex(str)
		case "decimal128":
			return bson.ParseDecimal128(str)
		case "extjson":
			return fromExtJSON(str)
		}
		return str, nil
	case avro.Long:
		switch n := v.(type) {
		case time.Time:
			return bson.DateTime(n.UnixMilli()), nil
		case int64:
			if s.Logical() != nil && s.Logical().Type() == avro.TimestampMillis {
				return bson.DateTime(n), nil
			}
			return n, nil
		}
		return bad()
	case avro.Int:
		n, ok := v.(int)
		if !ok {
			return bad()
		}
		return int32(n), nil
	case avro.Double:
		f, ok := v.(float64)
		if !ok {
			return bad()
		}
		return f, nil
	case avro.Boolean:
		b, ok := v.(bool)
		if !ok {
			return bad()
		}
		return b, nil
	case avro.Bytes:
		b, ok := v.([]byte)
		if !ok {
			return bad()
		}
		return bson.Binary{Subtype: 0, Data: b}, nil
	}
	return nil, fmt.Errorf("primitive %s is not one the Encoder writes", s.Type())
}

func fromExtJSON(s string) (bson.RawValue, error) {
	var holder bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(`{"v":`+s+`}`), true, &holder); err != nil {
		return bson.RawValue{}, fmt.Errorf("extended JSON %q: %w", s, err)
	}
	return holder.Lookup("v"), nil
}

// bsonRecord reads a mongorelay.bson record back into its BSON kind.
func bsonRecord(s *avro.RecordSchema, name string, m map[string]any) (any, error) {
	str := func(f string) string { v, _ := m[f].(string); return v }
	switch name {
	case "String", "Int64", "Bytes", "ObjectId", "Decimal128", "ExtJSON", "DateTime":
		for _, f := range s.Fields() {
			if f.Name() == "value" {
				if p, ok := f.Type().(*avro.PrimitiveSchema); ok {
					return primitiveToBSON(p, m["value"])
				}
			}
		}
		return nil, fmt.Errorf("record %s has no primitive value field", s.FullName())
	case "Null":
		return bson.Null{}, nil
	case "Binary":
		sub, _ := m["subtype"].(int)
		data, _ := m["data"].([]byte)
		return bson.Binary{Subtype: byte(sub), Data: data}, nil
	case "Regex":
		return bson.Regex{Pattern: str("pattern"), Options: str("options")}, nil
	case "DBPointer":
		oid, err := bson.ObjectIDFromHex(str("id"))
		if err != nil {
			return nil, fmt.Errorf("DBPointer id: %w", err)
		}
		return bson.DBPointer{DB: str("ref"), Pointer: oid}, nil
	case "JavaScript":
		return bson.JavaScript(str("code")), nil
	case "JavaScriptWithScope":
		scope, err := fromExtJSON(str("scope"))
		if err != nil {
			return nil, err
		}
		return bson.CodeWithScope{Code: bson.JavaScript(str("code")), Scope: scope.Document()}, nil
	case "Symbol":
		return bson.Symbol(str("symbol")), nil
	case "Timestamp":
		t, _ := m["t"].(int64)
		i, _ := m["i"].(int64)
		return bson.Timestamp{T: uint32(t), I: uint32(i)}, nil
	case "MinKey":
		return bson.MinKey{}, nil
	case "MaxKey":
		return bson.MaxKey{}, nil
	}
	return nil, fmt.Errorf("unknown BSON record %s", s.FullName())
}
