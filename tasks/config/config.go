// Package config parses and validates a connector's configuration into a
// typed Config, reporting every problem at once.
package config

import (
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/mongorelay/mongorelay/internal/configprovider"
	"github.com/mongorelay/mongorelay/tasks/connector"
)

// ShardFilter is shard.filter.
type ShardFilter string

// shard.filter values.
const (
	ShardFilterAuto   ShardFilter = "auto"
	ShardFilterServer ShardFilter = "server"
	ShardFilterClient ShardFilter = "client"
)

// CaptureMode is capture.mode.
type CaptureMode string

// capture.mode values.
const (
	CaptureChangeStreams          CaptureMode = "change_streams"
	CaptureUpdateFull             CaptureMode = "change_streams_update_full"
	CaptureWithPreImage           CaptureMode = "change_streams_with_pre_image"
	CaptureUpdateFullWithPreImage CaptureMode = "change_streams_update_full_with_pre_image"
)

// CaptureScope is capture.scope.
type CaptureScope string

// capture.scope values.
const (
	ScopeCollection CaptureScope = "collection"
	ScopeDatabase   CaptureScope = "database"
	ScopeDeployment CaptureScope = "deployment"
)

// SnapshotMode is snapshot.mode.
type SnapshotMode string

// snapshot.mode values.
const (
	SnapshotInitial     SnapshotMode = "initial"
	SnapshotNever       SnapshotMode = "never"
	SnapshotWhenNeeded  SnapshotMode = "when_needed"
	SnapshotInitialOnly SnapshotMode = "initial_only"
)

// ValueFormat is value.format.
type ValueFormat string

// value.format values.
const (
	ValueAvro       ValueFormat = "avro"
	ValueJSON       ValueFormat = "json"
	ValueJSONSchema ValueFormat = "json_schema"
)

// KeyFormat is key.format.
type KeyFormat string

// key.format values.
const (
	KeyAvro   KeyFormat = "avro"
	KeyJSON   KeyFormat = "json"
	KeyString KeyFormat = "string"
)

// OutputShape is output.shape.
type OutputShape string

// output.shape values.
const (
	ShapeEnvelope OutputShape = "envelope"
	ShapeDocument OutputShape = "document"
)

// DocumentMode is document.mode.
type DocumentMode string

// document.mode values.
const (
	DocumentTyped DocumentMode = "typed"
	DocumentJSON  DocumentMode = "json"
)

// ErrorsTolerance is errors.tolerance.
type ErrorsTolerance string

// errors.tolerance values.
const (
	ToleranceNone ErrorsTolerance = "none"
	ToleranceAll  ErrorsTolerance = "all"
)

// OversizeHandling is oversize.handling.
type OversizeHandling string

// oversize.handling values.
const (
	OversizeFail OversizeHandling = "fail"
	OversizeSkip OversizeHandling = "skip"
)

// OffsetLostPolicy is offset.lost.policy.
type OffsetLostPolicy string

// offset.lost.policy values.
const (
	OffsetLostFail       OffsetLostPolicy = "fail"
	OffsetLostResnapshot OffsetLostPolicy = "resnapshot"
)

// Config is a validated connector config. Keys() documents each field's
// key, default and range.
type Config struct {
	Name             string
	ConnectorClass   string
	ConnectionString Secret

	TopicPrefix       string
	Shards            int
	ShardFilter       ShardFilter
	TasksMax          int // 0: no cap
	CaptureMode       CaptureMode
	CaptureScope      CaptureScope
	SnapshotMode      SnapshotMode
	Pipeline          []bson.D
	HeartbeatInterval time.Duration
	DocumentMode      DocumentMode
	ValueFormat       ValueFormat
	KeyFormat         KeyFormat
	OutputShape       OutputShape
	// DocumentFields are the change's fields added to each document in output.shape=document,
	// as output.document.add.fields lists them ("op", "ts_ms", "source.db", ...).
	DocumentFields     []string
	SchemaRegistryURLs []Secret // empty: the built-in registry
	TombstonesOnDelete bool
	ErrorsTolerance    ErrorsTolerance
	DeadLetterTopic    string // "": none
	OversizeHandling   OversizeHandling
	OffsetLostPolicy   OffsetLostPolicy
	// ExactlyOnce puts each task's offset record in the transaction of its records.
	ExactlyOnce  bool
	MaxBatchSize int
	// SnapshotMaxRate is the most documents a task copies per second; 0 means no limit.
	SnapshotMaxRate int
	PollMaxWait     time.Duration
	// SignalCollection is where execute-snapshot signals are inserted ("<db>.<coll>"); "":
	// none.
	SignalCollection string
	// TopicPartitions and TopicReplicationFactor are -1 for the broker's
	// default.
	TopicPartitions        int32
	TopicReplicationFactor int16
	// HeartbeatTopic receives a heartbeat record every heartbeat.interval.ms; "": none.
	HeartbeatTopic string
	// KeySubjectStrategy and ValueSubjectStrategy name the subjects of registered schemas.
	KeySubjectStrategy, ValueSubjectStrategy SubjectStrategy

	namespaceMap *namespaceMap // nil: every collection on its own topic

	databaseInclude, databaseExclude     []*regexp.Regexp
	collectionInclude, collectionExclude []*regexp.Regexp

	raw     map[string]string // the native entries: the user's, translated (translate)
	given   map[string]string // the user's entries, normalised to strings
	changes []Change          // how given became raw
}

