package mongosink

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/mongorelay/mongorelay/internal/configprovider"
	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/connector"
)

// The sink's connector.class, and the MongoDB Kafka Connector's sink class it replaces.
const (
	Class      = "mongodb-sink"
	ClassAlias = "com.mongodb.kafka.connect.MongoSinkConnector"
)

// Write models (writemodel.strategy), as the MongoDB Kafka Connector's strategies write.
const (
	ReplaceOne = "replace-one" // replaceOne by _id, upsert: the default
	UpdateOne  = "update-one"  // updateOne by _id with $set of the document, upsert
	InsertOne  = "insert-one"  // insertOne: a duplicate _id is a write error
)

// Document id strategies (document.id.strategy).
const (
	IDDefault         = "default"           // the value's _id, else the key's id
	IDProvidedInValue = "provided-in-value" // the value's _id, required
	IDProvidedInKey   = "provided-in-key"   // the key's _id or id, required
	IDFullKey         = "full-key"          // the whole key
	IDKafkaMetadata   = "kafka-metadata"    // <topic>-<partition>-<offset>
	IDObjectID        = "bson-oid"          // a new ObjectId per record
)

// Change-data handlers (change.data.capture.handler).
const (
	HandlerAuto       = "auto"       // recognise the envelopes, anything else is a document
	HandlerNone       = "none"       // every value is a document
	HandlerMongoRelay = "mongorelay" // mongorelay's envelope and document shape
	HandlerDebezium   = "debezium"   // Debezium's MongoDB envelope
	HandlerMongoDB    = "mongodb"    // MongoDB change events (the MongoDB Kafka Connector's source)
)

// Value formats (value.format).
const (
	FormatAuto       = "auto"
	FormatAvro       = "avro"
	FormatJSON       = "json"
	FormatJSONSchema = "json_schema"
	FormatBSON       = "bson"
)

// The MongoDB Kafka Connector's class names for what the short names above say.
var (
	mkcWriteModels = map[string]string{
		"com.mongodb.kafka.connect.sink.writemodel.strategy.DefaultWriteModelStrategy": ReplaceOne,
		"com.mongodb.kafka.connect.sink.writemodel.strategy.ReplaceOneDefaultStrategy": ReplaceOne,
		"com.mongodb.kafka.connect.sink.writemodel.strategy.UpdateOneDefaultStrategy":  UpdateOne,
		"com.mongodb.kafka.connect.sink.writemodel.strategy.InsertOneDefaultStrategy":  InsertOne,
	}
	mkcIDStrategies = map[string]string{
		"com.mongodb.kafka.connect.sink.processor.id.strategy.BsonOidStrategy":         IDObjectID,
		"com.mongodb.kafka.connect.sink.processor.id.strategy.ProvidedInValueStrategy": IDProvidedInValue,
		"com.mongodb.kafka.connect.sink.processor.id.strategy.ProvidedInKeyStrategy":   IDProvidedInKey,
		"com.mongodb.kafka.connect.sink.processor.id.strategy.FullKeyStrategy":         IDFullKey,
		"com.mongodb.kafka.connect.sink.processor.id.strategy.KafkaMetaDataStrategy":   IDKafkaMetadata,
	}
	mkcHandlers = map[string]string{
		"com.mongodb.kafka.connect.sink.cdc.mongodb.ChangeStreamHandler":          HandlerMongoDB,
		"com.mongodb.kafka.connect.sink.cdc.debezium.mongodb.MongoDbHandler":      HandlerDebezium,
		"com.mongodb.kafka.connect.sink.cdc.debezium.mongodb.ChangeStreamHandler": HandlerDebezium,
	}
)

