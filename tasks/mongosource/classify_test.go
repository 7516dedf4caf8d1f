package mongosource

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/mongorelay/mongorelay/registry/client"
	"github.com/mongorelay/mongorelay/tasks"
	"github.com/mongorelay/mongorelay/tasks/changestream"
	"github.com/mongorelay/mongorelay/tasks/connector"
)

// serverError is a MongoDB server's error answer as the driver returns it (mongo.CommandError
// with the server's code, codeName and errmsg), wrapped as the task wraps it.
func serverError(code int32, name, msg string, labels ...string) error {
	return fmt.Errorf("collection shard db.coll#0-of-1: open change stream on db.coll: %w",
		mongo.CommandError{Code: code, Name: name, Message: msg, Labels: labels})
}

// TestMarkPermanent classifies the errors a task meets, as the servers and clients give them:
// the MongoDB codes of src/mongo/base/error_codes.yml (and the server's location codes), the
// Kafka error codes of the protocol (kerr), the schema registry's Confluent error codes.
func TestMarkPermanent(t *testing.T) {
	lost := &changestream.HistoryLostError{Connector: "c", Namespace: "db.coll", Err: changestream.ErrHistoryLost}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "connection refused"}}
	const (
		retried   = "retried"
		permanent = "permanent"
		fenced    = "fenced"
	)
	tests := []struct {
		name string
		err  error
		want string
		fix  string // in a permanent error's message
	}{
		// MongoDB: what a restart cannot fix.
		{"MongoDB refusing the credentials", fmt.Errorf("connector c: config %q: cannot reach MongoDB at mongodb://u:[hidden]@db/: %w",
			"mongodb.connection.string", mongo.CommandError{Code: 18, Name: "AuthenticationFailed", Message: "Authentication failed.",
				Wrapped: topology.ConnectionError{Wrapped: errors.New("auth error: sasl conversation error")}}),
			permanent, "fix the user, password"},
		{"a MongoDB user without the privilege", serverError(13, "Unauthorized", `not authorized on shop to execute command { aggregate: "orders", pipeline: [ { $changeStream: {} } ] }`), permanent, "grant it find and changeStream"},
		{"an unknown pipeline stage", serverError(40324, "Location40324", "Unrecognized pipeline stage name: '$matc'"), permanent, "correct the connector's pipeline"},
		{"an unknown query operator", serverError(2, "BadValue", "unknown top level operator: $eqq"), permanent, "correct the connector's pipeline"},
		{"an unparsable stage", serverError(9, "FailedToParse", "$project specification must be an object"), permanent, "correct the connector's pipeline"},
		{"an unknown expression", serverError(168, "InvalidPipelineOperator", "Unrecognized expression '$toUpperr'"), permanent, "correct the connector's pipeline"},
		{"no $toHashedIndexKey under shard.filter=server", serverError(168, "InvalidPipelineOperator", "Unrecognized expression '$toHashedIndexKey'"), permanent, "shard.filter=auto or client"},
		{"not a replica set", serverError(40573, "Location40573", "The $changeStream stage is only supported on replica sets"), permanent, "replica set or a sharded cluster"},
		{"an event over 16 MB", serverError(280, "ChangeStreamFatalError", "Executor error during getMore :: caused by :: BSONObj size: 17825792 (0x1100000) is invalid. Size must be between 0 and 16793600(16MB)"), permanent, "over 16 MB"},
		{"history lost", fmt.Errorf("collection shard db.coll#0-of-1: %w", lost), permanent, "offset.lost.policy=resnapshot"},
		{"history lost, as the server says it", changestream.Classify(mongo.CommandError{Code: 286, Name: "ChangeStreamHistoryLost", Message: "Resume of change stream was not possible, as the resume point may no longer be in the oplog."}), permanent, ""},
		// MongoDB: elections, shutdowns and outages.
		{"NotWritablePrimary", serverError(10107, "NotWritablePrimary", "not primary", "ResumableChangeStreamError"), retried, ""},
		{"InterruptedAtShutdown", serverError(11600, "InterruptedAtShutdown", "interrupted at shutdown", "ResumableChangeStreamError"), retried, ""},
		{"PrimarySteppedDown", serverError(189, "PrimarySteppedDown", "Primary stepped down while waiting for replication"), retried, ""},
		{"ShutdownInProgress", serverError(91, "ShutdownInProgress", "The server is in quiesce mode and will shut down"), retried, ""},
		{"HostUnreachable", serverError(6, "HostUnreachable", "Connection refused"), retried, ""},
		{"HostNotFound", serverError(7, "HostNotFound", "No host described in new configuration with {version: 3, term: 2} for replica set rs0 maps to this node"), retried, ""},
		{"NetworkTimeout", serverError(89, "NetworkTimeout", "Operation timed out"), retried, ""},
		{"InterruptedDueToReplStateChange", serverError(11602, "InterruptedDueToReplStateChange", "operation was interrupted because a client disconnected"), retried, ""},
		{"a network error", fmt.Errorf("read change stream: %w", mongo.CommandError{Labels: []string{"NetworkError"},
			Wrapped: topology.ConnectionError{Wrapped: io.EOF}, Message: "connection closed unexpectedly by the other side"}), retried, ""},
		{"server selection timing out", fmt.Errorf("connector c: config %q: cannot reach MongoDB at mongodb://db/: %w", "mongodb.connection.string",
			topology.ServerSelectionError{Wrapped: context.DeadlineExceeded}), retried, ""},
		// Kafka.
		{"Kafka unreachable", fmt.Errorf("initialise transactional id t: %w", refused), retried, ""},
		{"a partition leader moving", fmt.Errorf("a record of the transaction failed: %w", kerr.NotLeaderForPartition), retried, ""},
		{"the transaction coordinator moving", fmt.Errorf("commit transaction: %w", kerr.NotCoordinator), retried, ""},
		{"the coordinator loading", fmt.Errorf("initialise transactional id t: %w", kerr.CoordinatorLoadInProgress), retried, ""},
		{"too few in-sync replicas", fmt.Errorf("commit offset k: %w", kerr.NotEnoughReplicas), retried, ""},
		{"Kafka refusing the password", fmt.Errorf("initialise transactional id t: %w", kerr.SaslAuthenticationFailed), permanent, "sasl.password"},
		{"an untrusted broker certificate", fmt.Errorf("unable to dial: %w", x509.UnknownAuthorityError{}), permanent, "ssl"},
		{"no ACL on the topic", fmt.Errorf("a record of the transaction failed: %w", kerr.TopicAuthorizationFailed), permanent, "Write, Describe and Create on the connector's topics"},
		{"no ACL on the transactional id", fmt.Errorf("initialise transactional id t: %w", kerr.TransactionalIDAuthorizationFailed), permanent, "transactional ids"},
		{"no ACL on the cluster", fmt.Errorf("initialise transactional id t: %w", kerr.ClusterAuthorizationFailed), permanent, "IdempotentWrite"},
		{"a replication factor the brokers refuse", fmt.Errorf("create topic t: %w", kerr.InvalidReplicationFactor), permanent, "topic.creation.default.replication.factor"},
		{"a topic policy", fmt.Errorf("create topic t: %w", kerr.PolicyViolation), permanent, "topic.creation.default.partitions"},
		{"a topic config", fmt.Errorf("create topic t: %w", kerr.InvalidConfig), permanent, "create the topic beforehand"},
		{"a transaction timeout over the brokers' maximum", fmt.Errorf("initialise transactional id t: %w", kerr.InvalidTransactionTimeout), permanent, "transaction.timeout.ms"},
		{"a record the brokers find too large", fmt.Errorf("a record of the transaction failed: %w", kerr.MessageTooLarge), permanent, "max.message.bytes"},
		{"a newer owner's fence", fmt.Errorf("commit transaction (another owner may have fenced this task): %w", kerr.ProducerFenced), fenced, ""},
		{"an old producer epoch", fmt.Errorf("a record of the transaction failed: %w", kerr.InvalidProducerEpoch), fenced, ""},
		// The schema registry.
		{"the registry down", fmt.Errorf("register the value schema of t-value: %w", &client.Error{StatusCode: 503, Code: 50003, Message: "Error while forwarding the request to the leader"}), retried, ""},
		{"the registry unreachable", fmt.Errorf("register the key schema of t: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), retried, ""},
		{"an incompatible schema", fmt.Errorf("register an evolved schema for t-value after 8 attempts: %w", &client.Error{StatusCode: 409, Code: 409, Message: "Schema being registered is incompatible with an earlier schema for subject \"t-value\""}), permanent, "BACKWARD_TRANSITIVE"},
		{"an invalid schema", fmt.Errorf("register the value schema of t-value: %w", &client.Error{StatusCode: 422, Code: 42201, Message: "Invalid schema"}), permanent, "schema.registry.url"},
		{"registry credentials refused", fmt.Errorf("look up the latest schema of t-value: %w", &client.Error{StatusCode: 401, Code: 401, Message: "Unauthorized"}), permanent, "schema.registry.url"},
		// The task's own.
		{"an oversize record", fmt.Errorf("document 1 in db.coll: %w: 2 MB", tasks.ErrRecordTooLarge), permanent, ""},
		{"a document that cannot be converted", fmt.Errorf("document 1 in db.coll %w: bad", tasks.ErrDocumentRejected), permanent, ""},
		{"a panic", connector.Permanent(&connector.PanicError{Value: "boom"}), permanent, ""},
		{"an error nobody knows", errors.New("something odd"), retried, ""},
		{"a clean stop", nil, retried, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := markPermanent(tt.err)
			kind := retried
			switch {
			case connector.IsPermanent(got):
				kind = permanent
			case connector.IsFenced(got):
				kind = fenced
			}
			if kind != tt.want || !errors.Is(got, tt.err) {
				t.Fatalf("markPermanent(%v) = %v: %s, want %s wrapping it", tt.err, got, kind, tt.want)
			}
			if tt.fix != "" && !strings.Contains(got.Error(), tt.fix) {
				t.Errorf("message %q does not say the fix (%q)", got, tt.fix)
			}
		})
	}
}