// Parse validates the config of the connector named name (a Kafka Connect
// config map) and returns it typed. Debezium's, the MongoDB Kafka Connector's and
// Kafka Connect's own keys are translated first (Translation says how). On failure the
// error is a *ValidationError listing every problem.
func Parse(name string, given map[string]string) (*Config, error) {
	raw, changes, problems := translate(given)
	c := &Config{Name: name, raw: raw, given: maps.Clone(given), changes: changes}
	if c.given == nil {
		c.given = map[string]string{}
	}
	if msg := checkName(name); msg != "" {
		problems = append(problems, Problem{Key: "name", Value: name, Message: msg})
	}

	keys := Keys()
	known := make(map[string]bool, len(keys))
	for _, k := range keys {
		known[k.Name] = true
		stored := strings.TrimSpace(raw[k.Name])
		v, values, msg := resolve(k, stored)
		if msg != "" {
			problems = append(problems, Problem{Key: k.Name, Value: k.Redact(stored), Message: msg})
			continue
		}
		if _, given := raw[k.Name]; given && k.include != "" && len(splitList(v)) == 0 {
			problems = append(problems, Problem{Key: k.Name, Value: stored, Message: fmt.Sprintf(
				"is empty, which would capture nothing: remove the key (PATCH it to null) to capture every %s, or list at least one regular expression", k.include)})
			continue
		}
		if v == "" {
			if k.Required && (k.optionalFor == "" || c.ConnectorClass != k.optionalFor) {
				problems = append(problems, Problem{Key: k.Name, Message: "is required: " + requiredHint(k.Name)})
				continue
			}
			if v = k.Default; v == "" {
				continue
			}
			stored = v
		}
		norm, msg := check(k, v)
		if msg == "" {
			msg = k.set(c, norm)
		}
		if msg != "" {
			problems = append(problems, Problem{Key: k.Name, Value: k.Redact(stored), Message: resolvedMessage(k, msg, stored, values)})
		}
	}

	problems = append(problems, c.conflicts()...)
	problems = append(problems, c.routingConflicts()...)

	var unknown []string
	for name := range raw {
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		msg := "unknown key"
		if prefix, ok := clientOverride(name); ok {
			msg = notImplemented(true, "per-connector Kafka client settings ("+prefix+"*)",
				"remove the key; every task's clients use the worker's kafka.* settings (TLS, SASL included)")
		} else if s := suggestKey(name); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		value := raw[name]
		if looksSecret(name) {
			value = hidden
		}
		problems = append(problems, Problem{Key: name, Value: value, Message: msg})
	}

	if len(problems) > 0 {
		return nil, &ValidationError{Problems: problems}
	}
	return c, nil
}

// ParseJSON parses a connector as Kafka Connect's REST API sends it:
// {"name": "...", "config": {...}}.
func ParseJSON(data []byte) (*Config, error) {
	name, raw, err := connector.ConnectorFromJSON(data)
	if err != nil {
		return nil, err
	}
	return Parse(name, raw)
}

// ParseConfigJSON parses the config object of the connector named name (the
// body of PUT /connectors/{name}/config), read as connector.ConfigFromJSON
// reads it.
func ParseConfigJSON(name string, config []byte) (*Config, error) {
	raw, err := connector.ConfigFromJSON(config)
	if err != nil {
		return nil, err
	}
	return Parse(name, raw)
}

