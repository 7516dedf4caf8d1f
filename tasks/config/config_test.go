package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/tasks/connector"
)

const goodURI = "mongodb://cdc:S3cr3tPa55@db1:27017,db2:27017/?replicaSet=rs0&authSource=admin"

func minimal() map[string]string {
	return map[string]string{
		"connector.class":           "mongodb",
		"mongodb.connection.string": goodURI,
		"topic.prefix":              "mongo",
	}
}

func with(kv ...string) map[string]string {
	m := minimal()
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func mustParse(t *testing.T, raw map[string]string) *Config {
	t.Helper()
	c, err := Parse("orders-cdc", raw)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func problemsOf(t *testing.T, raw map[string]string) []Problem {
	t.Helper()
	_, err := Parse("orders-cdc", raw)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Parse error = %v, want a *ValidationError", err)
	}
	return ve.Problems
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, minimal())
	want := Config{
		Name:                   "orders-cdc",
		ConnectorClass:         "mongodb",
		TopicPrefix:            "mongo",
		Shards:                 1,
		ShardFilter:            ShardFilterAuto,
		CaptureMode:            CaptureUpdateFull,
		CaptureScope:           ScopeCollection,
		SnapshotMode:           SnapshotInitial,
		Pipeline:               []bson.D{},
		HeartbeatInterval:      10 * time.Second,
		ExactlyOnce:            true,
		DocumentMode:           DocumentTyped,
		ValueFormat:            ValueAvro,
		KeyFormat:              KeyAvro,
		OutputShape:            ShapeEnvelope,
		TombstonesOnDelete:     true,
		ErrorsTolerance:        ToleranceNone,
		OversizeHandling:       OversizeFail,
		OffsetLostPolicy:       OffsetLostFail,
		MaxBatchSize:           2048,
		PollMaxWait:            500 * time.Millisecond,
		TopicPartitions:        1,
		TopicReplicationFactor: -1,
		KeySubjectStrategy:     SubjectTopicName,
		ValueSubjectStrategy:   SubjectTopicName,
	}
	got := *c
	got.ConnectionString, got.raw, got.given = Secret{}, nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
	if c.ConnectionString.Reveal() != goodURI {
		t.Errorf("connection string not kept")
	}
	if c.TasksMax != 0 || c.DeadLetterTopic != "" || c.SchemaRegistryURLs != nil {
		t.Errorf("optional keys set by default: %+v", c)
	}
}

