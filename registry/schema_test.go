package registry_test

import (
	"errors"
	"testing"

	"github.com/mongorelay/mongorelay/registry"
)

func TestCanonical(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"primitive", `"string"`, `"string"`},
		{"primitive as object", ` { "type" : "long" } `, `"long"`},
		{"named reference kept as object", `{"type":"com.x.T"}`, `{"type":"com.x.T"}`},
		{"primitive with a property kept", `{"type":"string","connect.name":"x"}`, `{"type":"string","connect.name":"x"}`},
		{"key order", `{"fields":[{"type":"int","default":0,"name":"a"}],"type":"record","namespace":"n","name":"R","zz":1,"aa":2}`,
			`{"name":"R","type":"record","namespace":"n","fields":[{"name":"a","type":"int","default":0}],"aa":2,"zz":1}`},
		{"numbers kept as written", `{"type":"record","name":"R","fields":[{"name":"d","type":"double","default":1.50}]}`,
			`{"name":"R","type":"record","fields":[{"name":"d","type":"double","default":1.50}]}`},
		{"no HTML escaping", `{"type":"record","name":"R","doc":"a<b & c>d","fields":[]}`,
			`{"name":"R","type":"record","doc":"a<b & c>d","fields":[]}`},
		{"union order kept", `["string", "null"]`, `["string","null"]`},
		{"nested primitives", `{"type":"array","items":{"type":"int"}}`, `{"type":"array","items":"int"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := registry.Canonical(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("Canonical = %s\nwant        %s", got, tt.want)
			}
			if again, _ := registry.Canonical(got); again != got {
				t.Fatalf("not stable: %s", again)
			}
		})
	}
	if _, err := registry.Canonical(`{"a":`); !errors.Is(err, registry.ErrInvalidSchema) {
		t.Fatalf("bad JSON: %v", err)
	}
}