// Config is a sink connector's parsed config.
type Config struct {
	Name string
	// ConnectionString reaches the MongoDB deployment written to, references resolved.
	ConnectionString string
	Topics           []string
	TopicsRegex      *regexp.Regexp
	Database         string
	// Collection is the collection of every topic without an override; "" is the topic's name.
	Collection string
	// Overrides maps a topic to its collection (topic.override.<topic>.collection).
	Overrides    map[string]string
	IDStrategy   string
	WriteModel   string
	Handler      string
	ValueFormat  string
	DeleteOnNull bool
	MaxBatchSize int
	Ordered      bool
	// Tolerance is errors.tolerance: with all, a record that cannot be read or written goes to
	// DLQTopic (if set) and the task goes on; with none it fails the task.
	Tolerance         string
	DLQTopic          string
	DLQHeaders        bool
	DLQReplication    int
	SchemaRegistryURL string
	// Ignored are the MongoDB Kafka Connector's keys given that do nothing here.
	Ignored []string
}

// Tolerate reports errors.tolerance=all.
func (c *Config) Tolerate() bool { return c.Tolerance == "all" }

// CollectionOf is the collection records of topic are written to.
func (c *Config) CollectionOf(topic string) string {
	if coll, ok := c.Overrides[topic]; ok {
		return coll
	}
	if c.Collection != "" {
		return c.Collection
	}
	return topic
}

// Reads reports whether the connector reads topic.
func (c *Config) Reads(topic string) bool {
	if c.TopicsRegex != nil {
		return c.TopicsRegex.MatchString(topic)
	}
	return slices.Contains(c.Topics, topic)
}

// key is one config key: its ConfigDef entry and how its value is stored in a Config.
type key struct {
	def connector.ConfigKey
	// aliases are other names of the key (the MongoDB Kafka Connector's where ours differ).
	aliases []string
	secret  bool
	set     func(c *Config, v string) string // returns a problem message naming the fix, or ""
}

func oneOf(v string, allowed []string, classes map[string]string) (string, string) {
	if to, ok := classes[v]; ok {
		return to, ""
	}
	lv := strings.ToLower(strings.TrimSpace(v))
	if slices.Contains(allowed, lv) {
		return lv, ""
	}
	return "", fmt.Sprintf("%q is not one of %s", v, strings.Join(allowed, ", "))
}

func boolValue(v string, dst *bool) string {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return fmt.Sprintf("%q is not true or false", v)
	}
	*dst = b
	return ""
}

func intValue(v string, minV, maxV int, dst *int) string {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < minV || n > maxV {
		return fmt.Sprintf("%q is not a whole number from %d to %d", v, minV, maxV)
	}
	*dst = n
	return ""
}

