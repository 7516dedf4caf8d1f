package changestream

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongorelay/mongorelay/tasks/resumetoken"
)

// Conditions a task branches on; Classify wraps server errors with them so
// errors.Is works on whatever the driver returned.
var (
	// ErrHistoryLost means the oplog no longer holds the resume point:
	// changes after it may be gone. It is never retried silently; the task
	// fails, or resnapshots when offset.lost.policy=resnapshot.
	ErrHistoryLost = errors.New("change stream history lost")
	// ErrResumeTokenNotFound means the history is there but the token's
	// event is not in this stream, typically because the pipeline changed
	// (DESIGN.md 5): reopen at the token's cluster time and skip what was
	// already delivered.
	ErrResumeTokenNotFound = errors.New("resume token not found in the change stream")
	// ErrInvalidated means the stream ended for good: the collection was
	// dropped or renamed, or a resume from an invalidate event was refused.
	// Code that reads an invalidate event wraps this sentinel too.
	ErrInvalidated = errors.New("change stream invalidated")
)

// Server error codes, from src/mongo/base/error_codes.yml unless noted.
const (
	codeCappedPositionLost      = 136
	codeInvalidResumeToken      = 260
	codeChangeStreamFatalError  = 280
	codeChangeStreamHistoryLost = 286
	codeChangeStreamInvalidated = 346
	// Location codes of MongoDB 3.6 and 4.0, before 280 and 286 existed
	// (document_source_check_resume_token.cpp of those releases).
	codeLegacyResumePointLost = 40576
	codeLegacyNoChangeData    = 40584
	codeLegacyTokenNotFound   = 40585
)

// Message fragments the server has used for these conditions. They are
// matched only where the code alone is not enough, or when the error reaches
// us as text without its code.
const (
	msgResumePointLost = "resume point may no longer be in the oplog"
	msgTokenNotFound   = "resume token was not found"
	msgFromInvalidate  = "from an invalidate notification"
)

// Classify returns err wrapped with ErrHistoryLost, ErrResumeTokenNotFound or
// ErrInvalidated when it is a server error meaning one of them, and err
// unchanged otherwise (including nil and errors already classified). The
// driver's error stays reachable with errors.As.
//
// Only code 280 with the "resume token was not found" text counts as
// ErrResumeTokenNotFound, because only servers that send 280 (4.2+) also
// check the oplog's start when a stream is reopened with
// startAtOperationTime, which turns a real loss into 286. The 3.6 and 4.0
// codes 40584 and 40585 ("the resume token was not found", "no change data
// was found") are ErrHistoryLost: MongoDB 3.6 reports a resume point that
// fell off a replica set's oplog that way, and telling it from a pipeline
// edit is impossible, so it fails closed rather than skipping changes.
func Classify(err error) error {
	if err == nil || errors.Is(err, ErrHistoryLost) || errors.Is(err, ErrResumeTokenNotFound) || errors.Is(err, ErrInvalidated) {
		return err
	}
	if kind := kindOf(err); kind != nil {
		return &classifiedError{kind: kind, err: err}
	}
	return err
}

func kindOf(err error) error {
	var se mongo.ServerError
	if errors.As(err, &se) {
		switch {
		case se.HasErrorCode(codeChangeStreamHistoryLost),
			se.HasErrorCode(codeCappedPositionLost),
			se.HasErrorCode(codeLegacyResumePointLost),
			se.HasErrorCode(codeLegacyTokenNotFound),
			se.HasErrorCode(codeLegacyNoChangeData):
			return ErrHistoryLost
		case se.HasErrorCodeWithMessage(codeChangeStreamFatalError, msgTokenNotFound):
			return ErrResumeTokenNotFound
		case se.HasErrorCode(codeChangeStreamInvalidated),
			se.HasErrorCodeWithMessage(codeInvalidResumeToken, msgFromInvalidate):
			return ErrInvalidated
		case se.HasErrorCode(codeChangeStreamFatalError):
			// Other fatal errors (an oversized event, a missing
			// post-image) are not about where the stream is.
			return nil
		}
	}
	// A server error that lost its code on the way (a proxy, a wrapped
	// string): the loss message alone is unambiguous; a bare "not found"
	// is treated like the old servers' codes above.
	msg := strings.ToLower(err.Error())
	if strings.Contains(msg, msgResumePointLost) || (se == nil && strings.Contains(msg, msgTokenNotFound)) {
		return ErrHistoryLost
	}
	return nil
}

// classifiedError puts a sentinel in front of the driver's error without
// changing its text.
type classifiedError struct {
	kind error
	err  error
}

func (e *classifiedError) Error() string   { return e.err.Error() }
func (e *classifiedError) Unwrap() []error { return []error{e.kind, e.err} }

// HistoryLostError is the task failure for ErrHistoryLost: what was lost and
// how to recover, in words an operator can act on.
type HistoryLostError struct {
	// Connector names the connector, for the offsets endpoint.
	Connector string
	// Namespace is the collection, "<db>.<collection>".
	Namespace string
	// Committed is the last committed position; its zero value means the
	// task had committed nothing yet (the loss hit its start point).
	Committed resumetoken.Position
	// Err is the classified server error.
	Err error
}

// Error says what was lost, since when, and both ways out.
func (e *HistoryLostError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "change stream history lost on %s: ", e.Namespace)
	if e.Committed.ClusterTime.IsZero() {
		b.WriteString("the oplog no longer reaches back to the stream's start point")
	} else {
		fmt.Fprintf(&b, "the oplog no longer reaches back to the last committed position, cluster time %d.%d (%s UTC)",
			e.Committed.ClusterTime.T, e.Committed.ClusterTime.I, e.Committed.Time().Format(time.DateTime))
	}
	b.WriteString(", so changes made after it may be missing from the topic. ")
	name := e.Connector
	if name == "" {
		name = "{name}"
	}
	fmt.Fprintf(&b, "To recover, set offset.lost.policy=resnapshot to copy the collection again, "+
		"or stop the connector (PUT /connectors/%[1]s/stop), delete its offsets (DELETE /connectors/%[1]s/offsets) "+
		"and resume it to start as a new connector does (snapshot.mode; with never, from now, accepting the gap), "+
		"or set where each shard resumes (PATCH /connectors/%[1]s/offsets) before resuming it. "+
		"A larger oplog (or a longer oplogMinRetentionHours) keeps this from recurring", name)
	if e.Err != nil {
		fmt.Fprintf(&b, ". Server error: %v", e.Err)
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrHistoryLost) hold and keeps the server
// error reachable.
func (e *HistoryLostError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrHistoryLost}
	}
	return []error{ErrHistoryLost, e.Err}
}
