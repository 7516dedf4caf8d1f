package worker

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// readYAML reads a worker config file: a YAML mapping of the same dotted keys as the flags,
// written flat or nested, which may mix:
//
//	node.id: node-1
//	kafka.bootstrap.servers: [k1:9092, k2:9092]
//	worker:
//	  lease: 4s
//
// Lists become comma-separated values. An unknown key is an error naming it (a typo in a file
// should not silently fall back to a default).
func readYAML(data []byte, all []setting) (map[string]string, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	out := map[string]string{}
	var errs []error
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			name := k
			if prefix != "" {
				name = prefix + "." + k
			}
			switch v := m[k].(type) {
			case map[string]any:
				walk(name, v)
			case []any:
				items := make([]string, 0, len(v))
				for _, item := range v {
					items = append(items, scalar(item))
				}
				put(out, &errs, all, name, strings.Join(items, ","))
			default:
				put(out, &errs, all, name, scalar(v))
			}
		}
	}
	walk("", doc)
	return out, errors.Join(errs...)
}

func put(out map[string]string, errs *[]error, all []setting, name, v string) {
	if !knownSetting(all, name) {
		*errs = append(*errs, fmt.Errorf("unknown key %q", name))
		return
	}
	if _, dup := out[name]; dup {
		*errs = append(*errs, fmt.Errorf("key %q is given twice", name))
		return
	}
	out[name] = v
}

func scalar(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}