// resolve returns the value of a key whose stored form is stored, with its
// config provider references (internal/configprovider) replaced by their
// values on this node, and those values. It refuses a reference where the
// value must be literal, and a secret that is the [hidden] of a response.
func resolve(k Key, stored string) (v string, values []string, msg string) {
	if k.Secret && strings.Contains(stored, hidden) {
		return "", nil, "contains [hidden], which responses show in place of a secret: give the secret itself or a reference " +
			"such as ${file:/path/to/file.properties:key}; to keep the stored value, send back the value exactly as GET /connectors/{name}/config shows it"
	}
	if !configprovider.Has(stored) {
		return stored, nil, ""
	}
	if k.Name == "name" || k.Name == connector.ClassKey {
		return "", nil, "cannot be a config provider reference: give the value itself"
	}
	v, err := configprovider.Replace(stored, func(r configprovider.Reference) (string, error) {
		value, err := configprovider.Lookup(r)
		values = append(values, value)
		return value, err
	})
	if err != nil {
		return "", nil, err.Error()
	}
	if v = strings.TrimSpace(v); v == "" && k.Required {
		return "", nil, "is empty on this node (" + stored + "): give the reference a value"
	}
	return v, values, ""
}

// resolvedMessage is the problem message msg about a value that references
// gave (values, from the stored form stored): a secret's names the
// references instead of their values, anything else says where its value
// came from.
func resolvedMessage(k Key, msg, stored string, values []string) string {
	if len(values) == 0 {
		return msg
	}
	if !k.Secret {
		return msg + " (the value of " + stored + " on this node)"
	}
	refs := configprovider.Find(stored)
	for i, v := range values {
		if strings.TrimSpace(v) != "" {
			msg = strings.ReplaceAll(msg, v, refs[i].Text)
		}
	}
	return msg
}

// check applies a key's type, range and allowed values, and returns the value
// normalised (lower-case for allowed values and booleans).
func check(k Key, v string) (string, string) {
	switch {
	case len(k.Allowed) > 0:
		for _, a := range k.Allowed {
			if strings.EqualFold(v, a) {
				return a, ""
			}
		}
		msg := fmt.Sprintf("%q is not one of %s", v, strings.Join(k.Allowed, ", "))
		if s := connector.Suggest(v, k.Allowed); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		return "", msg
	case k.Type == TypeBoolean:
		switch strings.ToLower(v) {
		case "true":
			return "true", ""
		case "false":
			return "false", ""
		}
		return "", fmt.Sprintf("%q is not a boolean: use true or false", v)
	case k.Type == TypeInt || k.Type == TypeLong:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", fmt.Sprintf("%q is not a whole number: use one from %d to %d", v, k.Min, k.Max)
		}
		if n < k.Min || n > k.Max {
			return "", fmt.Sprintf("%q is out of range: use a whole number from %d to %d", v, k.Min, k.Max)
		}
		return strconv.FormatInt(n, 10), ""
	}
	return v, ""
}

func checkName(name string) string {
	switch {
	case strings.TrimSpace(name) == "":
		return "is required: every connector needs a name"
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Sprintf("%q contains control characters: use a plain name, e.g. orders-cdc", name)
	case strings.Contains(name, "/"):
		return fmt.Sprintf("%q contains \"/\": the REST API names a connector in its paths (/connectors/{name}/status), where a \"/\" splits it; use e.g. %q", name, strings.ReplaceAll(name, "/", "-"))
	case utf8.RuneCountInString(name) > maxNameLength:
		return fmt.Sprintf("is %d characters long: a connector name has at most %d", utf8.RuneCountInString(name), maxNameLength)
	}
	return ""
}

// maxNameLength bounds a connector's name, which every offsets key, transactional id and
// metric label of its tasks repeats: as long as a Kafka topic name, more than any tool's
// name for a connector.
const maxNameLength = 249

func requiredHint(key string) string {
	switch key {
	case "connector.class":
		return `set it to "mongodb"`
	case "mongodb.connection.string":
		return "set it to the deployment's URI, e.g. mongodb://user:password@host1:27017,host2:27017/?replicaSet=rs0"
	case "topic.prefix":
		return `set the prefix of every topic name, e.g. "mongo" for mongo.<database>.<collection>`
	}
	return "set a value"
}