func keys() []key {
	str := func(name, def, doc string, set func(*Config, string) string) key {
		return key{def: connector.ConfigKey{Name: name, Type: "STRING", Default: def, Importance: "MEDIUM", Documentation: doc}, set: set}
	}
	choice := func(name, def, doc string, allowed []string, classes map[string]string, dst func(*Config) *string) key {
		k := str(name, def, doc, func(c *Config, v string) string {
			got, problem := oneOf(v, allowed, classes)
			*dst(c) = got
			return problem
		})
		k.def.ValidValues = allowed
		return k
	}
	return []key{
		{def: connector.ConfigKey{Name: connector.ClassKey, Type: "STRING", Required: true, Importance: "HIGH",
			Documentation: "The connector's kind: mongodb-sink (or the MongoDB Kafka Connector's " + ClassAlias + ")."},
			set: func(*Config, string) string { return "" }},
		{def: connector.ConfigKey{Name: "mongodb.connection.string", Type: "PASSWORD", Required: true, Importance: "HIGH",
			Documentation: "The MongoDB deployment written to, as a connection string (mongodb:// or mongodb+srv://). " +
				"Writes use majority write concern whatever it says, since offsets are committed after them. " +
				"connection.uri, the MongoDB Kafka Connector's name, is accepted for it."},
			aliases: []string{"connection.uri"}, secret: true,
			set: func(c *Config, v string) string {
				if !strings.HasPrefix(v, "mongodb://") && !strings.HasPrefix(v, "mongodb+srv://") {
					return "is not a MongoDB connection string: it must start with mongodb:// or mongodb+srv://"
				}
				c.ConnectionString = v
				return ""
			}},
		{def: connector.ConfigKey{Name: "topics", Type: "LIST", Importance: "HIGH",
			Documentation: "The topics read, a comma-separated list. Give this or topics.regex, not both."},
			set: func(c *Config, v string) string {
				for _, t := range strings.Split(v, ",") {
					if t = strings.TrimSpace(t); t != "" {
						c.Topics = append(c.Topics, t)
					}
				}
				return ""
			}},
		str("topics.regex", "", "The topics read: every topic whose whole name matches this regular expression, "+
			"including topics created while the connector runs (picked up within the leader's expand interval). "+
			"Give this or topics, not both.",
			func(c *Config, v string) string {
				if v == "" {
					return ""
				}
				re, err := regexp.Compile("^(?:" + v + ")$")
				if err != nil {
					return fmt.Sprintf("is not a regular expression: %v", err)
				}
				c.TopicsRegex = re
				return ""
			}),
		{def: connector.ConfigKey{Name: "database", Type: "STRING", Required: true, Importance: "HIGH",
			Documentation: "The database written to."},
			set: func(c *Config, v string) string { c.Database = strings.TrimSpace(v); return "" }},
		str("collection", "", "The collection every topic is written to; empty (the default) writes each topic to "+
			"the collection of its name. topic.override.<topic>.collection names the collection of one topic.",
			func(c *Config, v string) string { c.Collection = strings.TrimSpace(v); return "" }),
		choice("document.id.strategy", IDDefault, "How a document's _id is found. default: the value's _id if it has "+
			"one, else the record key's id field, or the key itself. provided-in-value and provided-in-key require "+
			"it there; full-key uses the whole key; kafka-metadata uses <topic>-<partition>-<offset>. bson-oid "+
			"generates an ObjectId per record, so a replay after a failure writes the record twice: use it only "+
			"with insert-one where duplicates are acceptable. The MongoDB Kafka Connector's strategy class names "+
			"are accepted.", []string{IDDefault, IDProvidedInValue, IDProvidedInKey, IDFullKey, IDKafkaMetadata, IDObjectID},
			mkcIDStrategies, func(c *Config) *string { return &c.IDStrategy }),
		choice("writemodel.strategy", ReplaceOne, "How a document record is written: replace-one replaces the "+
			"document with its _id, inserting it if absent (the default; a replay converges); update-one sets the "+
			"record's fields on it with $set, inserting it if absent, and leaves its other fields; insert-one inserts "+
			"it, a duplicate _id being a write error. The MongoDB Kafka Connector's strategy class names are accepted. "+
			"Change-data records are written as the operations they describe, whatever this says.",
			[]string{ReplaceOne, UpdateOne, InsertOne}, mkcWriteModels, func(c *Config) *string { return &c.WriteModel }),
		choice("change.data.capture.handler", HandlerAuto, "How records are applied. auto (the default): a record in "+
			"mongorelay's envelope or document shape, in Debezium's MongoDB envelope or a MongoDB change event is "+
			"applied as the operation it describes, anything else as a document; mongorelay, debezium and mongodb "+
			"force one of them; none writes every value as a document. The MongoDB Kafka Connector's handler class "+
			"names are accepted.", []string{HandlerAuto, HandlerNone, HandlerMongoRelay, HandlerDebezium, HandlerMongoDB},
			mkcHandlers, func(c *Config) *string { return &c.Handler }),
		choice("value.format", FormatAuto, "How record values are read. auto (the default): the Confluent wire "+
			"format's magic byte means Avro through the schema registry, a JSON object means JSON (Kafka Connect's "+
			"{\"schema\",\"payload\"} envelope unwrapped, Extended JSON understood), a JSON string holding Extended "+
			"JSON its document, and a BSON document itself. avro, json, json_schema and bson accept only that format.",
			[]string{FormatAuto, FormatAvro, FormatJSON, FormatJSONSchema, FormatBSON}, nil,
			func(c *Config) *string { return &c.ValueFormat }),
		{def: connector.ConfigKey{Name: "delete.on.null.values", Type: "BOOLEAN", Default: "false", Importance: "MEDIUM",
			Documentation: "Whether a record with a null value (a tombstone) deletes the document its key names. " +
				"Set it with output.shape=document, whose deletes are tombstones; mongorelay's and Debezium's " +
				"envelopes carry their deletes themselves."},
			set: func(c *Config, v string) string { return boolValue(v, &c.DeleteOnNull) }},
		{def: connector.ConfigKey{Name: "max.batch.size", Type: "INT", Default: "0", Importance: "MEDIUM",
			Documentation: "The most records of one partition written by one bulk write; 0 (the default) writes " +
				"what one fetch returned, up to " + strconv.Itoa(defaultBatch) + "."},
			set: func(c *Config, v string) string { return intValue(v, 0, 100_000, &c.MaxBatchSize) }},
		{def: connector.ConfigKey{Name: "bulk.write.ordered", Type: "BOOLEAN", Default: "true", Importance: "LOW",
			Documentation: "Whether a bulk write stops at its first failing write (true, the default) or goes on " +
				"with the others. Either way the records after a failure are written again or sent to the dead " +
				"letter topic before the partition's offset moves past them."},
			set: func(c *Config, v string) string { return boolValue(v, &c.Ordered) }},
		choice("errors.tolerance", "none", "none (the default): a record that cannot be read or written fails the "+
			"task, its error naming the record's topic, partition and offset. all: it is skipped, and written to "+
			"errors.deadletterqueue.topic.name if set.", []string{"none", "all"}, nil,
			func(c *Config) *string { return &c.Tolerance }),
		str("errors.deadletterqueue.topic.name", "", "The dead letter topic: with errors.tolerance=all, every record "+
			"that cannot be read or written (a document over 16 MB, no derivable _id, a write the server refuses) is "+
			"written there as it came, with Kafka Connect's __connect.errors.* headers.",
			func(c *Config, v string) string { c.DLQTopic = strings.TrimSpace(v); return "" }),
		{def: connector.ConfigKey{Name: "errors.deadletterqueue.context.headers.enable", Type: "BOOLEAN", Default: "true",
			Importance: "LOW", Documentation: "Whether dead letter records carry Kafka Connect's __connect.errors.* " +
				"headers (topic, partition, offset, connector, task, exception class and message)."},
			set: func(c *Config, v string) string { return boolValue(v, &c.DLQHeaders) }},
		{def: connector.ConfigKey{Name: "errors.deadletterqueue.topic.replication.factor", Type: "INT", Default: "-1",
			Importance: "LOW", Documentation: "The replication factor of the dead letter topic when it is created; " +
				"-1 (the default) is the brokers' default."},
			set: func(c *Config, v string) string { return intValue(v, -1, 32767, &c.DLQReplication) }},
		{def: connector.ConfigKey{Name: "schema.registry.url", Type: "STRING", Importance: "MEDIUM",
			Documentation: "The schema registry Avro values are read through; empty (the default) is the cluster's " +
				"built-in one. Kafka Connect's value.converter.schema.registry.url is accepted for it."},
			aliases: []string{"value.converter.schema.registry.url"},
			set:     func(c *Config, v string) string { c.SchemaRegistryURL = strings.TrimSpace(v); return "" }},
		{def: connector.ConfigKey{Name: "tasks.max", Type: "INT", Default: "0", Importance: "HIGH",
			Documentation: "The most tasks the connector runs: its topic partitions are shared among them. 0 (the " +
				"default) is a task per partition."},
			set: func(c *Config, v string) string { var n int; return intValue(v, 0, 1<<20, &n) }},
		{def: connector.ConfigKey{Name: connector.RetryTimeoutKey, Type: "LONG", Default: strconv.Itoa(connector.DefaultRetryTimeoutMs),
			Importance: "MEDIUM", Documentation: connector.RetryTimeoutDoc}, set: func(*Config, string) string { return "" }},
		{def: connector.ConfigKey{Name: connector.RetryDelayMaxKey, Type: "LONG", Default: strconv.Itoa(connector.DefaultRetryDelayMaxMs),
			Importance: "LOW", Documentation: connector.RetryDelayMaxDoc}, set: func(*Config, string) string { return "" }},
	}
}

