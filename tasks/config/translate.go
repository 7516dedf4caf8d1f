package config

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Change is one entry of a Debezium, MongoDB Kafka Connector or Kafka Connect config as the
// native config reads it: From (the key given, or the connector class whose default it is)
// became To, or, with To empty, is not used (Warning says whether the user should know).
type Change struct {
	From, FromValue string
	To, ToValue     string
	Why             string
	// Warning marks an entry that changes nothing here although it does something in the
	// product it comes from.
	Warning bool
}

// String reads like: connection.uri="mongodb://h" -> mongodb.connection.string="mongodb://h"
// (why); secrets are shown as RedactRaw shows them.
func (ch Change) String() string {
	from := fmt.Sprintf("%s=%q", ch.From, redactAs(ch.From, ch.FromValue))
	if ch.To == "" {
		return fmt.Sprintf("%s -> not used (%s)", from, ch.Why)
	}
	return fmt.Sprintf("%s -> %s=%q (%s)", from, ch.To, redactAs(ch.To, ch.ToValue), ch.Why)
}

// Class names of the converters whose output value.format and key.format can write.
const (
	converterAvro   = "io.confluent.connect.avro.AvroConverter"
	converterJSON   = "org.apache.kafka.connect.json.JsonConverter"
	converterString = "org.apache.kafka.connect.storage.StringConverter"
)

// extractNewDocumentState is Debezium's transform that writes the document alone.
const extractNewDocumentState = "io.debezium.connector.mongodb.transforms.ExtractNewDocumentState"

// translation rewrites a config's foreign keys as native ones. Each step reads the keys it
// knows, so that whatever is left over is unknown.
type translation struct {
	given    map[string]string // the user's entries
	native   map[string]string // given's native entries, then what the steps add
	by       map[string]string // native key -> the foreign key that set it
	used     map[string]bool   // foreign keys read
	class    string
	changes  []Change
	problems []Problem
}

// translate returns the native config of raw, what it changed, and the problems of foreign
// keys that cannot be translated or that contradict another key.
func translate(raw map[string]string) (native map[string]string, changes []Change, problems []Problem) {
	native = map[string]string{}
	known := map[string]bool{}
	for _, k := range Keys() {
		known[k.Name] = true
	}
	for k, v := range raw {
		if known[k] {
			native[k] = v
		}
	}
	t := &translation{given: raw, native: native, by: map[string]string{}, used: map[string]bool{},
		class: strings.TrimSpace(raw["connector.class"])}
	t.debezium()
	t.mongoKafka()
	t.transforms()
	t.converters()
	t.framework()
	t.peerDefaults()
	// Whatever was not read stays, for Parse to call unknown.
	for k, v := range raw {
		if !known[k] && !t.used[k] {
			native[k] = v
		}
	}
	return native, t.changes, t.problems
}

// get returns a foreign key's value, trimmed, and marks the key read.
func (t *translation) get(key string) (string, bool) {
	v, ok := t.given[key]
	if ok {
		t.used[key] = true
	}
	return strings.TrimSpace(v), ok
}

// set records that the foreign key from (with value fromValue) means to=value. A native key
// given with another value, or set by another foreign key to another value, is a conflict
// naming both keys.
func (t *translation) set(from, fromValue, to, value, why string) {
	if prev, given := t.given[to]; given {
		if !strings.EqualFold(strings.TrimSpace(prev), value) {
			t.problems = append(t.problems, Problem{Key: from, Value: redactAs(from, fromValue), Message: fmt.Sprintf(
				"means %s=%q, but %s is set to %q: keep only one of %s and %s", to, redactAs(to, value), to, redactAs(to, prev), from, to)})
			return
		}
		t.changes = append(t.changes, Change{From: from, FromValue: fromValue, Why: "the same as " + to + ", which is set too"})
		return
	}
	if other, set := t.by[to]; set {
		if !strings.EqualFold(t.native[to], value) {
			t.problems = append(t.problems, Problem{Key: from, Value: redactAs(from, fromValue), Message: fmt.Sprintf(
				"means %s=%q, but %s means %s=%q: keep only one of %s and %s", to, redactAs(to, value), other, to, redactAs(to, t.native[to]), from, other)})
			return
		}
		t.changes = append(t.changes, Change{From: from, FromValue: fromValue, Why: "the same as " + other + ", which is set too"})
		return
	}
	t.native[to], t.by[to] = value, from
	t.changes = append(t.changes, Change{From: from, FromValue: fromValue, To: to, ToValue: value, Why: why})
}