// looksSecret guesses whether an unknown key holds a secret, so that its
// value is not echoed in the error about it.
func looksSecret(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"password", "secret", "token", "credential", "jaas", "key", "uri", "connection"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// conflicts reports problems that involve more than one key.
func (c *Config) conflicts() []Problem {
	var out []Problem
	if c.databaseInclude != nil && c.databaseExclude != nil {
		out = append(out, Problem{Key: "database.exclude.list", Value: c.raw["database.exclude.list"],
			Message: "cannot be set together with database.include.list: keep only one of them"})
	}
	if c.collectionInclude != nil && c.collectionExclude != nil {
		out = append(out, Problem{Key: "collection.exclude.list", Value: c.raw["collection.exclude.list"],
			Message: "cannot be set together with collection.include.list: keep only one of them"})
	}
	if c.OutputShape == ShapeDocument && (c.CaptureMode == CaptureChangeStreams || c.CaptureMode == CaptureWithPreImage) {
		out = append(out, Problem{Key: "output.shape", Value: string(c.OutputShape),
			Message: fmt.Sprintf("document needs each update's document, which capture.mode=%s does not look up: set capture.mode=change_streams_update_full (the default)", c.CaptureMode)})
	}
	if c.CaptureScope != ScopeCollection && (c.OffsetLostPolicy == OffsetLostResnapshot || c.SnapshotMode == SnapshotWhenNeeded) {
		key, value := "offset.lost.policy", string(c.OffsetLostPolicy)
		if c.SnapshotMode == SnapshotWhenNeeded {
			key, value = "snapshot.mode", string(c.SnapshotMode)
		}
		out = append(out, Problem{Key: key, Value: value,
			Message: notImplemented(true, "copying a database or deployment again after its history was lost (capture.scope="+string(c.CaptureScope)+")",
				"use capture.scope=collection, or offset.lost.policy=fail and another snapshot.mode")})
	}
	if c.SignalCollection != "" && c.CaptureScope != ScopeCollection {
		out = append(out, Problem{Key: "signal.data.collection", Value: c.SignalCollection,
			Message: notImplemented(true, "ad-hoc snapshots of a database or deployment stream (capture.scope="+string(c.CaptureScope)+")",
				"use capture.scope=collection, or leave signal.data.collection out")})
	} else if db, coll, ok := strings.Cut(c.SignalCollection, "."); ok && db != "" && coll != "" && !c.Includes(db, coll) {
		out = append(out, Problem{Key: "signal.data.collection", Value: c.SignalCollection,
			Message: "is a collection the connector does not capture, so no task reads its signals: add it to the include list (or take it off the exclude list)"})
	}
	if len(c.DocumentFields) > 0 && c.OutputShape != ShapeDocument {
		out = append(out, Problem{Key: "output.document.add.fields", Value: c.raw["output.document.add.fields"],
			Message: "applies only to output.shape=document: remove it or set output.shape=document"})
	}
	return out
}

func setConnectionString(c *Config, v string) string {
	shown := redactURI(v)
	if stored := strings.TrimSpace(c.raw["mongodb.connection.string"]); configprovider.Has(stored) {
		// Shown as stored, so that no part of a reference's value ever is.
		shown = redactStoredURIs(stored, false)
	}
	c.ConnectionString = newSecret(v, shown)
	if err := checkConnectionString(v); err != nil {
		return fmt.Sprintf("%q is not a valid MongoDB connection string (%s): use mongodb://[user:password@]host[:port][,host...]/[?options] or mongodb+srv://[user:password@]host/[?options], percent-encoding reserved characters in the user and password",
			shown, scrub(err.Error(), v))
	}
	return ""
}

// checkConnectionString parses and validates a URI with the driver, without
// the DNS lookups the driver makes for mongodb+srv://: an SRV URI is checked
// as the single host it must name, and resolved only when connecting.
func checkConnectionString(v string) error {
	rest, srv := strings.CutPrefix(v, connstring.SchemeMongoDBSRV+"://")
	if !srv {
		_, err := connstring.ParseAndValidate(v)
		return err
	}
	_, hostPart, _, query := splitURI(rest)
	if at := strings.LastIndex(hostPart, "@"); at >= 0 {
		hostPart = hostPart[at+1:]
	}
	host, _, _ := strings.Cut(hostPart, "/")
	if strings.Contains(host, ",") || strings.Contains(host, ":") {
		return fmt.Errorf("a mongodb+srv URI names exactly one host, without a port: %q", host)
	}
	// The SRV-only options are meaningless to the plain parser.
	if query != nil {
		var opts []string
		for _, opt := range splitOptions(*query) {
			name, _, _ := strings.Cut(opt, "=")
			if !strings.EqualFold(name, "srvMaxHosts") && !strings.EqualFold(name, "srvServiceName") {
				opts = append(opts, opt)
			}
		}
		rest = rest[:len(rest)-len(*query)] + strings.Join(opts, "&")
	}
	_, err := connstring.ParseAndValidate(connstring.SchemeMongoDB + "://" + rest)
	return err
}

// splitList splits a comma-separated list, trimming items and dropping
// empty ones; "\," is a comma inside an item (Debezium's rule).
func splitList(v string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '\\' && i+1 < len(v) && v[i+1] == ',':
			cur.WriteByte(',')
			i++
		case v[i] == ',':
			flush()
		default:
			cur.WriteByte(v[i])
		}
	}
	flush()
	return out
}

