package config

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mongorelay/mongorelay/internal/configprovider"
	"github.com/mongorelay/mongorelay/tasks/connector"
	"github.com/mongorelay/mongorelay/tasks/envelope"
)

// Type is a key's type, named as Kafka Connect's ConfigDef names it so the
// table can answer PUT /connector-plugins/{plugin}/config/validate.
type Type string

// The key types.
const (
	TypeString   Type = "STRING"
	TypeInt      Type = "INT"
	TypeLong     Type = "LONG"
	TypeBoolean  Type = "BOOLEAN"
	TypeList     Type = "LIST"
	TypePassword Type = "PASSWORD"
	TypeClass    Type = "CLASS"
)

// Importance is a key's ConfigDef importance.
type Importance string

// The importances, Kafka Connect's.
const (
	ImportanceHigh   Importance = "HIGH"
	ImportanceMedium Importance = "MEDIUM"
	ImportanceLow    Importance = "LOW"
)

// Key describes one connector config key.
type Key struct {
	Name string
	Type Type
	// Default is used when the key is absent or empty; "" means unset.
	Default  string
	Required bool
	// Allowed lists the accepted values (matched case-insensitively).
	Allowed []string
	// Min and Max bound an INT key, inclusive.
	Min, Max int64
	// Secret values are redacted wherever they are shown (see Redact).
	Secret bool
	Doc    string
	// Group, Importance, Display and Dependents are Kafka Connect's ConfigDef metadata
	// (see Def): the form a UI builds from GET /connector-plugins/{plugin}/config.
	Group      string
	Importance Importance
	Display    string
	Dependents []string

	// uris marks a secret that is a list of URIs, shown with only their
	// passwords and secret options hidden.
	uris bool
	// include names what an include list selects ("database", "collection"): given, the
	// list must name something, since an empty one would capture nothing; absent, every
	// one is captured.
	include string

	// optionalFor is a connector.class for which a Required key is optional, as it is in
	// the product of that class.
	optionalFor string

	// set stores a value that passed the generic checks in c, and returns
	// a problem message naming the fix, or "".
	set func(c *Config, v string) string
}

// Names accepted for connector.class: ours, and the Debezium and MongoDB
// Kafka Connector classes, so their configs work unchanged.
const (
	ClassMongoRelay = "mongodb"
	ClassDebezium   = "io.debezium.connector.mongodb.MongoDbConnector"
	ClassMongoKafka = "com.mongodb.kafka.connect.MongoSourceConnector"
)

