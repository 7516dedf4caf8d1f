package registry

import (
	"context"
	"errors"
	"fmt"
)

// A cluster's registry is written on the leader only: a follower sends each write there as a
// Call and turns the answer back into the registry's own results and errors (DecodeError), so
// that callers cannot tell a forwarded write from a local one.

// The writes a Call makes.
const (
	OpRegister            = "register"
	OpDeleteSubject       = "delete_subject"
	OpDeleteVersion       = "delete_version"
	OpSetCompatibility    = "set_compatibility"
	OpDeleteCompatibility = "delete_compatibility"
)

// Call is one registry write as a value.
type Call struct {
	Op        string `json:"op"`
	Subject   string `json:"subject"`
	Schema    string `json:"schema,omitempty"`
	Version   int    `json:"version,omitempty"`
	Permanent bool   `json:"permanent,omitempty"`
	Level     string `json:"level,omitempty"`
}

// Result is a Call's answer: what the registry method returned, and the Raft index of the
// leader's state once the write was applied, for the follower to read its own write (it waits
// until it has applied that index before it reads again).
type Result struct {
	ID       int    `json:"id,omitempty"`
	Versions []int  `json:"versions,omitempty"`
	Version  int    `json:"version,omitempty"`
	Level    string `json:"level,omitempty"`
	Index    uint64 `json:"index,omitempty"`
}

// Writer is the write half of a registry; *Registry is one.
type Writer interface {
	Register(ctx context.Context, subject, schema string) (int, error)
	DeleteSubject(ctx context.Context, subject string, permanent bool) ([]int, error)
	DeleteVersion(ctx context.Context, subject string, version int, permanent bool) (int, error)
	SetCompatibility(ctx context.Context, subject string, level Compatibility) error
	DeleteCompatibility(ctx context.Context, subject string) (Compatibility, error)
}

// ErrUnknownOp means a Call names no write this build knows.
var ErrUnknownOp = errors.New("unknown schema registry operation")

// Apply runs call on w.
func Apply(ctx context.Context, w Writer, call Call) (Result, error) {
	var res Result
	var err error
	switch call.Op {
	case OpRegister:
		res.ID, err = w.Register(ctx, call.Subject, call.Schema)
	case OpDeleteSubject:
		res.Versions, err = w.DeleteSubject(ctx, call.Subject, call.Permanent)
	case OpDeleteVersion:
		res.Version, err = w.DeleteVersion(ctx, call.Subject, call.Version, call.Permanent)
	case OpSetCompatibility:
		err = w.SetCompatibility(ctx, call.Subject, Compatibility(call.Level))
	case OpDeleteCompatibility:
		var level Compatibility
		level, err = w.DeleteCompatibility(ctx, call.Subject)
		res.Level = string(level)
	default:
		err = fmt.Errorf("%w: %q", ErrUnknownOp, call.Op)
	}
	return res, err
}

// ErrorBody is a registry error on the wire: Kind names the registry's sentinel error, and an
// incompatible schema keeps its details.
type ErrorBody struct {
	Code     int      `json:"error_code"`
	Message  string   `json:"message"`
	Kind     string   `json:"kind,omitempty"`
	Subject  string   `json:"subject,omitempty"`
	Level    string   `json:"level,omitempty"`
	Messages []string `json:"messages,omitempty"`
}

// answers are the registry's errors callers branch on, by wire name.
var answers = []struct {
	kind string
	err  error
}{
	{"subject_not_found", ErrSubjectNotFound},
	{"version_not_found", ErrVersionNotFound},
	{"schema_not_found", ErrSchemaNotFound},
	{"subject_soft_deleted", ErrSubjectSoftDeleted},
	{"subject_not_soft_deleted", ErrSubjectNotSoftDeleted},
	{"version_soft_deleted", ErrVersionSoftDeleted},
	{"version_not_soft_deleted", ErrVersionNotSoftDeleted},
	{"compatibility_not_configured", ErrCompatibilityNotConfigured},
	{"incompatible", ErrIncompatible},
	{"invalid_schema", ErrInvalidSchema},
	{"invalid_version", ErrInvalidVersion},
	{"invalid_compatibility", ErrInvalidCompatibility},
}

// IsAnswer reports whether err is the registry's own answer (an incompatible schema, a
// missing subject) rather than a failure to reach it.
func IsAnswer(err error) bool { return EncodeError(0, err).Kind != "" }

// EncodeError puts err on the wire with status code.
func EncodeError(code int, err error) ErrorBody {
	body := ErrorBody{Code: code, Message: err.Error()}
	for _, e := range answers {
		if errors.Is(err, e.err) {
			body.Kind = e.kind
			break
		}
	}
	if ie, ok := errors.AsType[*IncompatibleError](err); ok {
		body.Subject, body.Level, body.Messages = ie.Subject, string(ie.Level), ie.Messages
	}
	return body
}

// DecodeError rebuilds the error the leader's registry returned.
func DecodeError(body ErrorBody) error {
	if body.Kind == "incompatible" {
		return &IncompatibleError{Subject: body.Subject, Level: Compatibility(body.Level), Messages: body.Messages}
	}
	for _, e := range answers {
		if e.kind == body.Kind {
			return fmt.Errorf("%w: %s (on the leader)", e.err, body.Message)
		}
	}
	return fmt.Errorf("schema registry write on the leader: %s", body.Message)
}
