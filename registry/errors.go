package registry

import (
	"errors"
	"fmt"
	"strings"
)

// Conditions callers branch on. Each has the Confluent REST error code it
// maps to in its comment; the api package does that mapping.
var (
	// ErrSubjectNotFound: the subject has no version (40401).
	ErrSubjectNotFound = errors.New("subject not found")
	// ErrVersionNotFound: the subject has no such version (40402).
	ErrVersionNotFound = errors.New("version not found")
	// ErrSchemaNotFound: no schema has that id, or the subject has no
	// version with that schema (40403).
	ErrSchemaNotFound = errors.New("schema not found")
	// ErrSubjectSoftDeleted: a soft delete of a subject whose versions are
	// all soft-deleted already (40404).
	ErrSubjectSoftDeleted = errors.New("subject was soft deleted")
	// ErrSubjectNotSoftDeleted: a permanent delete of a subject that still
	// has live versions (40405).
	ErrSubjectNotSoftDeleted = errors.New("subject was not soft deleted before being permanently deleted")
	// ErrVersionSoftDeleted: a soft delete of a version that is soft-deleted
	// already (40406).
	ErrVersionSoftDeleted = errors.New("version was soft deleted")
	// ErrVersionNotSoftDeleted: a permanent delete of a live version (40407).
	ErrVersionNotSoftDeleted = errors.New("version was not soft deleted before being permanently deleted")
	// ErrCompatibilityNotConfigured: the subject has no compatibility level
	// of its own (40408).
	ErrCompatibilityNotConfigured = errors.New("subject does not have subject-level compatibility configured")
	// ErrIncompatible: the schema breaks the subject's compatibility level
	// (409). The error is an *IncompatibleError with the details.
	ErrIncompatible = errors.New("incompatible schema")
	// ErrInvalidSchema: not a valid Avro schema, or not an Avro schema at all
	// (42201).
	ErrInvalidSchema = errors.New("invalid schema")
	// ErrInvalidVersion: a version number outside [1, 2^31-1] (42202).
	ErrInvalidVersion = errors.New("invalid version")
	// ErrInvalidCompatibility: not one of the seven compatibility levels
	// (42203).
	ErrInvalidCompatibility = errors.New("invalid compatibility level")
)

// Conditions between a registry and its Store.
var (
	// ErrConflict: a SharedStore refused an Append because another writer
	// changed the registry first. Nothing was written; the registry catches
	// up before its next write, so the write can be tried again.
	ErrConflict = errors.New("schema registry changed by another writer")
	// ErrReplayNeeded: a SharedStore cannot tell the changes since it last
	// read, only the whole registry.
	ErrReplayNeeded = errors.New("schema registry store must be replayed")
)

// IncompatibleError says why a schema breaks a subject's compatibility
// level. It matches ErrIncompatible with errors.Is.
type IncompatibleError struct {
	Subject  string
	Level    Compatibility
	Messages []string // one per earlier version the schema conflicts with
}

func (e *IncompatibleError) Error() string {
	return fmt.Sprintf("schema being registered is incompatible with an earlier schema for subject %q (%s), details: [%s]",
		e.Subject, e.Level, strings.Join(e.Messages, "; "))
}

// Is makes errors.Is(err, ErrIncompatible) true.
func (e *IncompatibleError) Is(target error) bool { return target == ErrIncompatible }
