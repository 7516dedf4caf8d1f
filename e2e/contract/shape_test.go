//go:build e2e

package contract

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// A shape is what a JSON answer must look like: the keys and types Kafka Connect's entities
// have, and the values where Connect fixes them. check returns every mismatch, each naming
// where in the answer it is (path).
type shape interface {
	check(path string, v any) []string
}

// mismatch is one difference found at path.
func mismatch(path, format string, args ...any) []string {
	return []string{path + ": " + fmt.Sprintf(format, args...)}
}

// typ is a JSON type: any value of it matches.
type typ string

const (
	str     typ = "string"
	num     typ = "number"
	boolean typ = "boolean"
	object  typ = "object"
	anyJSON typ = "any"
)

func (t typ) check(path string, v any) []string {
	var ok bool
	switch t {
	case str:
		_, ok = v.(string)
	case num:
		_, ok = v.(float64)
	case boolean:
		_, ok = v.(bool)
	case object:
		_, ok = v.(map[string]any)
	case anyJSON:
		ok = true
	}
	if !ok {
		return mismatch(path, "%s is not a %s", short(v), t)
	}
	return nil
}

// eq matches one value: a string, a number (float64) or a bool.
type eq struct{ want any }

func (e eq) check(path string, v any) []string {
	if n, ok := e.want.(int); ok {
		e.want = float64(n)
	}
	if v != e.want {
		return mismatch(path, "%s, want %s", short(v), short(e.want))
	}
	return nil
}

// oneOf matches any of the strings.
type oneOf []string

func (o oneOf) check(path string, v any) []string {
	if s, ok := v.(string); !ok || !slices.Contains(o, s) {
		return mismatch(path, "%s is not one of %v", short(v), []string(o))
	}
	return nil
}

// contains matches a string holding each of the substrings.
type contains []string

func (c contains) check(path string, v any) []string {
	s, ok := v.(string)
	if !ok {
		return mismatch(path, "%s is not a string", short(v))
	}
	var out []string
	for _, sub := range c {
		if !strings.Contains(s, sub) {
			out = append(out, mismatch(path, "%q does not contain %q", s, sub)...)
		}
	}
	return out
}

// nullOr matches null or what s matches.
type nullOr struct{ s shape }

func (n nullOr) check(path string, v any) []string {
	if v == nil {
		return nil
	}
	return n.s.check(path, v)
}

// fields matches an object with at least these keys (another key is allowed: Connect's clients
// ignore what they do not know); a key whose shape is absent must not be there.
type fields map[string]shape

// absent is the shape of a key that must not be in the object.
type absentKey struct{}

var absent shape = absentKey{}

func (absentKey) check(path string, _ any) []string {
	return mismatch(path, "is present, want no such key")
}

func (f fields) check(path string, v any) []string {
	obj, ok := v.(map[string]any)
	if !ok {
		return mismatch(path, "%s is not an object", short(v))
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(f)) {
		got, ok := obj[k]
		switch {
		case f[k] == absent && !ok:
		case !ok:
			out = append(out, mismatch(path, "has no key %q", k)...)
		default:
			out = append(out, f[k].check(path+"."+k, got)...)
		}
	}
	return out
}

// exact matches an object with exactly these keys.
type exact map[string]shape

func (e exact) check(path string, v any) []string {
	out := fields(e).check(path, v)
	if obj, ok := v.(map[string]any); ok {
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			if _, ok := e[k]; !ok {
				out = append(out, mismatch(path, "has key %q, want only %v", k, slices.Sorted(maps.Keys(e)))...)
			}
		}
	}
	return out
}

// arrayOf matches an array whose every element matches elem, with at least min elements.
type arrayOf struct {
	elem shape
	min  int
}

func array(elem shape) arrayOf { return arrayOf{elem: elem} }

func nonEmpty(elem shape) arrayOf { return arrayOf{elem: elem, min: 1} }

func (a arrayOf) check(path string, v any) []string {
	arr, ok := v.([]any)
	if !ok {
		return mismatch(path, "%s is not an array", short(v))
	}
	if len(arr) < a.min {
		return mismatch(path, "has %d elements, want at least %d", len(arr), a.min)
	}
	var out []string
	for i, e := range arr {
		out = append(out, a.elem.check(fmt.Sprintf("%s[%d]", path, i), e)...)
	}
	return out
}

// emptyArray matches [].
type emptyArray struct{}

func (emptyArray) check(path string, v any) []string {
	if arr, ok := v.([]any); !ok || len(arr) > 0 {
		return mismatch(path, "%s, want []", short(v))
	}
	return nil
}

// mapOf matches an object whose every value matches elem, with at least min keys.
type mapOf struct {
	elem shape
	min  int
}

func (m mapOf) check(path string, v any) []string {
	obj, ok := v.(map[string]any)
	if !ok {
		return mismatch(path, "%s is not an object", short(v))
	}
	if len(obj) < m.min {
		return mismatch(path, "has %d keys, want at least %d", len(obj), m.min)
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		out = append(out, m.elem.check(path+"."+k, obj[k])...)
	}
	return out
}

// all matches what every one of its shapes matches.
type all []shape

func (a all) check(path string, v any) []string {
	var out []string
	for _, s := range a {
		out = append(out, s.check(path, v)...)
	}
	return out
}

// short is v as a mismatch quotes it.
func short(v any) string {
	s := fmt.Sprintf("%#v", v)
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}
