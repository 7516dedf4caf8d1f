package mongosource

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongorelay/mongorelay/internal/kafkaconn"
	"github.com/mongorelay/mongorelay/registry"
	"github.com/mongorelay/mongorelay/registry/client"
	"github.com/mongorelay/mongorelay/tasks"
	"github.com/mongorelay/mongorelay/tasks/changestream"
	"github.com/mongorelay/mongorelay/tasks/connector"
	"github.com/mongorelay/mongorelay/tasks/shard"
)

// MongoDB server error codes that no retry gets past (src/mongo/base/error_codes.yml, and
// the location codes of the server's sources where noted). Every other code, among them the
// ones of an election or an outage (NotWritablePrimary 10107, InterruptedAtShutdown 11600,
// PrimarySteppedDown 189, ShutdownInProgress 91, HostUnreachable 6, HostNotFound 7,
// NetworkTimeout 89), is retried.
const (
	codeBadValue                = 2
	codeFailedToParse           = 9
	codeUnauthorized            = 13
	codeTypeMismatch            = 14
	codeAuthenticationFailed    = 18
	codeInvalidPipelineOperator = 168
	codeChangeStreamFatalError  = 280
	codeBSONObjectTooLarge      = 10334
	// codeUnrecognizedStage: "Unrecognized pipeline stage name" (pipeline.cpp).
	codeUnrecognizedStage = 40324
	// codeNotReplicaSet: "The $changeStream stage is only supported on replica sets"
	// (document_source_change_stream.cpp).
	codeNotReplicaSet = 40573
)

// markPermanent classifies a task's failure (DESIGN.md 13): what a restart cannot fix is
// connector.Permanent, its message saying the fix; the fence of a newer owner is
// connector.Fenced; anything else, an unknown error included, stays retriable.
func markPermanent(err error) error {
	if err == nil {
		return nil
	}
	if connector.IsPermanent(err) || connector.IsFenced(err) {
		return err
	}
	if fix := permanentFix(err); fix != "" {
		return connector.Permanent(fmt.Errorf("%w; to fix: %s", err, fix))
	}
	switch {
	case errors.Is(err, changestream.ErrHistoryLost), errors.Is(err, tasks.ErrRecordTooLarge), errors.Is(err, tasks.ErrDocumentRejected):
		// Their messages say the fix already.
		return connector.Permanent(err)
	case kafkaconn.IsRefused(err):
		return connector.Permanent(kafkaconn.Explain(err))
	}
	if d := kafkaconn.Denied(err); d != nil {
		return connector.Permanent(d)
	}
	if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) {
		return connector.Fenced(err)
	}
	return err
}

// permanentFix says how to fix a refusal that no retry gets past, or "" when err is not one.
func permanentFix(err error) string {
	if se, ok := errors.AsType[mongo.ServerError](err); ok {
		if fix := mongoFix(err, se); fix != "" {
			return fix
		}
	}
	switch {
	case errors.Is(err, kerr.InvalidConfig), errors.Is(err, kerr.PolicyViolation), errors.Is(err, kerr.InvalidReplicationFactor),
		errors.Is(err, kerr.InvalidPartitions), errors.Is(err, kerr.InvalidReplicaAssignment), errors.Is(err, kerr.InvalidTopicException):
		return "Kafka refused to create the topic as configured: set topic.creation.default.partitions and " +
			"topic.creation.default.replication.factor to what the brokers accept (-1 takes their defaults), or create the topic beforehand"
	case errors.Is(err, kerr.InvalidTransactionTimeout):
		return "the worker's transaction.timeout.ms is above the brokers' transaction.max.timeout.ms: lower it, or raise the brokers'"
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return "a record is larger than the brokers accept: raise the topic's max.message.bytes (and the brokers' message.max.bytes), " +
			"or set oversize.handling=skip"
	case errors.Is(err, registry.ErrIncompatible):
		return "the schema registry refused the topic's evolved schema under the subject's compatibility level: restore " +
			"BACKWARD_TRANSITIVE (PUT /config/<subject> on the registry), or give the producer that registered the conflicting versions its own topic"
	case errors.Is(err, registry.ErrInvalidSchema):
		return "the schema registry refused the schema as invalid: check that schema.registry.url names an Avro-capable, " +
			"Confluent-compatible registry"
	}
	if re, ok := errors.AsType[*client.Error](err); ok && (re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden) {
		return "the schema registry refused mongorelay's credentials: fix the user and password in schema.registry.url"
	}
	return ""
}

// mongoFix says how to fix a MongoDB refusal that no retry gets past, or "".
func mongoFix(err error, se mongo.ServerError) string {
	switch {
	case se.HasErrorCode(codeAuthenticationFailed):
		return "MongoDB refused the credentials: fix the user, password, authSource or authMechanism in mongodb.connection.string"
	case se.HasErrorCode(codeUnauthorized):
		return "the MongoDB user lacks a privilege the task needs: grant it find and changeStream on the captured collections, " +
			"and listDatabases and listCollections (the built-in role read on each captured database, or readAnyDatabase)"
	case se.HasErrorCode(codeNotReplicaSet):
		return "change streams need a replica set or a sharded cluster: point mongodb.connection.string at one"
	case shard.IsUnsupported(err):
		return "the server cannot run the shard filter's $toHashedIndexKey (MongoDB 4.4 and later can): set shard.filter=auto or client"
	case se.HasErrorCode(codeBadValue), se.HasErrorCode(codeFailedToParse), se.HasErrorCode(codeTypeMismatch),
		se.HasErrorCode(codeInvalidPipelineOperator), se.HasErrorCode(codeUnrecognizedStage):
		return "MongoDB refused the change stream's pipeline or options: correct the connector's pipeline (or capture.mode)"
	case se.HasErrorCode(codeBSONObjectTooLarge),
		se.HasErrorCode(codeChangeStreamFatalError) && !errors.Is(err, changestream.ErrResumeTokenNotFound):
		return "the server cannot carry the change stream past an event (one over 16 MB, or a pre- or post-image it cannot " +
			"produce): drop large fields with a $project in pipeline, or use a capture.mode without full documents or pre-images"
	}
	return ""
}