// setDefault gives to a value, as the product class names would, unless to is set already.
func (t *translation) setDefault(to, value, why string) {
	if _, given := t.native[to]; given {
		return
	}
	t.native[to], t.by[to] = value, t.class
	t.changes = append(t.changes, Change{From: "connector.class", FromValue: t.class, To: to, ToValue: value, Why: why})
}

// refuse reports a foreign key whose value has no translation.
func (t *translation) refuse(key, value, msg string) {
	t.problems = append(t.problems, Problem{Key: key, Value: redactAs(key, value), Message: msg})
}

// ignore records a foreign key that is read but does nothing here.
func (t *translation) ignore(key, value, why string, warning bool) {
	t.changes = append(t.changes, Change{From: key, FromValue: value, Why: why, Warning: warning})
}

// debezium translates the values of Debezium's keys that this version spells differently.
func (t *translation) debezium() {
	if v := strings.TrimSpace(t.native["snapshot.mode"]); strings.EqualFold(v, "no_data") {
		t.native["snapshot.mode"] = string(SnapshotNever)
		t.changes = append(t.changes, Change{From: "snapshot.mode", FromValue: v, To: "snapshot.mode", ToValue: string(SnapshotNever),
			Why: "Debezium's newer name for never"})
	}
	if v, ok := t.get("predicates"); ok {
		t.refuse("predicates", v, "not supported yet: mongorelay runs no single message transforms, so no predicates; remove the key")
	}
	t.filtersMatchMode()
	t.credentials()
}

// filtersMatchMode translates Debezium's filters.match.mode. Debezium's default, regex, is what
// the include and exclude lists mean here: regular expressions that must match the whole name
// (the database's, or <database>.<collection>) case-insensitively, as its Predicates.includes
// compiles them (Pattern.CASE_INSENSITIVE) and matches them (Matcher.matches). With literal,
// Debezium compares each comma-separated name, trimmed, with the whole name, both lowercased:
// here each becomes a regular expression matching just that name.
func (t *translation) filtersMatchMode() {
	mode, ok := t.get("filters.match.mode")
	if !ok {
		return
	}
	switch strings.ToLower(mode) {
	case "regex":
		t.ignore("filters.match.mode", mode, "the lists are regular expressions here too, each matching the whole name case-insensitively, as Debezium matches them", false)
	case "literal":
		for _, key := range []string{"database.include.list", "database.exclude.list", "collection.include.list", "collection.exclude.list"} {
			list, given := t.native[key]
			if !given {
				continue
			}
			if strings.Contains(list, "${") {
				// Quoting happens before references are resolved, and would quote the reference.
				t.refuse("filters.match.mode", mode, fmt.Sprintf("cannot quote the names of %s, which holds a config provider reference: write it as regular expressions and remove filters.match.mode", key))
				continue
			}
			var names []string
			for _, name := range strings.Split(list, ",") {
				if name = strings.TrimSpace(name); name != "" {
					// A backslash as \x5c, not \\: "\," in a list is an escaped comma (splitList).
					names = append(names, strings.ReplaceAll(regexp.QuoteMeta(name), `\\`, `\x5c`))
				}
			}
			t.native[key], t.by[key] = strings.Join(names, ","), "filters.match.mode"
			t.changes = append(t.changes, Change{From: "filters.match.mode", FromValue: mode, To: key, ToValue: t.native[key],
				Why: "each name of " + key + " literally, as a regular expression matching just it"})
		}
	default:
		t.refuse("filters.match.mode", mode, fmt.Sprintf("%q is not one of regex, literal", mode))
	}
}