func TestGoodValues(t *testing.T) {
	tests := []struct {
		key, value string
		check      func(c *Config) bool
	}{
		{"connector.class", "io.debezium.connector.mongodb.MongoDbConnector", func(c *Config) bool { return c.ConnectorClass == ClassDebezium }},
		{"connector.class", "com.mongodb.kafka.connect.MongoSourceConnector", func(c *Config) bool { return c.ConnectorClass == ClassMongoKafka }},
		{"connector.class", "MongoDB", func(c *Config) bool { return c.ConnectorClass == ClassMongoRelay }},
		{"name", "orders-cdc", func(c *Config) bool { return c.Name == "orders-cdc" }},
		{"mongodb.connection.string", "mongodb+srv://cdc:pw@cluster0.example.net/?retryWrites=true&srvMaxHosts=3", func(c *Config) bool {
			return strings.HasPrefix(c.ConnectionString.Reveal(), "mongodb+srv://")
		}},
		{"mongodb.connection.string", "mongodb://localhost", func(c *Config) bool { return true }},
		{"database.include.list", "shop, inventory_.*", func(c *Config) bool { return c.Includes("inventory_eu", "x") && !c.Includes("other", "x") }},
		{"database.exclude.list", "test.*", func(c *Config) bool { return !c.Includes("test1", "x") && c.Includes("shop", "x") }},
		{"collection.include.list", `shop\.orders`, func(c *Config) bool { return c.Includes("shop", "orders") && !c.Includes("shop", "users") }},
		{"collection.exclude.list", `shop\.tmp_.*`, func(c *Config) bool { return !c.Includes("shop", "tmp_1") && c.Includes("shop", "orders") }},
		{"topic.prefix", "prod.mongo_1-a", func(c *Config) bool { return c.TopicPrefix == "prod.mongo_1-a" }},
		{"shards", "1024", func(c *Config) bool { return c.Shards == 1024 }},
		{"shards", " 16 ", func(c *Config) bool { return c.Shards == 16 }},
		{"shard.filter", "Server", func(c *Config) bool { return c.ShardFilter == ShardFilterServer }},
		{"shard.filter", "client", func(c *Config) bool { return c.ShardFilter == ShardFilterClient }},
		{"tasks.max", "4", func(c *Config) bool { return c.TasksMax == 4 }},
		{"capture.mode", "change_streams_update_full_with_pre_image", func(c *Config) bool { return c.CaptureMode == CaptureUpdateFullWithPreImage }},
		{"capture.mode", "change_streams", func(c *Config) bool { return c.CaptureMode == CaptureChangeStreams }},
		{"snapshot.mode", "when_needed", func(c *Config) bool { return c.SnapshotMode == SnapshotWhenNeeded }},
		{"snapshot.mode", "never", func(c *Config) bool { return c.SnapshotMode == SnapshotNever }},
		{"signal.data.collection", "shop.signals", func(c *Config) bool { return c.SignalCollection == "shop.signals" }},
		{"pipeline", `[{"$match": {"operationType": {"$in": ["insert", "update"]}}}, {"$project": {"fullDocument.password": 0}}]`, func(c *Config) bool {
			return len(c.Pipeline) == 2 && c.Pipeline[0][0].Key == "$match" && c.Pipeline[1][0].Key == "$project"
		}},
		{"pipeline", `[{"$match": {"fullDocument.at": {"$gte": {"$date": "2024-01-01T00:00:00Z"}}}}]`, func(c *Config) bool {
			v := c.Pipeline[0][0].Value.(bson.D)[0].Value.(bson.D)[0].Value
			_, isDate := v.(bson.DateTime)
			return isDate
		}},
		{"pipeline", `[{"$project": {"_id": 1, "x": 0}}, {"$unset": "fullDocument.tmp"}, {"$set": {"seen": true}}]`, func(c *Config) bool { return len(c.Pipeline) == 3 }},
		{"heartbeat.interval.ms", "2500", func(c *Config) bool { return c.HeartbeatInterval == 2500*time.Millisecond }},
		{"exactly.once", "FALSE", func(c *Config) bool { return !c.ExactlyOnce }},
		{"exactly.once", "TRUE", func(c *Config) bool { return c.ExactlyOnce }},
		{"value.format", "Avro", func(c *Config) bool { return c.ValueFormat == ValueAvro }},
		{"value.format", "json", func(c *Config) bool { return c.ValueFormat == ValueJSON }},
		{"value.format", "JSON_SCHEMA", func(c *Config) bool { return c.ValueFormat == ValueJSONSchema }},
		{"key.format", "string", func(c *Config) bool { return c.KeyFormat == KeyString }},
		{"key.format", "json", func(c *Config) bool { return c.KeyFormat == KeyJSON }},
		{"output.shape", "document", func(c *Config) bool { return c.OutputShape == ShapeDocument }},
		{"document.mode", "json", func(c *Config) bool { return c.DocumentMode == DocumentJSON }},
		{"schema.registry.url", "http://sr1:8081, https://user:pw@sr2:8081", func(c *Config) bool {
			return len(c.SchemaRegistryURLs) == 2 && c.SchemaRegistryURLs[1].Reveal() == "https://user:pw@sr2:8081"
		}},
		{"tombstones.on.delete", "false", func(c *Config) bool { return !c.TombstonesOnDelete }},
		{"errors.tolerance", "all", func(c *Config) bool { return c.ErrorsTolerance == ToleranceAll }},
		{"errors.deadletterqueue.topic.name", "mongo-dlq", func(c *Config) bool { return c.DeadLetterTopic == "mongo-dlq" }},
		{"oversize.handling", "skip", func(c *Config) bool { return c.OversizeHandling == OversizeSkip }},
		{"offset.lost.policy", "resnapshot", func(c *Config) bool { return c.OffsetLostPolicy == OffsetLostResnapshot }},
		{"max.batch.size", "10000", func(c *Config) bool { return c.MaxBatchSize == 10000 }},
		{"poll.max.wait.ms", "1", func(c *Config) bool { return c.PollMaxWait == time.Millisecond }},
		{"snapshot.max.documents.per.second", "50000", func(c *Config) bool { return c.SnapshotMaxRate == 50000 }},
		{"snapshot.max.documents.per.second", "", func(c *Config) bool { return c.SnapshotMaxRate == 0 }},
		{"topic.creation.default.partitions", "-1", func(c *Config) bool { return c.TopicPartitions == -1 }},
		{"topic.creation.default.partitions", "12", func(c *Config) bool { return c.TopicPartitions == 12 }},
		{"topic.creation.default.replication.factor", "3", func(c *Config) bool { return c.TopicReplicationFactor == 3 }},
		{"shards", "", func(c *Config) bool { return c.Shards == 1 }}, // empty means the default
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			c := mustParse(t, with(tt.key, tt.value))
			if !tt.check(c) {
				t.Errorf("%s=%q parsed to %+v", tt.key, tt.value, c)
			}
		})
	}
}