// Keys returns every connector config key, in the order validation reports
// them. It is the one list of keys, defaults, ranges and docs.
func Keys() []Key {
	return []Key{
		{Name: "name", Type: TypeString,
			Group: "Connector", Importance: ImportanceHigh, Display: "Connector name",
			Doc: "The connector's name. Optional inside config (Kafka Connect puts it there); when set it must equal the connector's name.",
			set: func(c *Config, v string) string {
				if v != c.Name {
					return fmt.Sprintf("%q does not match the connector's name %q: remove it or make them equal", v, c.Name)
				}
				return ""
			}},
		{Name: "connector.class", Type: TypeClass,
			Group: "Connector", Importance: ImportanceHigh, Display: "Connector class", Required: true,
			Allowed: []string{ClassMongoRelay, ClassDebezium, ClassMongoKafka},
			Doc:     `The connector type: "mongodb". The Debezium and MongoDB Kafka Connector class names are accepted as aliases.`,
			set:     func(c *Config, v string) string { c.ConnectorClass = v; return "" }},
		{Name: "mongodb.connection.string", Type: TypePassword,
			Group: "MongoDB", Importance: ImportanceHigh, Display: "MongoDB connection string", Required: true, Secret: true, uris: true,
			Doc: "The MongoDB connection string, mongodb://[user:password@]host[:port][,host...]/[?options] or mongodb+srv://...; the password is never shown. Keep the password, or the whole string, out of the config with a config provider reference, e.g. mongodb://cdc:${file:/etc/mongorelay/mongo.properties:password}@db1:27017/ (docs/secrets.md): the reference is stored and shown, its value is read on each worker that validates or runs the connector. Reachability is checked when the connector starts, not here.",
			set: setConnectionString},
		{Name: "database.include.list", Type: TypeList,
			Group: "Selection", Importance: ImportanceHigh, Display: "Databases to capture",
			Doc:     "Comma-separated regular expressions; only databases whose whole name matches one (case-insensitively) are captured. Escape a comma inside an expression as \\,. Cannot be set together with database.exclude.list. Default: every database except admin, config and local.",
			include: "database",
			set:     func(c *Config, v string) (msg string) { c.databaseInclude, msg = compileList(v); return }},
		{Name: "database.exclude.list", Type: TypeList,
			Group: "Selection", Importance: ImportanceMedium, Display: "Databases to skip",
			Doc: "Comma-separated regular expressions; databases whose whole name matches one are not captured. Cannot be set together with database.include.list.",
			set: func(c *Config, v string) (msg string) { c.databaseExclude, msg = compileList(v); return }},
		{Name: "collection.include.list", Type: TypeList,
			Group: "Selection", Importance: ImportanceHigh, Display: "Collections to capture",
			Doc:     "Comma-separated regular expressions matched against the whole <database>.<collection>, case-insensitively, as Debezium matches them; only matching collections are captured. Cannot be set together with collection.exclude.list. system.* collections are never captured.",
			include: "collection",
			set:     func(c *Config, v string) (msg string) { c.collectionInclude, msg = compileList(v); return }},
		{Name: "collection.exclude.list", Type: TypeList,
			Group: "Selection", Importance: ImportanceMedium, Display: "Collections to skip",
			Doc: "Comma-separated regular expressions matched against the whole <database>.<collection>, case-insensitively; matching collections are not captured. Cannot be set together with collection.include.list.",
			set: func(c *Config, v string) (msg string) { c.collectionExclude, msg = compileList(v); return }},
		{Name: "topic.prefix", Type: TypeString,
			Group: "Topics", Importance: ImportanceHigh, Display: "Topic prefix", Required: true, optionalFor: ClassMongoKafka,
			Doc: "Prefix of every topic: changes go to <topic.prefix>.<database>.<collection>, with characters Kafka does not allow replaced by _. Only letters, digits, '.', '_' and '-'. " +
				"Optional with connector.class=" + ClassMongoKafka + ", as in that connector: without it topics are <database>.<collection>.",
			set: setTopicPrefix},
		{Name: "shards", Type: TypeInt,
			Group: "Sharding", Importance: ImportanceMedium, Display: "Shards per collection", Dependents: []string{"shard.filter", "tasks.max"}, Default: "1", Min: 1, Max: 1024,
			Doc: "How many shards (tasks) each collection's change stream (with capture.scope=database or deployment: each database's or the deployment's) is split into, by the hash of _id. Changing it later neither loses nor repeats changes.",
			set: func(c *Config, v string) string { c.Shards = atoi(v); return "" }},
		{Name: "shard.filter", Type: TypeString,
			Group: "Sharding", Importance: ImportanceLow, Display: "Shard filter", Default: string(ShardFilterAuto),
			Allowed: []string{string(ShardFilterAuto), string(ShardFilterServer), string(ShardFilterClient)},
			Doc:     "Where events are split into shards: server (a $toHashedIndexKey stage in the change stream, MongoDB 4.4+), client (each task reads the whole stream and keeps its share), or auto (server when the server supports it, else client).",
			set:     func(c *Config, v string) string { c.ShardFilter = ShardFilter(v); return "" }},
		{Name: "tasks.max", Type: TypeInt,
			Group: "Sharding", Importance: ImportanceMedium, Display: "Maximum tasks", Min: 1, Max: 1 << 20,
			Doc: "Kafka Connect's cap on the connector's total tasks. Collection shards beyond it share tasks: a task then runs several collection shards (named in its task.collection.shards), each still with its own change stream, producer and offsets, and they move between nodes together. Default: no cap, one task per collection shard.",
			set: func(c *Config, v string) string { c.TasksMax = atoi(v); return "" }},
		{Name: "capture.mode", Type: TypeString,
			Group: "Change stream", Importance: ImportanceMedium, Display: "Capture mode", Default: string(CaptureUpdateFull),
			Allowed: []string{string(CaptureChangeStreams), string(CaptureUpdateFull), string(CaptureWithPreImage), string(CaptureUpdateFullWithPreImage)},
			Doc:     "What an update event carries: change_streams (the update description only), change_streams_update_full (also the full document after it), and the _with_pre_image variants (also the document before it; needs changeStreamPreAndPostImages on the collection, MongoDB 6.0+).",
			set:     func(c *Config, v string) string { c.CaptureMode = CaptureMode(v); return "" }},
		{Name: "capture.scope", Type: TypeString,
			Group: "Change stream", Importance: ImportanceMedium, Display: "Capture scope", Dependents: []string{"shards"}, Default: string(ScopeCollection),
			Allowed: []string{string(ScopeCollection), string(ScopeDatabase), string(ScopeDeployment)},
			Doc: "What one change stream watches: collection (one stream per collection shard), database (one per database shard: db.watch()) or deployment (one per shard for the whole deployment: client.watch()). " +
				"A database or deployment stream is filtered on the server to the included collections and fans out to each collection's topic; a collection created in its scope arrives in it from its first operation. " +
				"Fewer cursors, but one slow collection delays the others of its stream and they share one resume token (docs/capture-scope.md).",
			set: func(c *Config, v string) string { c.CaptureScope = CaptureScope(v); return "" }},
		{Name: "snapshot.mode", Type: TypeString,
			Group: "Snapshot", Importance: ImportanceHigh, Display: "Snapshot mode", Dependents: []string{"snapshot.max.documents.per.second", "offset.lost.policy"}, Default: string(SnapshotInitial),
			Allowed: []string{string(SnapshotInitial), string(SnapshotNever), string(SnapshotWhenNeeded), string(SnapshotInitialOnly)},
			Doc: "When existing documents are copied as op r events: initial (once, before streaming), never, when_needed (also when the stream's history was lost), initial_only (copy, then stop). " +
				"A collection created while the connector runs is never copied: it is streamed from before its creation, every operation as c, u or d.",
			set: func(c *Config, v string) string { c.SnapshotMode = SnapshotMode(v); return "" }},
		{Name: "snapshot.max.documents.per.second", Type: TypeInt,
			Group: "Snapshot", Importance: ImportanceLow, Display: "Snapshot documents per second", Default: "0", Min: 0, Max: 1_000_000_000,
			Doc: "Most documents each task copies per second during a snapshot, to spare a busy primary; 0 (the default) copies as fast as MongoDB and Kafka allow. With shards > 1 each task has this budget. It can be changed on a restart: a resumed copy goes on at the new rate.",
			set: func(c *Config, v string) string { c.SnapshotMaxRate = atoi(v); return "" }},
		{Name: "signal.data.collection", Type: TypeString,
			Group: "Snapshot", Importance: ImportanceLow, Display: "Signal collection",
			Doc: `A collection, "<database>.<collection>", that the connector captures (its include lists select it), where inserting a document {_id: <any>, type: "execute-snapshot", data: {"data-collections": ["<database>.<collection>", ...], type: "incremental"}} asks for an ad-hoc snapshot of those collections, as Debezium's signal of that name and POST /connectors/{name}/snapshot do: each is copied again while it streams, its documents arriving as op r records (source.snapshot "incremental") in order with its changes. ` +
				"The task that streams the signal collection reads the signal from its change stream and records the request in the cluster state once per signal _id. Only with capture.scope=collection. Default: none, signals are not read.",
			set: func(c *Config, v string) string {
				c.SignalCollection = v
				if db, coll, ok := strings.Cut(v, "."); v != "" && (!ok || db == "" || coll == "") {
					return `must be "<database>.<collection>"`
				}
				return ""
			}},
		{Name: "pipeline", Type: TypeString,
			Group: "Change stream", Importance: ImportanceMedium, Display: "Change stream pipeline", Default: "[]",
			Doc: `A JSON (extended JSON) array of aggregation stages applied to each change stream, e.g. [{"$match": {"operationType": {"$in": ["insert", "update"]}}}]. Only $match, $project, $addFields, $set, $unset, $replaceRoot, $replaceWith and $redact, and none may change _id, which holds the resume token.`,
			set: setPipeline},
		{Name: "heartbeat.interval.ms", Type: TypeInt,
			Group: "Change stream", Importance: ImportanceLow, Display: "Heartbeat interval (ms)", Default: "10000", Min: 100, Max: 3_600_000,
			Doc: "How often an idle task commits the stream's position, so a quiet collection never falls out of the oplog window.",
			set: func(c *Config, v string) string { c.HeartbeatInterval = millis(v); return "" }},
		{Name: "exactly.once", Type: TypeBoolean,
			Group: "Delivery", Importance: ImportanceMedium, Display: "Exactly once", Default: "true",
			Doc: "Write each task's offset record to the offsets topic inside the Kafka transaction that carries its records (and its dead letters), as Kafka Connect's exactly-once source support (KIP-618) does, so that consumers with isolation.level=read_committed see every change exactly once across crashes, failovers and restarts. A task reads its offset with read_committed once its transactional ids have fenced the previous owner; any failed, fenced or timed-out transaction is aborted and the task resumes from the last committed offset. false (at-least-once): the offset is committed after the transaction, and a crash between the two repeats the events in between. Costs a write to the offsets topic per transaction instead of per commit; measured side by side it costs no events/s (bench/README.md), hence the default.",
			set: func(c *Config, v string) string { c.ExactlyOnce = v == "true"; return "" }},
		{Name: "output.shape", Type: TypeString,
			Group: "Output", Importance: ImportanceMedium, Display: "Output shape", Dependents: []string{"output.document.add.fields"}, Default: string(ShapeEnvelope),
			Allowed: []string{string(ShapeEnvelope), string(ShapeDocument)},
			Doc: "What a record's value holds: envelope (Debezium's change event: before, after, updateDescription, source, op, ts_ms) or document (the document after the change only, as Debezium's ExtractNewDocumentState or the MongoDB Kafka Connector's publish.full.document.only write it, " +
				"with the fields output.document.add.fields names; a delete writes a tombstone, or nothing with tombstones.on.delete=false, and an update whose document is gone by the time it is looked up writes nothing, its delete following).",
			set: func(c *Config, v string) string { c.OutputShape = OutputShape(v); return "" }},
		{Name: "output.document.add.fields", Type: TypeList,
			Group: "Output", Importance: ImportanceLow, Display: "Fields added to documents",
			Doc: "With output.shape=document, the change's fields added to each document, as Debezium's ExtractNewDocumentState add.fields names them: op (as __op), ts_ms (__ts_ms, the processing time) and source.<field> (__source_<field>) for each field of the envelope's source " +
				"(connector, name, ts_ms, snapshot, db, collection, ord, resume_token, txn_id, lsid, txnNumber). A document with a field of one of these names cannot be written and goes where errors.tolerance says. Default: none.",
			set: setDocumentFields},
		{Name: "value.format", Type: TypeString,
			Group: "Output", Importance: ImportanceMedium, Display: "Value format", Dependents: []string{"document.mode"}, Default: string(ValueAvro),
			Allowed: []string{string(ValueAvro), string(ValueJSON), string(ValueJSONSchema)},
			Doc: "Record value encoding: avro (Confluent wire format, schemas in the registry), json (plain JSON, as Kafka Connect's JsonConverter writes it with schemas.enable=false) or json_schema (JsonConverter's {\"schema\": ..., \"payload\": ...} envelope, schemas.enable=true). " +
				"In JSON, documents are canonical Extended JSON, Debezium's and the MongoDB Kafka Connector's default: objects, or strings holding it where the envelope's documents are strings (document.mode=json, and every json_schema envelope, Debezium's io.debezium.data.Json). docs/record-format.md shows each.",
			set: func(c *Config, v string) string { c.ValueFormat = ValueFormat(v); return "" }},
		{Name: "key.format", Type: TypeString,
			Group: "Output", Importance: ImportanceMedium, Display: "Key format", Default: string(KeyAvro),
			Allowed: []string{string(KeyAvro), string(KeyJSON), string(KeyString)},
			Doc:     "Record key encoding: avro (record {id: string}, Confluent wire format), json ({\"id\": string}, Debezium's key as JsonConverter writes it with schemas.enable=false) or string (the id alone). id is always the canonical Extended JSON of the document's _id, so equal _ids give equal keys in every format.",
			set:     func(c *Config, v string) string { c.KeyFormat = KeyFormat(v); return "" }},
		{Name: "document.mode", Type: TypeString,
			Group: "Output", Importance: ImportanceMedium, Display: "Document mode", Default: string(DocumentTyped),
			Allowed: []string{string(DocumentTyped), string(DocumentJSON)},
			Doc:     "How documents appear in before/after: typed (a record schema inferred from the documents) or json (canonical extended JSON strings, as Debezium writes them).",
			set:     func(c *Config, v string) string { c.DocumentMode = DocumentMode(v); return "" }},
		{Name: "schema.registry.url", Type: TypeList,
			Group: "Output", Importance: ImportanceMedium, Display: "Schema registry URLs", Secret: true, uris: true,
			Doc: "Comma-separated URLs of an external Confluent-compatible schema registry; credentials in a URL are never shown, and may be config provider references (docs/secrets.md). Default: the registry built into mongorelay.",
			set: setRegistryURLs},
		{Name: "tombstones.on.delete", Type: TypeBoolean,
			Group: "Output", Importance: ImportanceLow, Display: "Tombstones on delete", Default: "true",
			Doc: "Follow each delete event with a tombstone (a record with a null value) so compacted topics drop the document. With output.shape=document the tombstone is the delete's only record: false writes nothing for a delete.",
			set: func(c *Config, v string) string { c.TombstonesOnDelete = v == "true"; return "" }},
		{Name: "errors.tolerance", Type: TypeString,
			Group: "Errors", Importance: ImportanceMedium, Display: "Error tolerance", Dependents: []string{"errors.deadletterqueue.topic.name"}, Default: string(ToleranceNone),
			Allowed: []string{string(ToleranceNone), string(ToleranceAll)},
			Doc:     "none: a record that cannot be converted fails the task. all: it is skipped, logged and counted, and sent to errors.deadletterqueue.topic.name when that is set.",
			set:     func(c *Config, v string) string { c.ErrorsTolerance = ErrorsTolerance(v); return "" }},
		{Name: "errors.deadletterqueue.topic.name", Type: TypeString,
			Group: "Errors", Importance: ImportanceMedium, Display: "Dead letter topic",
			Doc: "Topic for records skipped under errors.tolerance=all and references to records skipped by oversize.handling=skip. Optional, as in Kafka Connect: without it skipped records are only logged and counted.",
			set: func(c *Config, v string) (msg string) { c.DeadLetterTopic, msg = v, checkTopicName(v); return }},
		{Name: "oversize.handling", Type: TypeString,
			Group: "Errors", Importance: ImportanceMedium, Display: "Oversize record handling", Dependents: []string{"errors.deadletterqueue.topic.name"}, Default: string(OversizeFail),
			Allowed: []string{string(OversizeFail), string(OversizeSkip)},
			Doc:     "A record larger than its topic's max.message.bytes: fail (the task fails, naming the document key) or skip (logged, counted, and a reference without the body goes to the dead letter topic).",
			set:     func(c *Config, v string) string { c.OversizeHandling = OversizeHandling(v); return "" }},
		{Name: "offset.lost.policy", Type: TypeString,
			Group: "Errors", Importance: ImportanceHigh, Display: "When the position is lost", Default: string(OffsetLostFail),
			Allowed: []string{string(OffsetLostFail), string(OffsetLostResnapshot)},
			Doc:     "When the oplog no longer holds a task's position: fail (the task fails, saying what was lost and how to recover) or resnapshot (copy the collection again, then stream on). Never a silent restart from now.",
			set:     func(c *Config, v string) string { c.OffsetLostPolicy = OffsetLostPolicy(v); return "" }},
		// The runner reads these two (connector.ParseRetry), for every kind alike: the task
		// itself never sees them.
		{Name: connector.RetryTimeoutKey, Type: TypeLong,
			Group: "Errors", Importance: ImportanceMedium, Display: "Retry timeout (ms)", Dependents: []string{connector.RetryDelayMaxKey},
			Default: strconv.Itoa(connector.DefaultRetryTimeoutMs), Min: connector.MinRetryTimeoutMs, Max: connector.MaxRetryTimeoutMs,
			Doc: connector.RetryTimeoutDoc,
			set: retryKey},
		{Name: connector.RetryDelayMaxKey, Type: TypeLong,
			Group: "Errors", Importance: ImportanceLow, Display: "Longest retry wait (ms)",
			Default: strconv.Itoa(connector.DefaultRetryDelayMaxMs), Min: connector.MinRetryDelayMaxMs, Max: connector.MaxRetryDelayMaxMs,
			Doc: connector.RetryDelayMaxDoc,
			set: retryKey},
		{Name: "max.batch.size", Type: TypeInt,
			Group: "Change stream", Importance: ImportanceLow, Display: "Maximum batch size", Default: "2048", Min: 1, Max: 100_000,
			Doc: "Most events a task reads per change stream batch, and documents per chunk of an incremental snapshot (POST /connectors/{name}/snapshot, signal.data.collection).",
			set: func(c *Config, v string) string { c.MaxBatchSize = atoi(v); return "" }},
		{Name: "poll.max.wait.ms", Type: TypeInt,
			Group: "Change stream", Importance: ImportanceLow, Display: "Poll wait (ms)", Default: "500", Min: 1, Max: 60_000,
			Doc: "How long the server may hold a change stream read that has no events (maxAwaitTimeMS).",
			set: func(c *Config, v string) string { c.PollMaxWait = millis(v); return "" }},
		{Name: "topic.creation.default.partitions", Type: TypeInt,
			Group: "Topics", Importance: ImportanceLow, Display: "Topic partitions", Default: "1", Min: -1, Max: 100_000,
			Doc: "Partitions of each topic mongorelay creates; -1 uses the broker's num.partitions.",
			set: func(c *Config, v string) string {
				c.TopicPartitions = int32(atoi(v))
				return notZero(v, "the broker's num.partitions")
			}},
		{Name: "topic.creation.default.replication.factor", Type: TypeInt,
			Group: "Topics", Importance: ImportanceLow, Display: "Topic replication factor", Default: "-1", Min: -1, Max: 32767,
			Doc: "Replication factor of each topic mongorelay creates; -1 (the default) uses the broker's default.replication.factor.",
			set: func(c *Config, v string) string {
				c.TopicReplicationFactor = int16(atoi(v))
				return notZero(v, "the broker's default.replication.factor")
			}},
		{Name: "topic.namespace.map", Type: TypeString,
			Group: "Topics", Importance: ImportanceMedium, Display: "Topic of each namespace",
			Doc: `A JSON object mapping namespaces to topics, as the MongoDB Kafka Connector's topic.namespace.map does: a key is "<database>.<collection>", "<database>" or "*", a value a topic name, and a collection's topic is <topic.prefix>.<value> of its collection's entry, else <topic.prefix>.<value>.<collection> of its database's entry, else <topic.prefix>.<value> of "*", else <topic.prefix>.<database>.<collection>. ` +
				`{"*": "all"} puts every collection on one topic. A routed record's key holds the collection's own topic name in __dbz__physicalTableIdentifier beside id, as Debezium's topic router adds it, so that collections sharing a topic never share a key; key.format=string, which has no room for it, is refused. Default: no map.`,
			set: setNamespaceMap},
		{Name: "heartbeat.topic", Type: TypeString,
			Group: "Topics", Importance: ImportanceLow, Display: "Heartbeat topic", Dependents: []string{"heartbeat.interval.ms"},
			Doc: "Topic of Debezium's heartbeat records: while streaming, each task writes one every heartbeat.interval.ms, busy or idle, key {serverName: <topic.prefix>} and value {ts_ms: the time it was written}, in the connector's key.format and value.format, so that consumers see the connector alive. " +
				"Debezium names it __debezium-heartbeat.<topic.prefix>. Default: none written.",
			set: func(c *Config, v string) (msg string) { c.HeartbeatTopic, msg = v, checkTopicName(v); return }},
		{Name: "key.subject.name.strategy", Type: TypeString,
			Group: "Output", Importance: ImportanceLow, Display: "Key subject naming", Default: string(SubjectTopicName), Allowed: subjectStrategies(),
			Doc: "The subject an Avro key schema is registered under, as Confluent's serializers name it: TopicNameStrategy (<topic>-key), RecordNameStrategy (the record's full name) or TopicRecordNameStrategy (<topic>-<full name>); Confluent's class names (io.confluent.kafka.serializers.subject.*) are accepted. " +
				"A key record is named <namespace>.Key, the namespace made from the topic with TopicNameStrategy, from the collection's own topic <topic.prefix>.<database>.<collection> with the others.",
			set: setSubjectStrategy(func(c *Config) *SubjectStrategy { return &c.KeySubjectStrategy })},
		{Name: "value.subject.name.strategy", Type: TypeString,
			Group: "Output", Importance: ImportanceLow, Display: "Value subject naming", Default: string(SubjectTopicName), Allowed: subjectStrategies(),
			Doc: "The subject an Avro value schema is registered under: TopicNameStrategy (<topic>-value), RecordNameStrategy (the record's full name: <namespace>.Envelope, or <namespace>.Value with output.shape=document) or TopicRecordNameStrategy (<topic>-<full name>); Confluent's class names are accepted. " +
				"With TopicNameStrategy the collections sharing a topic share one evolving schema; with the others each collection has its own, its records named after its own topic <topic.prefix>.<database>.<collection>.",
			set: setSubjectStrategy(func(c *Config) *SubjectStrategy { return &c.ValueSubjectStrategy })},
	}
}