// credentials puts Debezium's mongodb.user, mongodb.password and mongodb.authsource into the
// connection string, where the driver reads them: percent-encoded in its userinfo, and the
// authentication database as authSource. A connection string with credentials or an
// authSource of its own, different from them, is a conflict naming both keys.
func (t *translation) credentials() {
	user, hasUser := t.get("mongodb.user")
	password, hasPassword := t.get("mongodb.password")
	authSource, hasAuthSource := t.get("mongodb.authsource")
	if !hasUser && !hasPassword && !hasAuthSource {
		return
	}
	uri := strings.TrimSpace(t.native["mongodb.connection.string"])
	scheme, rest, ok := strings.Cut(uri, "://")
	switch {
	case hasPassword && !hasUser:
		t.refuse("mongodb.password", password, "is given without mongodb.user: give both, or put them in mongodb.connection.string")
		return
	case !ok:
		from := "mongodb.user"
		if !hasUser {
			from = "mongodb.authsource"
		}
		t.refuse(from, "", "needs mongodb.connection.string (mongodb://host:port/?replicaSet=...) to put the credentials into")
		return
	}
	hosts, tail, _ := strings.Cut(rest, "/")
	if hasUser {
		if at := strings.LastIndex(hosts, "@"); at >= 0 {
			t.problems = append(t.problems, Problem{Key: "mongodb.user", Value: user, Message: "is set, but mongodb.connection.string has credentials of its own: keep only one of mongodb.user and the connection string's"})
			return
		}
		info := userinfoEscape(user)
		if hasPassword {
			info += ":" + userinfoEscape(password)
		}
		hosts = info + "@" + hosts
	}
	// Debezium authenticates mongodb.user against mongodb.authsource, admin when it is not set,
	// whatever the connection string says (its credential replaces the string's); the driver
	// reads the string's authSource, else the database its path names, else admin.
	source := authSource
	if hasUser && !hasAuthSource {
		source = "admin"
	}
	if source != "" {
		path, query, _ := strings.Cut(tail, "?")
		params, err := url.ParseQuery(query)
		switch {
		case err != nil:
			t.problems = append(t.problems, Problem{Key: "mongodb.connection.string", Message: fmt.Sprintf("has an options part that does not parse (%v), so mongodb.authsource cannot be added to it", err)})
			return
		case params.Has("authSource") && params.Get("authSource") != source && hasAuthSource:
			t.problems = append(t.problems, Problem{Key: "mongodb.authsource", Value: authSource, Message: fmt.Sprintf(
				"means authSource=%s, but mongodb.connection.string has authSource=%s: keep only one", authSource, params.Get("authSource"))})
			return
		case params.Has("authSource") && params.Get("authSource") != source:
			t.problems = append(t.problems, Problem{Key: "mongodb.user", Value: user, Message: fmt.Sprintf(
				"is authenticated against mongodb.authsource, admin when not set, as in Debezium, but mongodb.connection.string has authSource=%s: set mongodb.authsource=%s, or remove the connection string's",
				params.Get("authSource"), params.Get("authSource"))})
			return
		case !params.Has("authSource") && (hasAuthSource || path != ""):
			if query != "" {
				query += "&"
			}
			tail = path + "?" + query + "authSource=" + url.QueryEscape(source)
		}
	}
	translated := scheme + "://" + hosts + "/" + tail
	t.native["mongodb.connection.string"] = translated
	for _, f := range []struct {
		key, value string
		given      bool
	}{{"mongodb.user", user, hasUser}, {"mongodb.password", password, hasPassword}, {"mongodb.authsource", authSource, hasAuthSource}} {
		if f.given {
			t.changes = append(t.changes, Change{From: f.key, FromValue: f.value, To: "mongodb.connection.string", ToValue: translated,
				Why: "Debezium's separate credential; the driver reads it from the connection string"})
		}
	}
}