func TestBadValues(t *testing.T) {
	tests := []struct {
		key, value string
		want       string // the problem's whole message, or a part of it after "..."
	}{
		{"connector.class", "org.example.Other", `"org.example.Other" is not one of mongodb, io.debezium.connector.mongodb.MongoDbConnector, com.mongodb.kafka.connect.MongoSourceConnector`},
		{"connector.class", "mongdb", `... (did you mean "mongodb"?)`},
		{"name", "other", `"other" does not match the connector's name "orders-cdc": remove it or make them equal`},
		{"mongodb.connection.string", "postgres://localhost", `... scheme must be "mongodb" or "mongodb+srv"`},
		{"mongodb.connection.string", "mongodb://db1:27017/?replicaSet=rs0&maxPoolSize=abc", `... (error parsing uri: invalid value for "maxPoolSize": "abc"): use mongodb://[user:password@]host[:port][,host...]/[?options] or mongodb+srv://[user:password@]host/[?options], percent-encoding reserved characters in the user and password`},
		{"mongodb.connection.string", "mongodb+srv://a.example.net,b.example.net/", `... names exactly one host`},
		{"database.include.list", "shop,(unclosed", `has an invalid regular expression "(unclosed": missing closing ): ` + "`(unclosed`" + ` (Go RE2 syntax: no lookarounds or backreferences)`},
		{"collection.exclude.list", `shop\.(?!tmp)`, `... invalid or unsupported Perl syntax`},
		{"topic.prefix", "my prefix", `"my prefix" contains " ": Kafka topic names allow only letters, digits, '.', '_' and '-'`},
		{"topic.prefix", "..", `... Kafka forbids "." and ".."`},
		{"topic.prefix", strings.Repeat("p", 246), `is 246 characters long: keep it under 245 so that <prefix>.<db>.<collection> fits Kafka's 249`},
		{"shards", "0", `"0" is out of range: use a whole number from 1 to 1024`},
		{"shards", "1025", `"1025" is out of range: use a whole number from 1 to 1024`},
		{"shards", "two", `"two" is not a whole number: use one from 1 to 1024`},
		{"shards", "1.5", `"1.5" is not a whole number: use one from 1 to 1024`},
		{"shard.filter", "sever", `"sever" is not one of auto, server, client (did you mean "server"?)`},
		{"shard.filter", "hash", `"hash" is not one of auto, server, client`},
		{"tasks.max", "0", `"0" is out of range: use a whole number from 1 to 1048576`},
		{"capture.mode", "change_stream_update_full", `... (did you mean "change_streams_update_full"?)`},
		{"snapshot.mode", "intial", `... (did you mean "initial"?)`},
		{"pipeline", `[{"$match": }]`, `is not valid JSON at character 13 (invalid character '}' looking for beginning of value) near "[{\"$match\": }]": write a JSON array of stages, e.g. [{"$match": {"operationType": "insert"}}]`},
		{"pipeline", `[{"$match": {"a": 1}}`, `is not valid JSON: it ends early, at character 21: ...`},
		{"pipeline", `{"$match": {}}`, `is not a JSON array of stages: wrap the stages in [...], e.g. [{"$match": {"operationType": "insert"}}]`},
		{"pipeline", `[{"$match": {}}] x`, `has text after the array, at character 17: ...`},
		{"pipeline", `[{"$mach": {}}]`, `stage 1 "$mach" is not a stage a change stream pipeline may use here ($match, $project, $addFields, $set, $unset, $redact) (did you mean "$match"?)`},
		{"pipeline", `[{"$match": {}, "$project": {}}]`, `stage 1 is not a document with one stage name, like {"$match": {...}}`},
		{"pipeline", `[{"$replaceRoot": {"newRoot": "$fullDocument"}}]`, `stage 1 "$replaceRoot" is not a stage ...`},
		{"pipeline", `[{"$match": {}}, {"$project": {"_id": 0}}]`, `stage 2 $project removes _id, which mongorelay needs: exclude other fields only`},
		{"pipeline", `[{"$project": {"fullDocument": 1}}]`, `stage 1 $project includes "fullDocument", which drops every field ...`},
		{"pipeline", `[{"$unset": ["x", "documentKey._id"]}]`, `stage 1 $unset removes documentKey, which mongorelay needs`},
		{"pipeline", `[{"$set": {"operationType": "x"}}]`, `stage 1 $set rewrites operationType, which mongorelay needs: choose another field name`},
		{"pipeline", `[{"$match": {"x": {"$date": "not a date"}}}]`, `is not valid extended JSON ...`},
		{"heartbeat.interval.ms", "0", `"0" is out of range: use a whole number from 100 to 3600000`},
		{"exactly.once", "yes", `"yes" is not a boolean: use true or false`},
		{"value.format", "protobuf", `"protobuf" is not one of avro, json, json_schema`},
		{"key.format", "bytes", `"bytes" is not one of avro, json, string`},
		{"output.shape", "flat", `"flat" is not one of envelope, document`},
		{"output.document.add.fields", "op,source.host", `"source.host" is not a field of the envelope: use op, ts_ms or source.<field> with a field of source (connector, name, ts_ms, snapshot, db, collection, ord, resume_token, txn_id, lsid, txnNumber)`},
		{"output.document.add.fields", "op,op", `"op" is listed twice`},
		{"document.mode", "raw", `"raw" is not one of typed, json`},
		{"schema.registry.url", "registry:8081", `registry:8081 is not an http(s) URL: use e.g. http://registry:8081`},
		{"tombstones.on.delete", "1", `"1" is not a boolean: use true or false`},
		{"errors.tolerance", "some", `"some" is not one of none, all`},
		{"errors.deadletterqueue.topic.name", "dlq/topic", `"dlq/topic" contains "/": ...`},
		{"oversize.handling", "truncate", `"truncate" is not one of fail, skip`},
		{"offset.lost.policy", "resnap", `... (did you mean "resnapshot"?)`},
		{"max.batch.size", "0", `"0" is out of range: use a whole number from 1 to 100000`},
		{"poll.max.wait.ms", "-5", `"-5" is out of range: use a whole number from 1 to 60000`},
		{"snapshot.max.documents.per.second", "-1", `"-1" is out of range: use a whole number from 0 to 1000000000`},
		{"topic.creation.default.partitions", "0", `"0" is not allowed: use -1 for the broker's num.partitions, or a whole number of at least 1`},
		{"topic.creation.default.replication.factor", "0", `"0" is not allowed: use -1 for the broker's default.replication.factor, or a whole number of at least 1`},
		{"topic.creation.default.replication.factor", "-2", `"-2" is out of range: use a whole number from -1 to 32767`},
		{"collection.include.list", "", `is empty, which would capture nothing: remove the key (PATCH it to null) to capture every collection, or list at least one regular expression`},
		{"database.include.list", " , ", `... to capture every database, ...`},
		{"signal.data.collection", "signals", `must be "<database>.<collection>"`},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			problems := problemsOf(t, with(tt.key, tt.value))
			if len(problems) != 1 || problems[0].Key != tt.key {
				t.Fatalf("problems = %v, want one about %s", problems, tt.key)
			}
			assertMessage(t, problems[0].Message, tt.want)
		})
	}
}