// groups places each key in a section of the reference page and a UI's form.
var groups = map[string]string{
	connector.ClassKey: "Connection", "mongodb.connection.string": "Connection", "schema.registry.url": "Connection",
	"tasks.max": "Connection", connector.RetryTimeoutKey: "Connection", connector.RetryDelayMaxKey: "Connection",
	"topics": "Topics", "topics.regex": "Topics", "database": "Topics", "collection": "Topics",
	"errors.tolerance": "Errors", "errors.deadletterqueue.topic.name": "Errors",
	"errors.deadletterqueue.context.headers.enable": "Errors", "errors.deadletterqueue.topic.replication.factor": "Errors",
}

// defaultBatch bounds a bulk write when max.batch.size is 0.
const defaultBatch = 1000

// overridePattern matches topic.override.<topic>.collection; other topic.override keys of the
// MongoDB Kafka Connector are refused as not implemented.
var overridePattern = regexp.MustCompile(`^topic\.override\.(.+)\.collection$`)

// connectKeys are Kafka Connect's own keys that say how Connect would read records: the sink
// reads them as value.format says (auto recognises every converter's output), so they are
// accepted and do nothing.
var connectKeys = []string{"name", "key.converter", "value.converter", "header.converter",
	"key.converter.schemas.enable", "value.converter.schemas.enable", "key.converter.schema.registry.url",
	"errors.log.enable", "errors.log.include.messages"}