// userinfoEscape percent-encodes a user name or password for a connection string's userinfo,
// as the MongoDB URI format asks: every character but the unreserved ones.
func userinfoEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// mongoKafka translates the MongoDB Kafka Connector's source keys.
func (t *translation) mongoKafka() {
	if v, ok := t.get("connection.uri"); ok {
		t.set("connection.uri", v, "mongodb.connection.string", v, "the MongoDB Kafka Connector's name for the connection string")
	}
	db, hasDB := t.get("database")
	coll, hasColl := t.get("collection")
	switch {
	case hasColl && coll != "" && db == "":
		t.refuse("collection", coll, "names a collection without a database: set database too, as the MongoDB Kafka Connector requires")
	case hasColl && coll != "":
		t.ignore("database", db, "read with collection", false)
		t.set("collection", coll, "collection.include.list", exactly(regexp.QuoteMeta(db)+`\.`+regexp.QuoteMeta(coll)),
			"the one collection database.collection, as a case-sensitive regular expression")
	case hasDB && db != "":
		t.set("database", db, "database.include.list", exactly(regexp.QuoteMeta(db)), "the one database, as a case-sensitive regular expression")
	}
	if v, ok := t.get("copy.existing"); ok {
		switch strings.ToLower(v) {
		case "true":
			t.set("copy.existing", v, "snapshot.mode", string(SnapshotInitial), "copy the existing documents first")
		case "false":
			t.set("copy.existing", v, "snapshot.mode", string(SnapshotNever), "stream changes only")
		default:
			t.refuse("copy.existing", v, fmt.Sprintf("%q is not a boolean: use true or false", v))
		}
	}
	if v, ok := t.get("startup.mode"); ok {
		switch strings.ToLower(v) {
		case "copy_existing":
			t.set("startup.mode", v, "snapshot.mode", string(SnapshotInitial), "copy the existing documents first")
		case "latest":
			t.set("startup.mode", v, "snapshot.mode", string(SnapshotNever), "stream changes from now on")
		case "timestamp":
			t.refuse("startup.mode", v, "not supported yet: startup.mode=timestamp has no translation; create the connector STOPPED and give each collection a cluster_time with PATCH /connectors/{name}/offsets (docs/migration.md)")
		default:
			t.refuse("startup.mode", v, fmt.Sprintf("%q is not one of latest, copy_existing, timestamp", v))
		}
	}
	if v, ok := t.get("publish.full.document.only"); ok {
		switch strings.ToLower(v) {
		case "true":
			t.set("publish.full.document.only", v, "output.shape", string(ShapeDocument), "the document alone as the record value")
		case "false":
			t.set("publish.full.document.only", v, "output.shape", string(ShapeEnvelope), "the whole change event as the record value")
		default:
			t.refuse("publish.full.document.only", v, fmt.Sprintf("%q is not a boolean: use true or false", v))
		}
	}
	if v, ok := t.get("publish.full.document.only.tombstone.on.delete"); ok {
		t.set("publish.full.document.only.tombstone.on.delete", v, "tombstones.on.delete", strings.ToLower(v), "a tombstone for each delete")
	}
	full, hasFull := t.get("change.stream.full.document")
	before, hasBefore := t.get("change.stream.full.document.before.change")
	if hasFull || hasBefore {
		t.captureMode(full, hasFull, before, hasBefore)
	}
	for _, f := range []struct{ from, to string }{
		{"output.format.value", "value.format"},
		{"output.format.key", "key.format"},
	} {
		v, ok := t.get(f.from)
		if !ok {
			continue
		}
		switch strings.ToLower(v) {
		case "json":
			t.set(f.from, v, f.to, "json", "the change as canonical Extended JSON text")
		case "schema":
			// The converter chooses the encoding of a record with a schema; Avro without one.
			if _, converter := t.given[strings.TrimSuffix(f.to, ".format")+".converter"]; converter {
				t.ignore(f.from, v, "records with a schema: "+f.to+" follows the converter", false)
			} else {
				t.set(f.from, v, f.to, "avro", "records with a schema, in Avro since no converter is set")
			}
		case "bson":
			t.refuse(f.from, v, "not supported yet: raw BSON records cannot be written; use json or schema")
		default:
			t.refuse(f.from, v, fmt.Sprintf("%q is not one of json, schema, bson", v))
		}
	}
	if v, ok := t.get("poll.await.time.ms"); ok {
		t.set("poll.await.time.ms", v, "poll.max.wait.ms", v, "the same wait, renamed")
	}
	if v, ok := t.get("batch.size"); ok {
		t.set("batch.size", v, "max.batch.size", v, "the same batch size, renamed")
	}
	if v, ok := t.get("topic.separator"); ok && v != "." {
		t.refuse("topic.separator", v, `not supported yet: topic names join their parts with "."; remove the key`)
	}
	if v, ok := t.get("topic.suffix"); ok && v != "" {
		t.refuse("topic.suffix", v, "not supported yet: topic names end with the collection; remove the key")
	}
}

