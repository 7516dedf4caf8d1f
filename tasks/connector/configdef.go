package connector

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Hidden replaces a secret wherever a config value is shown, as Kafka Connect does.
const Hidden = "[hidden]"

// ConfigKey is one config key as Kafka Connect's ConfigDef describes it: the metadata behind
// validation, GET /connector-plugins/{plugin}/config and config/validate.
type ConfigKey struct {
	Name string
	// Type is Connect's type name: STRING, INT, BOOLEAN, LIST, PASSWORD, CLASS.
	Type string
	// Default is the value used when the key is absent; "" with Required false means none.
	Default  string
	Required bool
	// Importance is HIGH, MEDIUM or LOW.
	Importance    string
	Documentation string
	// Group and OrderInGroup place the key in a UI's form; Width (SHORT, MEDIUM, LONG, NONE)
	// and DisplayName say how to show it.
	Group        string
	OrderInGroup int
	Width        string
	DisplayName  string
	// Dependents are the keys whose meaning depends on this one.
	Dependents []string
	// ValidValues lists the accepted values, when there is a fixed set.
	ValidValues []string
}

// Problem is one thing wrong with a config.
type Problem struct {
	Key string
	// Value is the value given, redacted if it is secret; "" when absent.
	Value string
	// Message says what is wrong and how to fix it; it quotes Value where that helps.
	Message string
}

// String reads like: config "shard.filter": "sever" is not one of auto, server, client (did
// you mean "server"?)
func (p Problem) String() string { return fmt.Sprintf("config %q: %s", p.Key, p.Message) }

// ValidationError lists every problem of a config.
type ValidationError struct {
	Problems []Problem
}

// Error lists the problems one per line, after a count, in the words Kafka Connect uses for an
// invalid connector config.
func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "connector configuration is invalid and contains the following %d error(s):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n")
		b.WriteString(p.String())
	}
	return b.String()
}

// ConfigFromJSON reads a connector config object as Kafka Connect's REST API sends it (the body
// of PUT /connectors/{name}/config) into the string map every kind validates. Values may be
// strings, numbers, booleans (kept as written: 8, true), or objects and arrays (kept as compact
// JSON text, e.g. a pipeline); null means unset.
func ConfigFromJSON(config []byte) (map[string]string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(config, &obj); err != nil {
		return nil, fmt.Errorf("parse connector config JSON (want an object of key: value): %w", err)
	}
	raw := make(map[string]string, len(obj))
	for k, v := range obj {
		v = bytes.TrimSpace(v)
		switch {
		case bytes.Equal(v, []byte("null")):
			continue
		case len(v) > 0 && v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("parse connector config JSON: %q: %w", k, err)
			}
			raw[k] = s
		default:
			var buf bytes.Buffer
			if err := json.Compact(&buf, v); err != nil {
				return nil, fmt.Errorf("parse connector config JSON: %q: %w", k, err)
			}
			raw[k] = buf.String()
		}
	}
	return raw, nil
}

// ConnectorFromJSON reads a connector as Kafka Connect's REST API and its connector files give
// it: {"name": "...", "config": {...}}.
func ConnectorFromJSON(data []byte) (name string, config map[string]string, err error) {
	var doc struct {
		Name   string          `json:"name"`
		Config json.RawMessage `json:"config"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return "", nil, fmt.Errorf(`parse connector JSON (want {"name": "...", "config": {...}}): %w`, err)
	}
	if doc.Config == nil {
		return "", nil, fmt.Errorf(`parse connector JSON: no "config" object`)
	}
	config, err = ConfigFromJSON(doc.Config)
	return doc.Name, config, err
}