func TestBadNames(t *testing.T) {
	for _, tt := range []struct {
		name, want string
	}{
		{"", "is required: every connector needs a name"},
		{"orders\ncdc", `"orders\ncdc" contains control characters: use a plain name, e.g. orders-cdc`},
		{"orders/v2", `"orders/v2" contains "/": the REST API names a connector in its paths (/connectors/{name}/status), where a "/" splits it; use e.g. "orders-v2"`},
		{strings.Repeat("é", 250), "is 250 characters long: a connector name has at most 249"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.name, minimal())
			ve, ok := errors.AsType[*ValidationError](err)
			if !ok || len(ve.Problems) != 1 || ve.Problems[0].Key != "name" {
				t.Fatalf("Parse = %v, want one problem about the name", err)
			}
			assertMessage(t, ve.Problems[0].Message, tt.want)
		})
	}
	if _, err := Parse(strings.Repeat("é", 249), minimal()); err != nil {
		t.Errorf("a name of 249 characters: %v, want none", err)
	}
}

// assertMessage checks a message against want, which may start and/or end
// with "..." to match only a part.
func assertMessage(t *testing.T, got, want string) {
	t.Helper()
	prefix, suffix := strings.HasPrefix(want, "... "), strings.HasSuffix(want, " ...")
	core := strings.TrimSuffix(strings.TrimPrefix(want, "... "), " ...")
	ok := got == core
	switch {
	case prefix && suffix:
		ok = strings.Contains(got, core)
	case prefix:
		ok = strings.HasSuffix(got, core) || strings.Contains(got, core)
	case suffix:
		ok = strings.HasPrefix(got, core)
	}
	if !ok {
		t.Errorf("message =\n %s\nwant\n %s", got, want)
	}
}