// exactly makes a regular expression case-sensitive inside a list that is matched
// case-insensitively: the MongoDB Kafka Connector watches the one namespace its database and
// collection name, and a database may hold collections whose names differ only in case.
func exactly(expr string) string {
	return "(?-i:" + expr + ")"
}

// captureMode translates change.stream.full.document and its .before.change companion into
// capture.mode.
func (t *translation) captureMode(full string, hasFull bool, before string, hasBefore bool) {
	from, value := "change.stream.full.document", full
	if !hasFull {
		from, value = "change.stream.full.document.before.change", before
	}
	var lookup, pre bool
	switch strings.ToLower(full) {
	case "updatelookup":
		lookup = true
	case "":
		lookup = !hasFull // only before.change given: updates keep their looked-up document
	case "default":
	default:
		t.refuse("change.stream.full.document", full, fmt.Sprintf("not supported yet: %q needs post-images; use updateLookup (a look-up of each updated document) or default", full))
		return
	}
	switch strings.ToLower(before) {
	case "whenavailable", "required":
		pre = true
	case "", "off":
	default:
		t.refuse("change.stream.full.document.before.change", before, fmt.Sprintf("%q is not one of off, whenAvailable, required", before))
		return
	}
	mode := map[[2]bool]CaptureMode{
		{false, false}: CaptureChangeStreams, {true, false}: CaptureUpdateFull,
		{false, true}: CaptureWithPreImage, {true, true}: CaptureUpdateFullWithPreImage,
	}[[2]bool{lookup, pre}]
	if hasFull && hasBefore {
		value = full + " with before.change " + before
	}
	t.set(from, value, "capture.mode", string(mode), "what each update event carries")
}

// transforms translates Debezium's ExtractNewDocumentState; mongorelay runs no other
// transform.
func (t *translation) transforms() {
	list, ok := t.get("transforms")
	if !ok {
		return
	}
	for _, name := range splitList(list) {
		prefix := "transforms." + name + "."
		typ, _ := t.get(prefix + "type")
		if typ != extractNewDocumentState {
			t.refuse(prefix+"type", typ, fmt.Sprintf("not supported yet: mongorelay runs no single message transforms but %s (output.shape=document); remove %q from transforms", extractNewDocumentState, name))
			continue
		}
		t.set(prefix+"type", typ, "output.shape", string(ShapeDocument), "the document alone, with the fields add.fields names")
		// Debezium's defaults drop a delete's record and its tombstone alike.
		tombstones := "false"
		for _, key := range slices.Sorted(maps.Keys(t.given)) {
			option, ok := strings.CutPrefix(key, prefix)
			if !ok || option == "type" {
				continue
			}
			v, _ := t.get(key)
			switch option {
			case "add.fields":
				t.set(key, v, "output.document.add.fields", v, "the same fields, named __<field>")
			case "add.fields.prefix":
				if v != "__" {
					t.refuse(key, v, `not supported yet: added fields are always prefixed "__"; remove the key`)
				}
			case "drop.tombstones":
				tombstones = map[bool]string{true: "false", false: "true"}[strings.EqualFold(v, "true")]
			case "delete.handling.mode":
				if !strings.EqualFold(v, "drop") {
					t.refuse(key, v, fmt.Sprintf("not supported yet: %q; a delete writes a tombstone or nothing (delete.handling.mode=drop)", v))
				}
			case "delete.tombstone.handling.mode":
				switch strings.ToLower(v) {
				case "drop":
					tombstones = "false"
				case "tombstone":
					tombstones = "true"
				default:
					t.refuse(key, v, fmt.Sprintf("not supported yet: %q; use tombstone or drop", v))
				}
			default:
				t.refuse(key, v, fmt.Sprintf("not supported yet: %s option %s has no translation; remove it", extractNewDocumentState, option))
			}
		}
		from := prefix + "drop.tombstones"
		if _, given := t.given[from]; !given {
			from = prefix + "type"
		}
		if connector, given := t.given["tombstones.on.delete"]; given {
			// Debezium writes a tombstone only with tombstones.on.delete=true, and the transform
			// keeps it only with drop.tombstones=false: both decide, not a conflict.
			if !strings.EqualFold(strings.TrimSpace(connector), "true") {
				tombstones = "false"
			}
			t.native["tombstones.on.delete"], t.by["tombstones.on.delete"] = tombstones, from
			t.changes = append(t.changes, Change{From: from, FromValue: t.given[from], To: "tombstones.on.delete", ToValue: tombstones,
				Why: "a tombstone only where tombstones.on.delete=true writes one and the transform keeps it (drop.tombstones=false)"})
			continue
		}
		t.set(from, t.given[from], "tombstones.on.delete", tombstones,
			"ExtractNewDocumentState keeps a delete's tombstone only with drop.tombstones=false (its default is true)")
	}
}

