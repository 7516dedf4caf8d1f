package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/mongorelay/mongorelay/registry"
)

// In a cluster the schema registry lives in Raft and only the leader writes it; a follower's
// registry sends each write to the leader's POST /internal/registry as a RegistryCall and
// turns the answer back into the registry's own results and errors, so that callers (tasks,
// the Confluent API) cannot tell a forwarded write from a local one.

// The schema registry writes that cross the wire.
const (
	RegistryRegister            = "register"
	RegistryDeleteSubject       = "delete_subject"
	RegistryDeleteVersion       = "delete_version"
	RegistrySetCompatibility    = "set_compatibility"
	RegistryDeleteCompatibility = "delete_compatibility"
)

// RegistryCall is one schema registry write.
type RegistryCall struct {
	Op        string `json:"op"`
	Subject   string `json:"subject"`
	Schema    string `json:"schema,omitempty"`
	Version   int    `json:"version,omitempty"`
	Permanent bool   `json:"permanent,omitempty"`
	Level     string `json:"level,omitempty"`
}

// RegistryResult is a write's answer: what the registry method returned, and the Raft index
// of the leader's state once the write was applied, for the follower to read its own write
// (it waits until it has applied that index before it reads again).
type RegistryResult struct {
	ID       int    `json:"id,omitempty"`
	Versions []int  `json:"versions,omitempty"`
	Version  int    `json:"version,omitempty"`
	Level    string `json:"level,omitempty"`
	Index    uint64 `json:"index,omitempty"`
}

// RegistryWriter is the write half of a schema registry; *registry.Registry is one.
type RegistryWriter interface {
	Register(ctx context.Context, subject, schema string) (int, error)
	DeleteSubject(ctx context.Context, subject string, permanent bool) ([]int, error)
	DeleteVersion(ctx context.Context, subject string, version int, permanent bool) (int, error)
	SetCompatibility(ctx context.Context, subject string, level registry.Compatibility) error
	DeleteCompatibility(ctx context.Context, subject string) (registry.Compatibility, error)
}

// ApplyRegistryCall runs call on w.
func ApplyRegistryCall(ctx context.Context, w RegistryWriter, call RegistryCall) (RegistryResult, error) {
	var res RegistryResult
	var err error
	switch call.Op {
	case RegistryRegister:
		res.ID, err = w.Register(ctx, call.Subject, call.Schema)
	case RegistryDeleteSubject:
		res.Versions, err = w.DeleteSubject(ctx, call.Subject, call.Permanent)
	case RegistryDeleteVersion:
		res.Version, err = w.DeleteVersion(ctx, call.Subject, call.Version, call.Permanent)
	case RegistrySetCompatibility:
		err = w.SetCompatibility(ctx, call.Subject, registry.Compatibility(call.Level))
	case RegistryDeleteCompatibility:
		var level registry.Compatibility
		level, err = w.DeleteCompatibility(ctx, call.Subject)
		res.Level = string(level)
	default:
		err = fmt.Errorf("%w: schema registry operation %q", ErrBadRequest, call.Op)
	}
	return res, err
}

// registryErrorBody is a registry error on the wire: Kind names the registry's sentinel
// error, and an incompatible schema keeps its details.
type registryErrorBody struct {
	Code     int      `json:"error_code"`
	Message  string   `json:"message"`
	Kind     string   `json:"kind,omitempty"`
	Subject  string   `json:"subject,omitempty"`
	Level    string   `json:"level,omitempty"`
	Messages []string `json:"messages,omitempty"`
}

// registryErrors are the registry's errors callers branch on, by wire name.
var registryErrors = []struct {
	kind string
	err  error
}{
	{"subject_not_found", registry.ErrSubjectNotFound},
	{"version_not_found", registry.ErrVersionNotFound},
	{"schema_not_found", registry.ErrSchemaNotFound},
	{"subject_soft_deleted", registry.ErrSubjectSoftDeleted},
	{"subject_not_soft_deleted", registry.ErrSubjectNotSoftDeleted},
	{"version_soft_deleted", registry.ErrVersionSoftDeleted},
	{"version_not_soft_deleted", registry.ErrVersionNotSoftDeleted},
	{"compatibility_not_configured", registry.ErrCompatibilityNotConfigured},
	{"incompatible", registry.ErrIncompatible},
	{"invalid_schema", registry.ErrInvalidSchema},
	{"invalid_version", registry.ErrInvalidVersion},
	{"invalid_compatibility", registry.ErrInvalidCompatibility},
}

func encodeRegistryError(status int, err error) registryErrorBody {
	body := registryErrorBody{Code: status, Message: err.Error()}
	for _, e := range registryErrors {
		if errors.Is(err, e.err) {
			body.Kind = e.kind
			break
		}
	}
	if ie, ok := errors.AsType[*registry.IncompatibleError](err); ok {
		body.Subject, body.Level, body.Messages = ie.Subject, string(ie.Level), ie.Messages
	}
	return body
}

// decodeRegistryError rebuilds the error the leader's registry returned.
func decodeRegistryError(body registryErrorBody) error {
	if body.Kind == "incompatible" {
		return &registry.IncompatibleError{Subject: body.Subject, Level: registry.Compatibility(body.Level), Messages: body.Messages}
	}
	for _, e := range registryErrors {
		if e.kind == body.Kind {
			return fmt.Errorf("%w: %s (on the leader)", e.err, body.Message)
		}
	}
	return fmt.Errorf("schema registry write on the leader: %s", body.Message)
}