// The MongoDB Kafka Connector's sink keys mongorelay does not implement. Those that tune how it
// retries or paces writes are accepted and do nothing here (Validate logs them); those that
// change what is written are refused, so that a config never writes other documents than the
// user expects.
var (
	mkcIgnored = []string{"rate.limiting.every.n", "rate.limiting.timeout", "max.num.retries", "retries.defer.timeout",
		"mongo.errors.tolerance", "mongo.errors.log.enable", "server.api.version", "server.api.deprecation.errors",
		"server.api.strict", "document.id.strategy.uuid.format"}
	mkcRefused = []string{"post.processor.chain", "key.projection.list", "key.projection.type", "value.projection.list",
		"value.projection.type", "field.renamer.mapping", "field.renamer.regexp", "delete.writemodel.strategy",
		"document.id.strategy.overwrite.existing", "document.id.strategy.partial.key.projection.list",
		"document.id.strategy.partial.key.projection.type", "document.id.strategy.partial.value.projection.list",
		"document.id.strategy.partial.value.projection.type", "namespace.mapper", "namespace.mapper.key.database.field",
		"namespace.mapper.key.collection.field", "namespace.mapper.value.database.field",
		"namespace.mapper.value.collection.field", "namespace.mapper.error.if.invalid", "timeseries.timefield",
		"timeseries.metafield", "timeseries.timefield.auto.convert", "timeseries.timefield.auto.convert.date.format",
		"timeseries.timefield.auto.convert.locale", "timeseries.expire.after.seconds", "timeseries.granularity"}
)