// compileList compiles a regex list as Debezium matches it: each expression
// must match the whole name, case-insensitively.
func compileList(v string) ([]*regexp.Regexp, string) {
	var out []*regexp.Regexp
	var bad []string
	for _, expr := range splitList(v) {
		re, err := regexp.Compile(`(?i)^(?:` + expr + `)$`)
		if err != nil {
			// The error of the expression alone quotes the user's text
			// rather than the anchored form.
			if _, alone := regexp.Compile(expr); alone != nil {
				err = alone
			}
			bad = append(bad, fmt.Sprintf("%q: %v", expr, strings.TrimPrefix(err.Error(), "error parsing regexp: ")))
			continue
		}
		out = append(out, re)
	}
	if len(bad) > 0 {
		return nil, "has an invalid regular expression " + strings.Join(bad, "; ") +
			" (Go RE2 syntax: no lookarounds or backreferences)"
	}
	return out, ""
}

func matchAny(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// Includes reports whether the connector captures collection coll of
// database db. admin, config and local and system.* collections never are.
func (c *Config) Includes(db, coll string) bool {
	switch {
	case db == "admin" || db == "config" || db == "local" || strings.HasPrefix(coll, "system."):
		return false
	case c.databaseInclude != nil && !matchAny(c.databaseInclude, db),
		c.databaseExclude != nil && matchAny(c.databaseExclude, db):
		return false
	}
	ns := db + "." + coll
	return (c.collectionInclude == nil || matchAny(c.collectionInclude, ns)) &&
		(c.collectionExclude == nil || !matchAny(c.collectionExclude, ns))
}

// Redacted returns the user's entries, normalised to strings, with every
// secret redacted: what responses and logs may show.
func (c Config) Redacted() map[string]string { return RedactRaw(c.given) }

// Translation returns the native config the connector runs with, redacted, and how the
// user's Debezium, MongoDB Kafka Connector and Kafka Connect keys became it, in the order
// they were read. Changes with Warning set do something in their product and nothing here.
func (c Config) Translation() (native map[string]string, changes []Change) {
	return RedactRaw(c.raw), slices.Clone(c.changes)
}

// RedactRaw returns a stored config as it may be shown: every value as
// Key.Redact shows it, and keys this version does not know (a config
// written by another version) hidden whole; a foreign key the translation
// reads is shown as the native key whose secrecy it shares shows it, or as
// given. It resolves no reference, so
// that any node shows any config the same, as stored.
func RedactRaw(raw map[string]string) map[string]string {
	keys := map[string]Key{}
	for _, k := range Keys() {
		keys[k.Name] = k
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		key, ok := keys[k]
		if !ok {
			native, foreign := foreignKey(k)
			if !foreign {
				out[k] = hidden
				continue
			}
			key = keys[native] // the zero Key, not secret, for a key with no native twin
		}
		out[k] = key.Redact(v)
	}
	return out
}

// Raw returns the user's entries, normalised to strings, secrets included:
// what is stored and handed to tasks, which Parse (and so translate) again. It
// keeps foreign keys as given, so that GET /connectors/{name}/config shows what
// the user sent, as Kafka Connect does. Never log it.
func (c *Config) Raw() map[string]string { return maps.Clone(c.given) }

// Format prints String for every verb, so that no formatting of a Config
// (%+v, %#v) can reach the secrets in its unexported fields.
func (c Config) Format(f fmt.State, verb rune) { io.WriteString(f, c.String()) }

// String lists the redacted entries, sorted by key.
func (c Config) String() string {
	red := c.Redacted()
	keys := slices.Sorted(maps.Keys(red))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + red[k]
	}
	return fmt.Sprintf("connector %s {%s}", c.Name, strings.Join(parts, ", "))
}