func TestProblemString(t *testing.T) {
	problems := problemsOf(t, with("shard.filter", "sever"))
	want := `config "shard.filter": "sever" is not one of auto, server, client (did you mean "server"?)`
	if got := problems[0].String(); got != want {
		t.Errorf("String =\n %s\nwant\n %s", got, want)
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	_, err := Parse("orders-cdc", map[string]string{
		"connector.class": "mongodb",
		"shards":          "0",
		"shard.filter":    "sever",
		"shard.filters":   "auto",
		"pipeline":        "[",
	})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v", err)
	}
	var keys []string
	for _, p := range ve.Problems {
		keys = append(keys, p.Key)
	}
	want := []string{"mongodb.connection.string", "topic.prefix", "shards", "shard.filter", "pipeline", "shard.filters"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("problem keys = %v, want %v (table order, then unknown keys)", keys, want)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "connector configuration is invalid and contains the following 6 error(s):\n") {
		t.Errorf("Error() = %s", msg)
	}
	for _, line := range []string{
		`config "mongodb.connection.string": is required: set it to the deployment's URI, e.g. mongodb://user:password@host1:27017,host2:27017/?replicaSet=rs0`,
		`config "topic.prefix": is required: set the prefix of every topic name, e.g. "mongo" for mongo.<database>.<collection>`,
		`config "shard.filters": unknown key (did you mean "shard.filter"?)`,
	} {
		if !strings.Contains(msg, "\n"+line) {
			t.Errorf("Error() lacks the line\n %s\nin\n%s", line, msg)
		}
	}
}

func TestUnknownKeys(t *testing.T) {
	tests := map[string]string{
		"shard.filters":        "shard.filter",
		"topic.prefx":          "topic.prefix",
		"Shards":               "shards",
		"tombstone.on.delete":  "tombstones.on.delete",
		"collection.whitelist": "collection.include.list",
		"database.blacklist":   "database.exclude.list",
		"mongodb.hosts":        "mongodb.connection.string",
		"connection.url":       "connection.uri",
		"copy.existng":         "copy.existing",
		"prefix":               "topic.prefix",
		"heartbeat.interval":   "heartbeat.interval.ms",
		"completely.different": "",
	}
	for key, want := range tests {
		problems := problemsOf(t, with(key, "x"))
		if len(problems) != 1 || problems[0].Key != key {
			t.Fatalf("%s: problems = %v", key, problems)
		}
		wantMsg := "unknown key"
		if want != "" {
			wantMsg += fmt.Sprintf(" (did you mean %q?)", want)
		}
		if problems[0].Message != wantMsg {
			t.Errorf("%s: message = %q, want %q", key, problems[0].Message, wantMsg)
		}
	}
}

func TestClientOverridesAreRefusedAsNotImplemented(t *testing.T) {
	for _, key := range []string{"producer.override.sasl.jaas.config", "consumer.override.bootstrap.servers", "admin.override.security.protocol"} {
		problems := problemsOf(t, with(key, "secret-ish"))
		if len(problems) != 1 || problems[0].Key != key {
			t.Fatalf("%s: problems = %v", key, problems)
		}
		if msg := problems[0].Message; !strings.HasPrefix(msg, "not implemented yet") || !strings.Contains(msg, "kafka.*") {
			t.Errorf("%s: message = %q, want not implemented yet, naming the worker's kafka.* settings", key, msg)
		}
	}
	if p := problemsOf(t, with("producer.override.sasl.jaas.config", "x")); p[0].Value != hidden {
		t.Errorf("a jaas override's value is shown: %q", p[0].Value)
	}
}

func TestIncludeExcludeConflict(t *testing.T) {
	problems := problemsOf(t, with(
		"database.include.list", "shop", "database.exclude.list", "test",
		"collection.include.list", `shop\.a`, "collection.exclude.list", `shop\.b`))
	want := []Problem{
		{Key: "database.exclude.list", Value: "test", Message: "cannot be set together with database.include.list: keep only one of them"},
		{Key: "collection.exclude.list", Value: `shop\.b`, Message: "cannot be set together with collection.include.list: keep only one of them"},
	}
	if !reflect.DeepEqual(problems, want) {
		t.Errorf("problems = %+v, want %+v", problems, want)
	}
	// Different levels combine.
	c := mustParse(t, with("database.include.list", "shop", "collection.exclude.list", `shop\.tmp`))
	if !c.Includes("shop", "orders") || c.Includes("shop", "tmp") || c.Includes("other", "orders") {
		t.Errorf("database include with collection exclude filters wrongly")
	}
}

func TestTheSignalCollectionMustBeCaptured(t *testing.T) {
	problems := problemsOf(t, with("collection.include.list", `shop\.orders`, "signal.data.collection", "shop.signals"))
	if len(problems) != 1 || problems[0].Key != "signal.data.collection" {
		t.Fatalf("problems = %v, want one about signal.data.collection", problems)
	}
	assertMessage(t, problems[0].Message, "is a collection the connector does not capture, ...")
	mustParse(t, with("collection.include.list", `shop\.orders,shop\.signals`, "signal.data.collection", "shop.signals"))
}

