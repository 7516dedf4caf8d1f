package config

import (
	"strings"
	"testing"
)

// TestNamespaceMapRoutesByTheMostSpecificEntry: a collection's own entry wins over its
// database's, which wins over "*"; what no entry maps keeps its own topic.
func TestNamespaceMapRoutesByTheMostSpecificEntry(t *testing.T) {
	tests := []struct {
		name, m, db, coll, topic string
		routed                   bool
	}{
		{"collection entry over database and wildcard", `{"shop.orders": "o", "shop": "s", "*": "all"}`, "shop", "orders", "mongo.o", true},
		{"database entry appends the collection", `{"shop.orders": "o", "shop": "s", "*": "all"}`, "shop", "items", "mongo.s.items", true},
		{"wildcard for other databases", `{"shop.orders": "o", "shop": "s", "*": "all"}`, "crm", "people", "mongo.all", true},
		{"no entry: the collection's own topic", `{"shop": "s"}`, "crm", "people", "mongo.crm.people", false},
		{"a database entry is not a collection prefix", `{"sh": "x"}`, "shop", "orders", "mongo.shop.orders", false},
		{"a collection name with dots", `{"shop.a.b": "ab"}`, "shop", "a.b", "mongo.ab", true},
		{"the appended collection made a topic name", `{"shop": "s"}`, "shop", "line items", "mongo.s.line_items", true},
		{"an empty map routes nothing", `{}`, "shop", "orders", "mongo.shop.orders", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, with("topic.namespace.map", tt.m))
			if got := c.Topic(tt.db, tt.coll); got != tt.topic {
				t.Errorf("Topic = %q, want %q", got, tt.topic)
			}
			if got := c.Routed(tt.db, tt.coll); got != tt.routed {
				t.Errorf("Routed = %v, want %v", got, tt.routed)
			}
			if got, want := c.CollectionTopic(tt.db, tt.coll), topicName("mongo."+tt.db+"."+tt.coll); got != want {
				t.Errorf("CollectionTopic = %q, want %q", got, want)
			}
		})
	}
}

// TestBadNamespaceMapsAreRefusedNamingTheEntry: a map that is not an object of topic names is
// refused with the key and each bad entry named.
func TestBadNamespaceMapsAreRefusedNamingTheEntry(t *testing.T) {
	tests := []struct{ name, m, want string }{
		{"not JSON", `shop=orders`, "not a JSON object"},
		{"an array", `["*"]`, "not a JSON object"},
		{"a value not a string", `{"shop": 1}`, `"shop" maps to 1, not a string`},
		{"an empty topic", `{"shop": ""}`, `"shop": maps to an empty topic name`},
		{"a topic Kafka refuses", `{"shop": "a b"}`, `"shop": maps to "a b" contains " "`},
		{"an empty database", `{".orders": "o"}`, `".orders": is not "*", a database name`},
		{"no collection after the dot", `{"shop.": "o"}`, `"shop.": names no collection`},
		{"a wildcard collection", `{"shop.*": "o"}`, `only "*" alone is a wildcard`},
		{"a duplicate entry", `{"shop": "a", "shop": "b"}`, `"shop" is given twice`},
		{"text after the object", `{"shop": "a"} {}`, "text after its JSON object"},
		{"a topic too long with the prefix", `{"*": "` + strings.Repeat("t", 245) + `"}`, "may have at most 243"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problemsOf(t, with("topic.namespace.map", tt.m))
			if len(ps) != 1 || ps[0].Key != "topic.namespace.map" || !strings.Contains(ps[0].Message, tt.want) {
				t.Fatalf("problems = %v, want one on topic.namespace.map saying %q", ps, tt.want)
			}
		})
	}
	// Every bad entry at once.
	ps := problemsOf(t, with("topic.namespace.map", `{"a.": "x", "b": "", "c": "ok"}`))
	if len(ps) != 1 || !strings.Contains(ps[0].Message, `"a."`) || !strings.Contains(ps[0].Message, `"b"`) || strings.Contains(ps[0].Message, `"c"`) {
		t.Errorf("problems = %v, want both bad entries named and the good one not", ps)
	}
}

