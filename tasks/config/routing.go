package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"strings"
)

// SubjectStrategy is key.subject.name.strategy and value.subject.name.strategy: how the
// subject a schema is registered under is named, as Confluent's serializers name it.
type SubjectStrategy string

// Subject name strategies, Confluent's: TopicName (<topic>-key, <topic>-value), RecordName
// (the record's full name) and TopicRecordName (<topic>-<full name>).
const (
	SubjectTopicName       SubjectStrategy = "TopicNameStrategy"
	SubjectRecordName      SubjectStrategy = "RecordNameStrategy"
	SubjectTopicRecordName SubjectStrategy = "TopicRecordNameStrategy"
)

// NamesRecordsByCollection reports whether records are named after their collection's own
// topic (config.Config.CollectionTopic) rather than the topic they are written to: with the
// RecordName strategies, so that collections sharing a topic get a subject each.
func (s SubjectStrategy) NamesRecordsByCollection() bool {
	return s == SubjectRecordName || s == SubjectTopicRecordName
}

// confluentStrategyPackage is the package of Confluent's strategy classes, whose names are
// accepted for the strategies.
const confluentStrategyPackage = "io.confluent.kafka.serializers.subject."

// subjectStrategies are the values a strategy key allows: the short names and Confluent's
// class names.
func subjectStrategies() []string {
	var out []string
	for _, s := range []SubjectStrategy{SubjectTopicName, SubjectRecordName, SubjectTopicRecordName} {
		out = append(out, string(s), confluentStrategyPackage+string(s))
	}
	return out
}

// setSubjectStrategy stores a strategy, given by either name, in the field of c that field
// returns.
func setSubjectStrategy(field func(c *Config) *SubjectStrategy) func(*Config, string) string {
	return func(c *Config, v string) string {
		*field(c) = SubjectStrategy(strings.TrimPrefix(v, confluentStrategyPackage))
		return ""
	}
}

// Subject returns the subject of a schema whose record's full name is record, written to
// topic with suffix "key" or "value" (the TopicName strategy's).
func (s SubjectStrategy) Subject(topic, suffix, record string) string {
	switch s {
	case SubjectRecordName:
		return record
	case SubjectTopicRecordName:
		return topic + "-" + record
	}
	return topic + "-" + suffix
}

// namespaceMap is a parsed topic.namespace.map: the MongoDB Kafka Connector's map from a
// namespace to a topic name, written after topic.prefix.
type namespaceMap struct {
	collections map[string]string // "db.coll" → topic
	databases   map[string]string // "db" → topic, the collection appended
	all         string            // "*" → topic; "" when absent
}

// route returns the mapped part of the topic of db.coll and whether an entry matched, the
// MongoDB Kafka Connector's precedence: the collection's entry, else its database's (the
// collection name appended after a '.'), else "*".
func (m *namespaceMap) route(db, coll string) (string, bool) {
	if m == nil {
		return "", false
	}
	if t, ok := m.collections[db+"."+coll]; ok {
		return t, true
	}
	if t, ok := m.databases[db]; ok {
		return t + "." + coll, true
	}
	return m.all, m.all != ""
}

// parseNamespaceMap reads topic.namespace.map: a JSON object whose keys are "*", a database
// name or "<database>.<collection>", and whose values are non-empty topic names. Every bad
// entry is named in the message.
func parseNamespaceMap(v string, prefix string) (*namespaceMap, string) {
	dec := json.NewDecoder(strings.NewReader(v))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, `is not a JSON object: use e.g. {"shop.orders": "orders", "shop": "shop-all", "*": "everything"}`
	}
	m := &namespaceMap{collections: map[string]string{}, databases: map[string]string{}}
	var bad []string
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, "is not valid JSON: " + err.Error()
		}
		ns := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, "is not valid JSON: " + err.Error()
		}
		var topic string
		if err := json.Unmarshal(raw, &topic); err != nil {
			bad = append(bad, fmt.Sprintf("%q maps to %s, not a string: every value is a topic name", ns, bytes.TrimSpace(raw)))
			continue
		}
		if seen[ns] {
			bad = append(bad, fmt.Sprintf("%q is given twice: keep one entry", ns))
			continue
		}
		seen[ns] = true
		if msg := checkNamespaceEntry(ns, topic, prefix); msg != "" {
			bad = append(bad, fmt.Sprintf("%q: %s", ns, msg))
			continue
		}
		db, coll, isColl := strings.Cut(ns, ".")
		switch {
		case ns == "*":
			m.all = topic
		case isColl:
			m.collections[db+"."+coll] = topic
		default:
			m.databases[db] = topic
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, "is not valid JSON: " + err.Error()
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "has text after its JSON object: give one object"
	}
	if len(bad) > 0 {
		return nil, "has bad entries: " + strings.Join(bad, "; ")
	}
	return m, ""
}

