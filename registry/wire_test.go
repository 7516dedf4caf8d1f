package registry

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/hamba/avro/v2"
)

type schemaMap map[int]string

func (m schemaMap) SchemaByID(_ context.Context, id int) (string, error) {
	if s, ok := m[id]; ok {
		return s, nil
	}
	return "", ErrSchemaNotFound
}

func TestWireRoundTrip(t *testing.T) {
	const text = `{"type":"record","name":"Key","fields":[{"name":"id","type":"string"}]}`
	body, err := avro.Marshal(avro.MustParse(text), map[string]any{"id": `{"$oid":"65a1b2c3d4e5f60718293a4b"}`})
	if err != nil {
		t.Fatal(err)
	}
	msg := append(AppendWireHeader(nil, 258), body...)
	if want := []byte{0, 0, 0, 1, 2}; !reflect.DeepEqual(msg[:5], want) {
		t.Fatalf("header = %v, want %v", msg[:5], want)
	}
	got, err := NewDecoder(schemaMap{258: text}).Decode(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"id": `{"$oid":"65a1b2c3d4e5f60718293a4b"}`}; !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %v, want %v", got, want)
	}
}

func TestDecodeUnwrapsUnions(t *testing.T) {
	const text = `{"type":"record","name":"V","fields":[
		{"name":"doc","type":["null",{"type":"record","name":"D","fields":[{"name":"n","type":["null","long","double"]}]}]},
		{"name":"tags","type":["null",{"type":"array","items":["null","string",{"type":"long","logicalType":"timestamp-millis"}]}]},
		{"name":"m","type":["null",{"type":"map","values":["null","int","string"]}]},
		{"name":"s","type":["null","string"]}]}`
	sch := avro.MustParse(text)
	in := map[string]any{
		"doc":  map[string]any{"D": map[string]any{"n": map[string]any{"double": 1.5}}},
		"tags": map[string]any{"array": []any{map[string]any{"string": "a"}, nil}},
		"m":    map[string]any{"map": map[string]any{"k": map[string]any{"int": 7}}},
		"s":    "plain",
	}
	body, err := avro.Marshal(sch, in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := NewDecoder(schemaMap{1: text}).Decode(context.Background(), append(AppendWireHeader(nil, 1), body...))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"doc":  map[string]any{"n": 1.5},
		"tags": []any{"a", nil},
		"m":    map[string]any{"k": 7},
		"s":    "plain",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %#v, want %#v", got, want)
	}
}

func TestWireRejects(t *testing.T) {
	tests := []struct {
		name string
		msg  []byte
		want error
	}{
		{"short", []byte{0, 0, 1}, ErrNotWireFormat},
		{"bad magic", []byte{1, 0, 0, 0, 1, 2}, ErrNotWireFormat},
		{"unknown id", []byte{0, 0, 0, 0, 9, 2}, ErrSchemaNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewDecoder(schemaMap{}).Decode(context.Background(), tt.msg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode error = %v, want %v", err, tt.want)
			}
		})
	}
}