// ConfigDef returns every key as Kafka Connect's ConfigDef describes it, in the order of Keys,
// numbered within its group.
func ConfigDef() []connector.ConfigKey {
	keys := Keys()
	out := make([]connector.ConfigKey, len(keys))
	order := map[string]int{}
	for i, k := range keys {
		order[k.Group]++
		out[i] = connector.ConfigKey{
			Name: k.Name, Type: string(k.Type), Default: k.Default, Required: k.Required,
			Importance: string(k.Importance), Documentation: k.Doc, Group: k.Group, OrderInGroup: order[k.Group],
			Width: k.width(), DisplayName: k.Display, Dependents: k.Dependents, ValidValues: k.Allowed,
		}
	}
	return out
}

// width is how wide a form field the key wants: lists and URIs are long, numbers and
// switches short.
func (k Key) width() string {
	switch {
	case k.Type == TypeList || k.uris || k.Name == "pipeline":
		return "LONG"
	case k.Type == TypeInt || k.Type == TypeLong || k.Type == TypeBoolean:
		return "SHORT"
	}
	return "MEDIUM"
}

// notImplemented refuses a value whose feature is not built yet, so that no accepted key does
// nothing.
func notImplemented(refused bool, feature, fix string) string {
	if !refused {
		return ""
	}
	return fmt.Sprintf("not implemented yet: %s is not built in this version; %s", feature, fix)
}