// checkNamespaceEntry checks one entry of topic.namespace.map.
func checkNamespaceEntry(ns, topic, prefix string) string {
	db, coll, isColl := strings.Cut(ns, ".")
	switch {
	case ns == "*":
	case db == "" || strings.ContainsAny(db, `/\ "$*`):
		return `is not "*", a database name or <database>.<collection>: a database name is not empty and has none of / \ . " $ * or spaces`
	case isColl && (coll == "" || strings.Contains(coll, "$")):
		return "names no collection after the '.': give <database>.<collection>, or the database alone"
	case isColl && coll == "*":
		return fmt.Sprintf(`uses "*" as a collection, but only "*" alone is a wildcard: map the database %q to route all of its collections`, db)
	}
	if topic == "" {
		return "maps to an empty topic name: name a topic, or remove the entry"
	}
	if msg := checkTopicName(topic); msg != "" {
		return "maps to " + msg
	}
	// A database's topic gets ".<collection>" after it.
	room := maxTopicLength - len(prefix) - 1
	if !isColl && ns != "*" {
		room -= 2
	}
	if len(topic) > room {
		return fmt.Sprintf("maps to a topic name of %d characters: with topic.prefix in front it may have at most %d", len(topic), room)
	}
	return ""
}

func setNamespaceMap(c *Config, v string) string {
	m, msg := parseNamespaceMap(v, c.TopicPrefix)
	if m != nil && (len(m.collections) > 0 || len(m.databases) > 0 || m.all != "") {
		c.namespaceMap = m // an empty map routes nothing, as no map
	}
	return msg
}

// Topic returns the topic of a collection: <topic.prefix>.<db>.<collection>, or
// <topic.prefix>.<mapped> where topic.namespace.map maps it (Routed), without "<topic.prefix>."
// when there is no prefix, with every character
// Kafka does not allow replaced by '_'. A name longer than Kafka's 249 characters is cut to
// 240 and ends with '_' and 8 hex digits of a hash of the full name, so distinct long names
// stay distinct.
func (c *Config) Topic(db, coll string) string {
	if mapped, ok := c.namespaceMap.route(db, coll); ok {
		return topicName(c.prefixed(mapped))
	}
	return c.CollectionTopic(db, coll)
}

// prefixed is name after topic.prefix and a '.', or name alone without a prefix (a MongoDB
// Kafka Connector config may have none: connector.class=ClassMongoKafka).
func (c *Config) prefixed(name string) string {
	if c.TopicPrefix == "" {
		return name
	}
	return c.TopicPrefix + "." + name
}

// CollectionTopic is the collection's own topic, <topic.prefix>.<db>.<collection> made a
// valid topic name, whatever topic.namespace.map says: the topic Debezium's router calls the
// default destination, kept in the key of a routed record (Routed) and naming its records'
// schemas under the RecordName strategies.
func (c *Config) CollectionTopic(db, coll string) string {
	return topicName(c.prefixed(db + "." + coll))
}

// Routed reports whether topic.namespace.map routes collection coll of db. A routed topic may
// carry other collections' records too, so a routed record's key holds the collection's own
// topic (CollectionTopic) beside the _id, as Debezium's topic router adds
// __dbz__physicalTableIdentifier: two collections' documents never share a key.
func (c *Config) Routed(db, coll string) bool {
	_, ok := c.namespaceMap.route(db, coll)
	return ok
}

// topicName makes full a valid topic name (Topic).
func topicName(full string) string {
	b := []byte(full)
	for i := range b {
		if !legalTopicChar(b[i]) {
			b[i] = '_'
		}
	}
	if len(b) <= maxTopicLength {
		return string(b)
	}
	h := fnv.New32a()
	h.Write([]byte(full))
	return fmt.Sprintf("%s_%08x", b[:maxTopicLength-9], h.Sum32())
}

// routingConflicts reports the problems of routing and subject keys with other keys.
func (c *Config) routingConflicts() []Problem {
	var out []Problem
	if c.namespaceMap != nil && c.KeyFormat == KeyString {
		out = append(out, Problem{Key: "key.format", Value: string(c.KeyFormat),
			Message: "string has no room for the collection that a key on a topic.namespace.map topic holds beside the _id: use json or avro, or remove topic.namespace.map"})
	}
	if c.ValueSubjectStrategy != SubjectTopicName && c.ValueFormat == ValueAvro && c.OutputShape == ShapeDocument && c.DocumentMode == DocumentJSON {
		out = append(out, Problem{Key: "value.subject.name.strategy", Value: c.raw["value.subject.name.strategy"],
			Message: "needs a record, but output.shape=document with document.mode=json writes a string, which has no name: use TopicNameStrategy or document.mode=typed"})
	}
	if c.KeySubjectStrategy != SubjectTopicName && c.KeyFormat != KeyAvro {
		out = append(out, Problem{Key: "key.subject.name.strategy", Value: c.raw["key.subject.name.strategy"],
			Message: fmt.Sprintf("applies only to key.format=avro, whose schemas are registered; key.format=%s registers none: remove it", c.KeyFormat)})
	}
	if c.ValueSubjectStrategy != SubjectTopicName && c.ValueFormat != ValueAvro {
		out = append(out, Problem{Key: "value.subject.name.strategy", Value: c.raw["value.subject.name.strategy"],
			Message: fmt.Sprintf("applies only to value.format=avro, whose schemas are registered; value.format=%s registers none: remove it", c.ValueFormat)})
	}
	return out
}