// TestRoutingConflicts: a string key has no room for the namespace a routed key needs, and a
// subject strategy applies only to a format that registers schemas.
func TestRoutingConflicts(t *testing.T) {
	tests := []struct {
		name string
		kv   []string
		key  string
	}{
		{"string keys on routed topics", []string{"topic.namespace.map", `{"*": "all"}`, "key.format", "string"}, "key.format"},
		{"a key strategy without Avro keys", []string{"key.format", "json", "key.subject.name.strategy", "RecordNameStrategy"}, "key.subject.name.strategy"},
		{"a value strategy without Avro values", []string{"value.format", "json", "value.subject.name.strategy", "TopicRecordNameStrategy"}, "value.subject.name.strategy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problemsOf(t, with(tt.kv...))
			if len(ps) != 1 || ps[0].Key != tt.key {
				t.Errorf("problems = %v, want one on %s", ps, tt.key)
			}
		})
	}
	mustParse(t, with("topic.namespace.map", `{"*": "all"}`, "key.format", "json"))
}

// TestSubjectStrategies: each strategy names subjects as Confluent's does, and Confluent's class
// names are accepted for them.
func TestSubjectStrategies(t *testing.T) {
	for _, tt := range []struct{ given, want string }{
		{"", "t-value"},
		{"TopicNameStrategy", "t-value"},
		{"io.confluent.kafka.serializers.subject.TopicNameStrategy", "t-value"},
		{"RecordNameStrategy", "p.d.c.Envelope"},
		{"io.confluent.kafka.serializers.subject.RecordNameStrategy", "p.d.c.Envelope"},
		{"topicrecordnamestrategy", "t-p.d.c.Envelope"},
		{"io.confluent.kafka.serializers.subject.TopicRecordNameStrategy", "t-p.d.c.Envelope"},
	} {
		c := mustParse(t, with("value.subject.name.strategy", tt.given))
		if got := c.ValueSubjectStrategy.Subject("t", "value", "p.d.c.Envelope"); got != tt.want {
			t.Errorf("%q: subject %q, want %q", tt.given, got, tt.want)
		}
		if got := c.KeySubjectStrategy.Subject("t", "key", "p.d.c.Key"); got != "t-key" {
			t.Errorf("%q: key subject %q, want the default t-key", tt.given, got)
		}
	}
	ps := problemsOf(t, with("key.subject.name.strategy", "RecordName"))
	if len(ps) != 1 || !strings.Contains(ps[0].Message, `did you mean "RecordNameStrategy"`) {
		t.Errorf("problems = %v, want the strategy suggested", ps)
	}
}

// TestHeartbeatTopicIsATopicName: heartbeat.topic is optional and must be a valid topic name.
func TestHeartbeatTopicIsATopicName(t *testing.T) {
	if c := mustParse(t, minimal()); c.HeartbeatTopic != "" {
		t.Errorf("HeartbeatTopic = %q by default, want none", c.HeartbeatTopic)
	}
	if c := mustParse(t, with("heartbeat.topic", "__debezium-heartbeat.mongo")); c.HeartbeatTopic != "__debezium-heartbeat.mongo" {
		t.Errorf("HeartbeatTopic = %q", c.HeartbeatTopic)
	}
	if ps := problemsOf(t, with("heartbeat.topic", "beat/s")); len(ps) != 1 || ps[0].Key != "heartbeat.topic" {
		t.Errorf("problems = %v, want heartbeat.topic named", ps)
	}
}

// TestAnEmptyNamespaceMapRoutesNothing: {} is no map, so string keys stay allowed.
func TestAnEmptyNamespaceMapRoutesNothing(t *testing.T) {
	c := mustParse(t, with("topic.namespace.map", "{}", "key.format", "string"))
	if c.Routed("shop", "orders") || c.Topic("shop", "orders") != "mongo.shop.orders" {
		t.Errorf("an empty map routes shop.orders to %q", c.Topic("shop", "orders"))
	}
}