// converters maps Kafka Connect's key and value converters onto key.format and value.format.
func (t *translation) converters() {
	for _, side := range []string{"key", "value"} {
		key := side + ".converter"
		class, ok := t.get(key)
		schemasKey := key + ".schemas.enable"
		schemas, hasSchemas := t.get(schemasKey)
		if hasSchemas {
			t.ignore(schemasKey, schemas, "read with "+key, !ok)
		}
		registry, hasRegistry := t.get(key + ".schema.registry.url")
		if !ok {
			if hasRegistry {
				t.ignore(key+".schema.registry.url", registry, "read with "+key+"=AvroConverter, which is not set", true)
			}
			continue
		}
		to := side + ".format"
		switch class {
		case converterAvro:
			t.set(key, class, to, "avro", "Avro in the Confluent wire format")
			if hasRegistry {
				t.set(key+".schema.registry.url", registry, "schema.registry.url", registry, "the converter's schema registry")
			}
		case converterJSON:
			withSchema := !hasSchemas || !strings.EqualFold(schemas, "false") // JsonConverter's default is true
			switch {
			case side == "value" && withSchema:
				t.set(key, class, to, string(ValueJSONSchema), "JsonConverter with schemas.enable=true writes {\"schema\": ..., \"payload\": ...}")
			case side == "value":
				t.set(key, class, to, string(ValueJSON), "JsonConverter with schemas.enable=false writes plain JSON")
			case withSchema:
				t.set(key, class, to, string(KeyJSON), "JsonConverter; keys are written without the schema envelope schemas.enable=true would add")
				if last := &t.changes[len(t.changes)-1]; last.From == key {
					last.Warning = true
				}
			default:
				t.set(key, class, to, string(KeyJSON), "JsonConverter with schemas.enable=false writes plain JSON")
			}
		case converterString:
			if side == "key" {
				t.set(key, class, to, string(KeyString), "the key's id as text")
			} else {
				t.set(key, class, to, string(ValueJSON), "the value as JSON text")
			}
		default:
			t.refuse(key, class, fmt.Sprintf("not supported yet: %s writes %s.format=%s; use %s, %s or %s", class, side,
				map[string]string{"key": "avro, json or string", "value": "avro, json or json_schema"}[side], converterAvro, converterJSON, converterString))
		}
		if hasRegistry && class != converterAvro {
			t.ignore(key+".schema.registry.url", registry, "read by AvroConverter only", true)
		}
	}
}

// frameworkWarnings returns the keys of Kafka Connect (and two of Debezium's) that mean nothing
// here, and why.
func frameworkWarnings() map[string]string {
	return map[string]string{
		"header.converter":                                "records carry no headers",
		"errors.log.enable":                               "skipped records are always logged",
		"errors.log.include.messages":                     "skipped records are logged without their content",
		"errors.deadletterqueue.context.headers.enable":   "dead letters carry their context in the value",
		"errors.deadletterqueue.topic.replication.factor": "the dead letter topic gets the broker's default replication factor",
		"config.action.reload":                            "configs change through the REST API only",
		"exactly.once.support":                            "exactly.once sets it",
		"transaction.boundary":                            "each task's transactions are its batches",
		"offsets.storage.topic":                           "offsets live in the cluster's offsets topic",
		"topic.creation.groups":                           "every topic gets topic.creation.default.*",
		"topic.creation.default.cleanup.policy":           "topics are created with the broker's defaults but partitions and replication factor",
		"topic.creation.default.compression.type":         "topics are created with the broker's defaults but partitions and replication factor",
		"topic.creation.default.retention.ms":             "topics are created with the broker's defaults but partitions and replication factor",
		"topic.creation.default.min.insync.replicas":      "topics are created with the broker's defaults but partitions and replication factor",
		"value.converter.enhanced.avro.schema.support":    "schemas are generated from the documents",
		"value.converter.connect.meta.data":               "schemas are generated from the documents",
		"key.converter.enhanced.avro.schema.support":      "schemas are generated from the documents",
		"key.converter.connect.meta.data":                 "schemas are generated from the documents",
		"value.converter.auto.register.schemas":           "schemas are always registered",
		"key.converter.auto.register.schemas":             "schemas are always registered",
		"value.converter.use.latest.version":              "each record is written with the schema it needs",
		"key.converter.use.latest.version":                "each record is written with the schema it needs",
		"mongodb.members.auto.discover":                   "the driver discovers the members from the connection string",
		"mongodb.connection.string.shard.params":          "shards are read through mongos",
	}
}