// clientOverride reports whether name is one of Kafka Connect's per-connector client
// overrides (producer.override.*, consumer.override.*, admin.override.*), and its prefix.
func clientOverride(name string) (prefix string, ok bool) {
	for _, p := range []string{"producer.override.", "consumer.override.", "admin.override."} {
		if strings.HasPrefix(name, p) {
			return p, true
		}
	}
	return "", false
}

// Redact returns a stored value v as it may be shown: a URI with its
// password and secret options replaced by [hidden], any other secret as
// [hidden]. Config provider references are shown as written, never their
// values: a secret made of references only is shown whole.
func (k Key) Redact(v string) string {
	switch {
	case k.uris:
		return redactStoredURIs(v, k.Type == TypeList)
	case k.Secret:
		if masked, refs := maskReferences(v); refs.only(masked) {
			return v
		}
		return hidden
	default:
		return v
	}
}

// retryKey stores nothing: the runner reads the retry keys from the stored config. The check
// of the key's range has accepted v already, as ParseRetry would.
func retryKey(*Config, string) string { return "" }

// atoi converts a value the INT check already accepted.
func atoi(v string) int {
	n, _ := strconv.Atoi(v)
	return n
}

func millis(v string) time.Duration { return time.Duration(atoi(v)) * time.Millisecond }