func TestTheDocumentShapeRefusesWhatItCannotWrite(t *testing.T) {
	tests := []struct {
		name string
		kv   []string
		want []Problem
	}{
		{"updates without their document", []string{"output.shape", "document", "capture.mode", "change_streams"}, []Problem{{Key: "output.shape", Value: "document",
			Message: "document needs each update's document, which capture.mode=change_streams does not look up: set capture.mode=change_streams_update_full (the default)"}}},
		{"added fields without the document shape", []string{"output.document.add.fields", "op"}, []Problem{{Key: "output.document.add.fields", Value: "op",
			Message: "applies only to output.shape=document: remove it or set output.shape=document"}}},
		{"the document shape with fields", []string{"output.shape", "document", "output.document.add.fields", "op, ts_ms,source.db"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == nil {
				c := mustParse(t, with(tt.kv...))
				if want := []string{"op", "ts_ms", "source.db"}; !reflect.DeepEqual(c.DocumentFields, want) {
					t.Errorf("DocumentFields = %q, want %q", c.DocumentFields, want)
				}
				return
			}
			if problems := problemsOf(t, with(tt.kv...)); !reflect.DeepEqual(problems, tt.want) {
				t.Errorf("problems = %+v, want %+v", problems, tt.want)
			}
		})
	}
}

func TestIncludes(t *testing.T) {
	c := mustParse(t, with("collection.include.list", `shop\.orders, shop\.order_items, crm\.a\,b`))
	for _, tt := range []struct {
		db, coll string
		want     bool
	}{
		{"shop", "orders", true},
		{"SHOP", "Orders", true}, // case-insensitive, as Debezium matches
		{"shop", "orders_archive", false},
		{"shop", "xorders", false},
		{"shop", "order_items", true},
		{"crm", "a,b", true}, // "\," is a comma inside an expression
		{"shop", "system.profile", false},
		{"admin", "orders", false},
	} {
		if got := c.Includes(tt.db, tt.coll); got != tt.want {
			t.Errorf("Includes(%q, %q) = %v, want %v", tt.db, tt.coll, got, tt.want)
		}
	}
	all := mustParse(t, minimal())
	for _, db := range []string{"admin", "config", "local"} {
		if all.Includes(db, "x") {
			t.Errorf("system database %s included", db)
		}
	}
	if !all.Includes("shop", "orders") {
		t.Errorf("default config excludes shop.orders")
	}
}

func TestTopic(t *testing.T) {
	c := mustParse(t, minimal())
	for db, tests := range map[string]map[string]string{
		"shop": {
			"orders":       "mongo.shop.orders",
			"order items":  "mongo.shop.order_items",
			"ünïcode":      "mongo.shop.__n__code",
			"a$b/c":        "mongo.shop.a_b_c",
			"dotted.name":  "mongo.shop.dotted.name",
			"dash-and_usc": "mongo.shop.dash-and_usc",
		},
	} {
		for coll, want := range tests {
			if got := c.Topic(db, coll); got != want {
				t.Errorf("Topic(%q, %q) = %q, want %q", db, coll, got, want)
			}
		}
	}
	long := strings.Repeat("c", 300)
	a, b := c.Topic("shop", long), c.Topic("shop", long+"x")
	if len(a) != 249 || len(b) != 249 || a == b {
		t.Errorf("long topics: %d %d equal=%v", len(a), len(b), a == b)
	}
	if a != c.Topic("shop", long) {
		t.Errorf("long topic name is not stable")
	}
	for i := 0; i < len(a); i++ {
		if !legalTopicChar(a[i]) {
			t.Fatalf("illegal character in %q", a)
		}
	}
}