// framework reads the keys of frameworkWarnings and warns about them.
func (t *translation) framework() {
	warnings := frameworkWarnings()
	for _, key := range slices.Sorted(maps.Keys(t.given)) {
		why, ok := warnings[key]
		if !ok || why == "" || t.used[key] {
			continue
		}
		v, _ := t.get(key)
		t.ignore(key, v, why, true)
	}
}

// peerDefaults gives the keys the class's own connector defaults differently their value there.
func (t *translation) peerDefaults() {
	switch t.class {
	case ClassMongoKafka:
		t.setDefault("snapshot.mode", string(SnapshotNever), "the MongoDB Kafka Connector's startup.mode=latest: changes from now on")
		t.setDefault("value.format", string(ValueJSON), "the MongoDB Kafka Connector's output.format.value=json")
		t.setDefault("key.format", string(KeyJSON), "the MongoDB Kafka Connector's output.format.key=json")
		t.setDefault("tombstones.on.delete", "false", "the MongoDB Kafka Connector writes no tombstones unless publish.full.document.only.tombstone.on.delete=true")
		if t.native["output.shape"] != string(ShapeDocument) {
			t.setDefault("capture.mode", string(CaptureChangeStreams),
				"the MongoDB Kafka Connector's change.stream.full.document=default: an update carries what changed, not the document")
		}
		if _, given := t.native["topic.prefix"]; !given {
			t.changes = append(t.changes, Change{From: "connector.class", FromValue: t.class, To: "topic.prefix",
				Why: "optional, as in the MongoDB Kafka Connector: without it topics are <database>.<collection>"})
		}
	case ClassDebezium:
		if t.native["output.shape"] != string(ShapeDocument) {
			t.setDefault("document.mode", string(DocumentJSON), "Debezium writes before and after as Extended JSON strings")
		}
	}
}

// redactAs shows the value of key (native or foreign) as RedactRaw would.
func redactAs(key, v string) string {
	return RedactRaw(map[string]string{key: v})[key]
}

// translatedKeys returns the foreign keys translate reads, but for transforms.<name>.* and
// frameworkWarnings'.
func translatedKeys() []string {
	return []string{"connection.uri", "database", "collection", "copy.existing", "startup.mode",
		"publish.full.document.only", "publish.full.document.only.tombstone.on.delete", "change.stream.full.document",
		"change.stream.full.document.before.change", "output.format.value", "output.format.key", "poll.await.time.ms",
		"batch.size", "topic.separator", "filters.match.mode", "mongodb.user", "mongodb.password", "mongodb.authsource", "topic.suffix", "transforms", "predicates",
		"key.converter", "value.converter", "key.converter.schemas.enable", "value.converter.schemas.enable",
		"key.converter.schema.registry.url", "value.converter.schema.registry.url"}
}

// foreignKey returns the native key whose secrecy a foreign key shares, and whether the
// translation reads the foreign key at all; mongodb.password reports false, so that it is
// hidden whole, as a key nobody knows is.
func foreignKey(name string) (native string, ok bool) {
	switch name {
	case "connection.uri":
		return "mongodb.connection.string", true
	case "mongodb.password":
		return "", false // a secret as a whole: hidden as an unknown key is
	case "key.converter.schema.registry.url", "value.converter.schema.registry.url":
		return "schema.registry.url", true
	}
	if _, ok := frameworkWarnings()[name]; ok || slices.Contains(translatedKeys(), name) {
		return "", true
	}
	return "", strings.HasPrefix(name, "transforms.")
}