func notZero(v, brokerDefault string) string {
	if v == "0" {
		return fmt.Sprintf(`"0" is not allowed: use -1 for %s, or a whole number of at least 1`, brokerDefault)
	}
	return ""
}

// maxTopicLength is Kafka's limit on topic names.
const maxTopicLength = 249

// legalTopicChar reports whether Kafka allows c in a topic name.
func legalTopicChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}

func checkTopicName(v string) string {
	if v == "" {
		return ""
	}
	if v == "." || v == ".." {
		return fmt.Sprintf("%q is not a valid topic name: Kafka forbids \".\" and \"..\"", v)
	}
	if len(v) > maxTopicLength {
		return fmt.Sprintf("is %d characters long: Kafka topic names are at most %d", len(v), maxTopicLength)
	}
	for i := 0; i < len(v); i++ {
		if !legalTopicChar(v[i]) {
			return fmt.Sprintf("%q contains %q: Kafka topic names allow only letters, digits, '.', '_' and '-'", v, v[i:i+1])
		}
	}
	return ""
}

func setTopicPrefix(c *Config, v string) string {
	c.TopicPrefix = v
	if msg := checkTopicName(v); msg != "" {
		return msg
	}
	// Room for ".<db>.<collection>" with at least one character each.
	if len(v) > maxTopicLength-4 {
		return fmt.Sprintf("is %d characters long: keep it under %d so that <prefix>.<db>.<collection> fits Kafka's %d", len(v), maxTopicLength-4, maxTopicLength)
	}
	return ""
}

func setRegistryURLs(c *Config, v string) string {
	// A list that references gave is shown as stored, whole, for each of its
	// URLs: no part of a reference's value is ever shown.
	stored := strings.TrimSpace(c.raw["schema.registry.url"])
	referenced := configprovider.Has(stored)
	var bad []string
	for _, raw := range splitList(v) {
		shown := redactURI(raw)
		if referenced {
			shown = redactStoredURIs(stored, true)
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			if !slices.Contains(bad, shown) {
				bad = append(bad, shown)
			}
			continue
		}
		c.SchemaRegistryURLs = append(c.SchemaRegistryURLs, newSecret(raw, shown))
	}
	if len(bad) > 0 {
		return fmt.Sprintf("%s is not an http(s) URL: use e.g. http://registry:8081", strings.Join(bad, ", "))
	}
	return ""
}

func setDocumentFields(c *Config, v string) string {
	fields := splitList(v)
	if _, err := envelope.ParseAddedFields(fields); err != nil {
		return err.Error()
	}
	c.DocumentFields = fields
	return ""
}