func TestSecretsNeverShown(t *testing.T) {
	const password = "S3cr3tPa55"
	const token = "AwsT0kenValue"
	uris := []string{
		goodURI,
		"mongodb://cdc:" + password + "@db1:27017/?maxPoolSize=x",
		"mongodb://cdc:" + password + "%zz@db1:27017/",
		"mongodb://cdc:" + password + "/x@db1:27017/",
		"mongodb://cdc:" + password + "?@db1:27017/",
		"mongodb://cdc:" + password + "@db1:27017,db2:27017/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:" + token + "&maxPoolSize=bad",
		"mongodb://cdc:" + password + "@db1/?tlsCertificateKeyFilePassword=" + token + "&tls=maybe",
		"postgres://cdc:" + password + "@db1/",
		"cdc:" + password + "@db1",
		"mongodb+srv://cdc:" + password + "@a.example.net,b.example.net/",
	}
	for _, uri := range uris {
		raw := with(
			"mongodb.connection.string", uri,
			"schema.registry.url", "https://sr:"+password+"@sr1:8081,ftp://u:"+password+"@sr2",
			"mongodb.password", password,
			"sasl.jaas.config", "password="+password,
			"shards", "0", // an error elsewhere, so Parse fails even for good URIs
		)
		c, err := Parse("orders-cdc", raw)
		if err == nil {
			t.Fatalf("Parse(%s) succeeded", uri)
		}
		shown := []string{err.Error()}
		var ve *ValidationError
		errors.As(err, &ve)
		for _, p := range ve.Problems {
			shown = append(shown, p.Value, p.Message, p.String())
		}
		for _, s := range shown {
			if strings.Contains(s, password) || strings.Contains(s, token) {
				t.Errorf("secret shown for %s:\n%s", uri, s)
			}
		}
		_ = c
	}

	c := mustParse(t, with(
		"mongodb.connection.string", "mongodb://cdc:"+password+"@db1/?authMechanismProperties=AWS_SESSION_TOKEN:"+token,
		"schema.registry.url", "https://sr:"+password+"@sr1:8081"))
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "uri", c.ConnectionString, "registries", c.SchemaRegistryURLs)
	js, _ := json.Marshal(c)
	for _, s := range []string{
		c.String(), fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%+v", *c),
		fmt.Sprintf("%x", c.ConnectionString), fmt.Sprintf("%q", c.ConnectionString),
		string(js), logs.String(), fmt.Sprint(c.Redacted()),
	} {
		if strings.Contains(s, password) || strings.Contains(s, token) {
			t.Errorf("secret shown: %s", s)
		}
	}
	red := c.Redacted()
	if want := "mongodb://cdc:[hidden]@db1/?authMechanismProperties=[hidden]"; red["mongodb.connection.string"] != want {
		t.Errorf("Redacted connection string = %s, want %s", red["mongodb.connection.string"], want)
	}
	if want := "https://sr:[hidden]@sr1:8081"; red["schema.registry.url"] != want {
		t.Errorf("Redacted registry URL = %s, want %s", red["schema.registry.url"], want)
	}
	if c.Raw()["mongodb.connection.string"] != "mongodb://cdc:"+password+"@db1/?authMechanismProperties=AWS_SESSION_TOKEN:"+token {
		t.Errorf("Raw lost the connection string")
	}
}

