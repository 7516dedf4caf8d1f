package avroschema

import (
	"errors"
	"strconv"
	"strings"
)

// ErrNotCovered is wrapped by Encoder.Append when the document has a field, a type or a shape
// (record or map) that the schema lacks. The caller then infers the document's shape, merges it
// into the latest registered schema, registers the result and compiles a new encoder; a
// document the schema covers never costs more than its encoding.
var ErrNotCovered = errors.New("document not covered by the schema")

// pathError names the field path where an error happened, e.g. "items[3].price".
type pathError struct {
	segs []string // innermost first
	err  error
}

// pathErr adds seg in front of err's path. Only failures allocate it.
func pathErr(err error, seg string) error {
	if err == nil {
		return nil
	}
	if pe, ok := err.(*pathError); ok {
		pe.segs = append(pe.segs, seg)
		return pe
	}
	return &pathError{segs: []string{seg}, err: err}
}

func indexSeg(i int) string { return "[" + strconv.Itoa(i) + "]" }

func (e *pathError) Error() string {
	var b strings.Builder
	b.WriteString("field ")
	for i := len(e.segs) - 1; i >= 0; i-- {
		s := e.segs[i]
		if i < len(e.segs)-1 && !strings.HasPrefix(s, "[") {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	b.WriteString(": ")
	b.WriteString(e.err.Error())
	return b.String()
}

func (e *pathError) Unwrap() error { return e.err }
