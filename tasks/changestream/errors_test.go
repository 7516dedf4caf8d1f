package changestream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongorelay/mongorelay/tasks/resumetoken"
)

// Server replies as real servers sent them. Labels follow
// src/mongo/base/error_codes.yml: 280 and 286 are in the
// NonResumableChangeStreamError category, which the server turns into an
// errorLabels entry (src/mongo/db/error_labels.cpp); 136, 260 and the 3.6/4.0
// location codes carry no label.
var (
	// MongoDB Atlas, quoted in full in johanhaleby/occurrent issue #77
	// ("Handle ChangeStreamHistoryLost"): {"errorLabels":
	// ["NonResumableChangeStreamError"], "ok": 0.0, "errmsg": "Resume of
	// change stream was not possible, as the resume point may no longer be in
	// the oplog.", "code": 286, "codeName": "ChangeStreamHistoryLost", ...}.
	historyLost = mongo.CommandError{
		Code:    286,
		Name:    "ChangeStreamHistoryLost",
		Message: "Resume of change stream was not possible, as the resume point may no longer be in the oplog.",
		Labels:  []string{"NonResumableChangeStreamError"},
		Raw: mustRaw(bson.D{
			{Key: "errorLabels", Value: bson.A{"NonResumableChangeStreamError"}},
			{Key: "operationTime", Value: bson.Timestamp{T: 1613133979, I: 6}},
			{Key: "ok", Value: 0.0},
			{Key: "errmsg", Value: "Resume of change stream was not possible, as the resume point may no longer be in the oplog."},
			{Key: "code", Value: int32(286)},
			{Key: "codeName", Value: "ChangeStreamHistoryLost"},
		}),
	}
	// Resuming with a pipeline that filters out the token's event:
	// PeerDB-io/peerdb issue #3246 ("mongo: Resume token error after pause,
	// insert and resume"), as the Go driver printed it: "(ChangeStreamFatalError)
	// PlanExecutor error during aggregation :: caused by :: cannot resume
	// stream; the resume token was not found. {_data: "8268..."}". The text
	// is uasserted in document_source_change_stream_ensure_resume_token_present.cpp.
	tokenNotFound = mongo.CommandError{
		Code:    280,
		Name:    "ChangeStreamFatalError",
		Message: `PlanExecutor error during aggregation :: caused by :: cannot resume stream; the resume token was not found. {_data: "82687E82DE000000012B042C0100296E5A1004FEA7A1FFE23C4FD88070BFA43C9C995C463C6F7065726174696F6E54797065003C696E736572740046646F63756D656E744B65790046645F69640064687E82DC122A414A3ECD77F8000004"}`,
		Labels:  []string{"NonResumableChangeStreamError"},
	}
	// A getMore whose oplog position was overwritten: the message is
	// uasserted with CappedPositionLost in the server's collection scan
	// (src/mongo/db/exec/collection_scan.cpp), seen in a mongod log quoted by
	// canonical/hotsos (JOURNALCTL_CAPPEDPOSITIONLOST). Other projects'
	// tests report Amazon DocumentDB answering an expired change stream
	// token with this code too.
	cappedPositionLost = mongo.CommandError{
		Code:    136,
		Name:    "CappedPositionLost",
		Message: "CollectionScan died due to position in capped collection being deleted. Last seen record id: RecordId(204021366)",
	}
	// MongoDB 4.0.3: apache/flink-cdc issue #2279, "Command failed with
	// error 40576 (Location40576): 'Resume of change stream was not
	// possible, as the resume point may no longer be in the oplog. '".
	legacyResumePointLost = mongo.CommandError{
		Code:    40576,
		Name:    "Location40576",
		Message: "Resume of change stream was not possible, as the resume point may no longer be in the oplog. ",
	}
	// MongoDB 3.6 replica set (document_source_check_resume_token.cpp,
	// r3.6): a token whose entry left the oplog is reported as not found;
	// votem/mongo-stream PR #25 handles exactly this code. The server appends
	// the first token it did find; it is left out here.
	legacyTokenNotFound = mongo.CommandError{
		Code:    40585,
		Name:    "Location40585",
		Message: "resume of change stream was not possible, as the resume token was not found. ",
	}
	// resumeAfter an invalidate event's token, uasserted with
	// InvalidResumeToken in src/mongo/db/pipeline/document_source_change_stream.cpp
	// (assertIsLegalSpecification).
	resumeFromInvalidate = mongo.CommandError{
		Code:    260,
		Name:    "InvalidResumeToken",
		Message: "Attempting to resume a change stream using 'resumeAfter' is not allowed from an invalidate notification",
	}
	// Transient conditions the driver resumes from by itself; they must not
	// look like any of the sentinels.
	replStateChange = mongo.CommandError{
		Code:    11602,
		Name:    "InterruptedDueToReplStateChange",
		Message: "operation was interrupted",
		Labels:  []string{"ResumableChangeStreamError"},
	}
	// A 280 about something other than the position, uasserted in
	// src/mongo/db/pipeline/document_source_change_stream_split_large_event.cpp.
	otherFatal = mongo.CommandError{
		Code:    280,
		Name:    "ChangeStreamFatalError",
		Message: "Attempted to resume from a split event, but the resumed stream produced a different split. Ensure that the pipeline used to resume is the same as the original",
		Labels:  []string{"NonResumableChangeStreamError"},
	}
)