func TestRedactURI(t *testing.T) {
	for in, want := range map[string]string{
		"mongodb://localhost:27017/db":                        "mongodb://localhost:27017/db",
		"mongodb://u:p@h1,h2/db?replicaSet=rs":                "mongodb://u:[hidden]@h1,h2/db?replicaSet=rs",
		"mongodb://u@h/?authSource=admin":                     "mongodb://u@h/?authSource=admin",
		"mongodb://u:p@ss@h/":                                 "mongodb://u:[hidden]@h/",
		"mongodb://u:pa?ss@h/?appName=x":                      "mongodb://u:[hidden]@h/?appName=x",
		"mongodb://h/?tlsCertificateKeyFilePassword=x;w=1":    "mongodb://h/?tlsCertificateKeyFilePassword=[hidden]&w=1",
		"mongodb://h/?appName=a@b":                            "mongodb://h/?appName=a@b",
		"mongodb://u:p@h:27017/?appName=a@b&authSource=admin": "mongodb://u:[hidden]@b&authSource=admin",
		"u:p@h": "u:[hidden]@h",
	} {
		if got := redactURI(in); got != want {
			t.Errorf("redactURI(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestParseJSON(t *testing.T) {
	c, err := ParseJSON([]byte(`{"name": "orders-cdc", "config": {
		"connector.class": "mongodb",
		"mongodb.connection.string": "mongodb://localhost",
		"topic.prefix": "mongo",
		"shards": 8,
		"tombstones.on.delete": false,
		"heartbeat.interval.ms": 5000,
		"tasks.max": null,
		"pipeline": [{"$match": {"operationType": "insert"}}]
	}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Shards != 8 || c.TombstonesOnDelete || c.HeartbeatInterval != 5*time.Second || c.TasksMax != 0 || len(c.Pipeline) != 1 {
		t.Errorf("ParseJSON = %+v", c)
	}
	wantRaw := map[string]string{
		"connector.class": "mongodb", "mongodb.connection.string": "mongodb://localhost", "topic.prefix": "mongo",
		"shards": "8", "tombstones.on.delete": "false", "heartbeat.interval.ms": "5000",
		"pipeline": `[{"$match":{"operationType":"insert"}}]`,
	}
	if got := c.Raw(); !maps.Equal(got, wantRaw) {
		t.Errorf("normalised entries = %v, want %v", got, wantRaw)
	}

	for name, in := range map[string]string{
		"not JSON":          `{"name": "x", "config": `,
		"no config":         `{"name": "x"}`,
		"unknown field":     `{"name": "x", "config": {}, "tasks": []}`,
		"config not object": `{"name": "x", "config": []}`,
	} {
		if _, err := ParseJSON([]byte(in)); err == nil {
			t.Errorf("%s: ParseJSON succeeded", name)
		}
	}
	_, err = ParseJSON([]byte(`{"name": "", "config": {"connector.class": "mongodb", "mongodb.connection.string": "mongodb://h", "topic.prefix": "p"}}`))
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Problems[0].Key != "name" {
		t.Errorf("empty name: %v", err)
	}
}

func TestKeysTable(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Keys() {
		if seen[k.Name] {
			t.Errorf("%s listed twice", k.Name)
		}
		seen[k.Name] = true
		if k.Doc == "" || k.set == nil || k.Type == "" {
			t.Errorf("%s lacks a doc, a setter or a type", k.Name)
		}
		if k.Required && k.Default != "" {
			t.Errorf("%s is required but has a default", k.Name)
		}
		if (k.Type == TypeInt || k.Type == TypeLong) && k.Min >= k.Max {
			t.Errorf("%s has no range", k.Name)
		}
		if k.Default != "" {
			if _, msg := check(k, k.Default); msg != "" {
				t.Errorf("%s default %q fails its own check: %s", k.Name, k.Default, msg)
			}
		}
	}
	for _, name := range []string{
		"connector.class", "mongodb.connection.string", "database.include.list", "database.exclude.list",
		"collection.include.list", "collection.exclude.list", "topic.prefix", "shards", "shard.filter",
		"tasks.max", "capture.mode", "snapshot.mode", "pipeline", "heartbeat.interval.ms", "exactly.once",
		"value.format", "key.format", "output.shape", "document.mode", "schema.registry.url", "tombstones.on.delete", "errors.tolerance",
		"errors.deadletterqueue.topic.name", "oversize.handling", "offset.lost.policy", "max.batch.size",
		"poll.max.wait.ms", "topic.creation.default.partitions", "topic.creation.default.replication.factor",
	} {
		if !seen[name] {
			t.Errorf("DESIGN.md 8 key %s missing from Keys()", name)
		}
	}
}

func TestConfigDefDescribesEveryKey(t *testing.T) {
	keys := Keys()
	known := map[string]bool{}
	for _, k := range keys {
		known[k.Name] = true
	}
	def := ConfigDef()
	if len(def) != len(keys) {
		t.Fatalf("ConfigDef has %d keys, Keys %d", len(def), len(keys))
	}
	order := map[string]int{}
	for i, d := range def {
		if d.Name != keys[i].Name || d.Documentation == "" || d.DisplayName == "" || d.Group == "" {
			t.Errorf("%s: name, documentation, display name and group are required: %+v", keys[i].Name, d)
		}
		switch d.Importance {
		case "HIGH", "MEDIUM", "LOW":
		default:
			t.Errorf("%s: importance %q", d.Name, d.Importance)
		}
		switch d.Width {
		case "SHORT", "MEDIUM", "LONG":
		default:
			t.Errorf("%s: width %q", d.Name, d.Width)
		}
		if order[d.Group]++; d.OrderInGroup != order[d.Group] {
			t.Errorf("%s: order %d in group %s, want %d", d.Name, d.OrderInGroup, d.Group, order[d.Group])
		}
		for _, dep := range d.Dependents {
			if !known[dep] {
				t.Errorf("%s: dependent %q is no key", d.Name, dep)
			}
		}
	}
}

// TestRetryKeysAreCheckedAsTheRunnerReadsThem: a value of errors.retry.* that validation
// accepts is one the runner reads (connector.ParseRetry), and one it refuses the runner would
// not read either.
func TestRetryKeysAreCheckedAsTheRunnerReadsThem(t *testing.T) {
	for _, key := range []string{connector.RetryTimeoutKey, connector.RetryDelayMaxKey} {
		for _, v := range []string{"-2", "-1", "0", "99", "100", "10000", "3600000", "3600001", "9223372036854", "9223372036855", "1e3", "x"} {
			raw := minimal()
			raw[key] = v
			_, err := Parse("orders", raw)
			_, problems := connector.ParseRetry(raw)
			if (err == nil) != (len(problems) == 0) {
				t.Errorf("%s=%s: validation says %v, the runner's parser %v", key, v, err, problems)
			}
		}
	}
}