// Parse reads a sink connector's config, config provider references resolved, and reports
// every problem at once.
func Parse(name string, raw map[string]string) (*Config, error) {
	c := &Config{Name: name, Overrides: map[string]string{}}
	byName := map[string]key{}
	var names []string
	for _, k := range keys() {
		byName[k.def.Name] = k
		names = append(names, k.def.Name)
		for _, a := range k.aliases {
			byName[a] = k
		}
	}
	var problems []connector.Problem
	add := func(k, v, msg string) { problems = append(problems, connector.Problem{Key: k, Value: v, Message: msg}) }
	given := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		v := raw[k]
		def, ok := byName[k]
		switch {
		case ok:
			resolved, err := configprovider.Resolve(v)
			if err != nil {
				add(k, "", err.Error())
				continue
			}
			if prev, dup := given[def.def.Name]; dup && prev != resolved {
				add(k, "", fmt.Sprintf("is given twice, as %s and an alias: give one", def.def.Name))
				continue
			}
			given[def.def.Name] = resolved
		case overridePattern.MatchString(k):
			if strings.TrimSpace(v) == "" {
				add(k, v, "is empty: name the topic's collection, or remove the key to use collection or the topic's name")
				continue
			}
			c.Overrides[overridePattern.FindStringSubmatch(k)[1]] = strings.TrimSpace(v)
		case slices.Contains(mkcIgnored, k):
			c.Ignored = append(c.Ignored, k)
		case slices.Contains(mkcRefused, k):
			add(k, v, "is the MongoDB Kafka Connector's and not implemented yet in mongorelay's sink: remove it "+
				"(mongorelay would write other documents than the connector does with it)")
		case k == "transforms" && strings.TrimSpace(v) != "":
			add(k, v, "is not implemented yet: single message transforms do not run in mongorelay; remove it")
		case slices.Contains(connectKeys, k) || k == "transforms":
		default:
			msg := "is not a key of the mongodb-sink connector"
			if s := connector.Suggest(k, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			add(k, v, msg)
		}
	}
	for _, k := range keys() {
		v, ok := given[k.def.Name]
		if !ok || strings.TrimSpace(v) == "" {
			if k.def.Required {
				add(k.def.Name, "", "is required")
				continue
			}
			v = k.def.Default
		}
		if msg := k.set(c, v); msg != "" {
			shown := v
			if k.secret {
				shown = connector.Hidden
			}
			add(k.def.Name, shown, msg)
		}
	}
	switch {
	case len(c.Topics) > 0 && c.TopicsRegex != nil:
		add("topics", given["topics"], "and topics.regex are both given: give one")
	case len(c.Topics) == 0 && c.TopicsRegex == nil:
		add("topics", "", "is required (or topics.regex): name the topics to read")
	}
	if c.DLQTopic != "" && c.Reads(c.DLQTopic) {
		add("errors.deadletterqueue.topic.name", c.DLQTopic, "is a topic the connector reads: name another")
	}
	if c.DLQTopic != "" && !c.Tolerate() {
		add("errors.deadletterqueue.topic.name", c.DLQTopic, "needs errors.tolerance=all: with none a bad record fails the task")
	}
	if c.IDStrategy == IDObjectID && c.WriteModel != InsertOne {
		add("document.id.strategy", IDObjectID, "generates a new _id per record, so "+c.WriteModel+" could never "+
			"replace or update a document and a replay would write it again: use writemodel.strategy=insert-one, or another strategy")
	}
	if _, retry := connector.ParseRetry(raw); len(retry) > 0 {
		problems = append(problems, retry...)
	}
	if len(problems) > 0 {
		return nil, &connector.ValidationError{Problems: problems}
	}
	return c, nil
}

// configDef lists the kind's keys for GET /connector-plugins and the reference pages.
func configDef() []connector.ConfigKey {
	var out []connector.ConfigKey
	for _, k := range keys() {
		k.def.Group = groups[k.def.Name]
		if k.def.Group == "" {
			k.def.Group = "Writes"
		}
		out = append(out, k.def)
	}
	return out
}

// redact shows a stored config: the connection string and registry URL with their passwords
// hidden (as the source shows its own), every other value as is.
func redact(raw map[string]string) map[string]string {
	out := maps.Clone(raw)
	for _, k := range []string{"mongodb.connection.string", "connection.uri"} {
		if v, ok := raw[k]; ok {
			out[k] = config.RedactRaw(map[string]string{"mongodb.connection.string": v})["mongodb.connection.string"]
		}
	}
	if v, ok := raw["schema.registry.url"]; ok {
		out["schema.registry.url"] = config.RedactRaw(map[string]string{"schema.registry.url": v})["schema.registry.url"]
	}
	return out
}