func mustRaw(d bson.D) bson.Raw {
	b, err := bson.Marshal(d)
	if err != nil {
		panic(err)
	}
	return b
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error // nil: left unclassified
	}{
		{"286 ChangeStreamHistoryLost", historyLost, ErrHistoryLost},
		{"136 CappedPositionLost", cappedPositionLost, ErrHistoryLost},
		{"4.0 location 40576", legacyResumePointLost, ErrHistoryLost},
		{"3.6 location 40585", legacyTokenNotFound, ErrHistoryLost},
		{"3.6 location 40584", mongo.CommandError{Code: 40584, Name: "Location40584",
			Message: "resume of change stream was not possible, as no change data was found. "}, ErrHistoryLost},
		{"280 token not found", tokenNotFound, ErrResumeTokenNotFound},
		{"260 resumeAfter an invalidate", resumeFromInvalidate, ErrInvalidated},
		// 346 is classified by its code alone (error_codes.yml); its text varies.
		{"346 ChangeStreamInvalidated", mongo.CommandError{Code: 346, Name: "ChangeStreamInvalidated"}, ErrInvalidated},
		{"wrapped by a caller", fmt.Errorf("read change stream: %w", historyLost), ErrHistoryLost},
		{"pointer to the driver error", &tokenNotFound, ErrResumeTokenNotFound},
		{"code lost, loss message kept", errors.New("(ChangeStreamHistoryLost) Resume of change stream was not possible, as the resume point may no longer be in the oplog."), ErrHistoryLost},
		{"code lost, not-found message kept", errors.New("cannot resume stream; the resume token was not found."), ErrHistoryLost},
		{"280 about something else", otherFatal, nil},
		{"transient", replStateChange, nil},
		// The same function's other InvalidResumeToken: a token without a UUID.
		{"260 about a missing UUID", mongo.CommandError{Code: 260, Name: "InvalidResumeToken",
			Message: "Attempted to resume a single-collection stream, but the resume token does not include a UUID"}, nil},
		{"network", context.DeadlineExceeded, nil},
	}
	sentinels := []error{ErrHistoryLost, ErrResumeTokenNotFound, ErrInvalidated}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Classify(tt.err)
			for _, s := range sentinels {
				if is, want := errors.Is(got, s), s == tt.want; is != want {
					t.Errorf("errors.Is(Classify(err), %v) = %v, want %v", s, is, want)
				}
			}
			if got.Error() != tt.err.Error() {
				t.Errorf("Classify changed the text: %q, want %q", got, tt.err)
			}
			var ce mongo.CommandError
			if errors.As(tt.err, &ce) && !errors.As(got, &ce) {
				t.Errorf("the driver error is no longer reachable with errors.As")
			}
			_, wrapped := got.(*classifiedError)
			if wrapped != (tt.want != nil) {
				t.Errorf("wrapped = %v; an unclassified error must come back unchanged", wrapped)
			}
			if again, ok := Classify(got).(*classifiedError); ok {
				if _, twice := again.err.(*classifiedError); twice {
					t.Errorf("Classify is not idempotent: wrapped twice")
				}
			}
		})
	}
	if Classify(nil) != nil {
		t.Errorf("Classify(nil) != nil")
	}
}

func TestHistoryLostError(t *testing.T) {
	committed, err := resumetoken.Decode("82669683C2000000052B042C0100296E5A1004413F85D5B4CF4680AA4D17641E9DF22D463C6F7065726174696F6E54797065003C64726F70000004")
	if err != nil {
		t.Fatal(err)
	}
	err = &HistoryLostError{
		Connector: "orders-cdc",
		Namespace: "shop.orders",
		Committed: committed,
		Err:       Classify(historyLost),
	}
	msg := err.Error()
	for _, want := range []string{
		"shop.orders",
		"cluster time 1721140162.5 (2024-07-16 14:29:22 UTC)",
		"offset.lost.policy=resnapshot",
		"DELETE /connectors/orders-cdc/offsets",
		"accepting the gap",
		"(ChangeStreamHistoryLost) Resume of change stream was not possible",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if !errors.Is(err, ErrHistoryLost) {
		t.Errorf("errors.Is(HistoryLostError, ErrHistoryLost) = false")
	}
	var ce mongo.CommandError
	if !errors.As(err, &ce) || ce.Code != 286 {
		t.Errorf("server error not reachable: %v", ce)
	}
	var hl *HistoryLostError
	if !errors.As(fmt.Errorf("task shop.orders#0-of-1: %w", err), &hl) {
		t.Errorf("errors.As(*HistoryLostError) failed through a wrap")
	}

	fresh := (&HistoryLostError{Namespace: "shop.orders"}).Error()
	for _, want := range []string{"start point", "DELETE /connectors/{name}/offsets"} {
		if !strings.Contains(fresh, want) {
			t.Errorf("message without a committed position lacks %q:\n%s", want, fresh)
		}
	}
	if !errors.Is(&HistoryLostError{}, ErrHistoryLost) {
		t.Errorf("a HistoryLostError without a cause must still be ErrHistoryLost")
	}
}
