package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/tasks/connector"
)

// pipelineStages are the stages a change stream accepts that keep the event
// whole enough for an envelope ($replaceRoot and $replaceWith, which the
// server also accepts, would replace the event itself).
var pipelineStages = []string{"$match", "$project", "$addFields", "$set", "$unset", "$redact"}

// eventFields are the change event fields the envelope, the resume logic and
// the shard filter read; no stage may remove or rewrite them.
var eventFields = []string{"_id", "operationType", "ns", "documentKey", "clusterTime"}

const pipelineExample = `[{"$match": {"operationType": "insert"}}]`

func setPipeline(c *Config, v string) string {
	if msg := checkPipelineJSON(v); msg != "" {
		return msg
	}
	var wrapper struct {
		Pipeline []bson.D `bson:"pipeline"`
	}
	if err := bson.UnmarshalExtJSON([]byte(`{"pipeline":`+v+`}`), false, &wrapper); err != nil {
		return fmt.Sprintf("is not valid extended JSON (%v): write the stages as extended JSON, e.g. {\"$date\": \"2024-01-01T00:00:00Z\"} for a date", err)
	}
	c.Pipeline = wrapper.Pipeline
	return ""
}

// checkPipelineJSON checks v with encoding/json first, whose errors carry
// the offset in the user's own text, then the shape of each stage.
func checkPipelineJSON(v string) string {
	dec := json.NewDecoder(strings.NewReader(v))
	dec.UseNumber()
	var top any
	if err := dec.Decode(&top); err != nil {
		var se *json.SyntaxError
		switch {
		case errors.As(err, &se):
			return fmt.Sprintf("is not valid JSON at character %d (%s) near %q: write a JSON array of stages, e.g. %s",
				se.Offset, strings.TrimPrefix(se.Error(), "json: "), near(v, int(se.Offset)), pipelineExample)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return fmt.Sprintf("is not valid JSON: it ends early, at character %d: close every bracket and quote, e.g. %s", len(v), pipelineExample)
		default:
			return fmt.Sprintf("is not valid JSON (%v): write a JSON array of stages, e.g. %s", err, pipelineExample)
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Sprintf("has text after the array, at character %d: give one JSON array, e.g. %s", dec.InputOffset(), pipelineExample)
	}
	stages, ok := top.([]any)
	if !ok {
		return "is not a JSON array of stages: wrap the stages in [...], e.g. " + pipelineExample
	}
	for i, s := range stages {
		if msg := checkStage(s); msg != "" {
			return fmt.Sprintf("stage %d %s", i+1, msg)
		}
	}
	return ""
}

func checkStage(s any) string {
	doc, ok := s.(map[string]any)
	if !ok || len(doc) != 1 {
		return `is not a document with one stage name, like {"$match": {...}}`
	}
	var name string
	var spec any
	for name, spec = range doc {
	}
	if !slices.Contains(pipelineStages, name) {
		msg := fmt.Sprintf("%q is not a stage a change stream pipeline may use here (%s)", name, strings.Join(pipelineStages, ", "))
		if s := connector.Suggest(name, pipelineStages); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		return msg
	}
	switch name {
	case "$project":
		fields, ok := spec.(map[string]any)
		if !ok {
			return "$project takes a document of fields"
		}
		for f, how := range fields {
			if excluded(how) {
				if p := protected(f); p != "" {
					return fmt.Sprintf("$project removes %s, which mongorelay needs: exclude other fields only", p)
				}
				continue
			}
			if f != "_id" {
				return fmt.Sprintf(`$project includes %q, which drops every field it does not name, including those mongorelay needs: exclude fields instead, e.g. {"$project": {"fullDocument.password": 0}}`, f)
			}
		}
	case "$unset":
		var fields []any
		switch t := spec.(type) {
		case string:
			fields = []any{t}
		case []any:
			fields = t
		}
		for _, f := range fields {
			if s, _ := f.(string); protected(s) != "" {
				return fmt.Sprintf("$unset removes %s, which mongorelay needs", protected(s))
			}
		}
	case "$addFields", "$set":
		fields, _ := spec.(map[string]any)
		for f := range fields {
			if p := protected(f); p != "" {
				return fmt.Sprintf("%s rewrites %s, which mongorelay needs: choose another field name", name, p)
			}
		}
	}
	return ""
}

// excluded reports whether a $project value excludes its field (0 or
// false); anything else includes or computes it.
func excluded(how any) bool {
	switch t := how.(type) {
	case bool:
		return !t
	case json.Number:
		return t.String() == "0" || t.String() == "0.0"
	}
	return false
}

// protected returns the event field a path touches, or "".
func protected(path string) string {
	for _, f := range eventFields {
		if path == f || strings.HasPrefix(path, f+".") {
			return f
		}
	}
	return ""
}

// near returns up to 20 characters of v either side of offset, on rune
// boundaries, to show where JSON broke.
func near(v string, offset int) string {
	lo, hi := max(0, offset-20), min(len(v), offset+20)
	for lo > 0 && !utf8.RuneStart(v[lo]) {
		lo--
	}
	for hi < len(v) && !utf8.RuneStart(v[hi]) {
		hi++
	}
	return v[lo:hi]
}
