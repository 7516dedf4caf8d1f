package tasks

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/registry"
	"github.com/mongorelay/mongorelay/registry/registrytest"
	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/envelope"
)

func routingConfig(t *testing.T, kv ...string) *config.Config {
	t.Helper()
	raw := map[string]string{"connector.class": "mongodb", "mongodb.connection.string": "mongodb://db:27017", "topic.prefix": "p"}
	for i := 0; i < len(kv); i += 2 {
		raw[kv[i]] = kv[i+1]
	}
	cfg, err := config.Parse("c", raw)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newTestRegistry(t *testing.T) *registry.Registry {
	t.Helper()
	reg, err := registry.New(context.Background(), registrytest.NewStore(), registry.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// decodeAvro decodes a Confluent wire-format record body into a map, with the schema its header
// names.
func decodeAvro(t *testing.T, reg *registry.Registry, b []byte) map[string]any {
	t.Helper()
	id, body, err := registry.SplitWire(b)
	if err != nil {
		t.Fatal(err)
	}
	text, err := reg.SchemaByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	if err := avro.Unmarshal(avro.MustParse(text), body, &got); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestRoutedKeysNameTheirCollection: a record that topic.namespace.map routes has its
// collection's own topic in its key beside id, in Avro and in JSON; an unrouted one has not.
func TestRoutedKeysNameTheirCollection(t *testing.T) {
	ctx := context.Background()
	ev := insertEvent(t, bson.D{{Key: "_id", Value: 1}})
	const id = `{"$numberInt":"1"}`
	tests := []struct {
		name string
		kv   []string
		want map[string]any
	}{
		{"avro, routed by the wildcard", []string{"topic.namespace.map", `{"*": "all"}`}, map[string]any{"id": id, envelope.CollectionField: "p.db.coll"}},
		{"json, routed by its own entry", []string{"topic.namespace.map", `{"db.coll": "one"}`, "key.format", "json"}, map[string]any{"id": id, envelope.CollectionField: "p.db.coll"}},
		{"avro, not routed", []string{"topic.namespace.map", `{"other": "x"}`}, map[string]any{"id": id}},
		{"json, no map", []string{"key.format", "json"}, map[string]any{"id": id}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := newTestRegistry(t)
			cfg := routingConfig(t, tt.kv...)
			enc, err := newRecordEncoder(ctx, reg, cfg, "db", "coll")
			if err != nil {
				t.Fatal(err)
			}
			key, err := enc.appendKey(nil, ev)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]any{}
			if cfg.KeyFormat == config.KeyJSON {
				if err := json.Unmarshal(key, &got); err != nil {
					t.Fatalf("key %s: %v", key, err)
				}
			} else {
				got = decodeAvro(t, reg, key)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("key %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSubjectsFollowTheStrategies: the key and value schemas are registered under the subjects
// Confluent's strategies give, records named after the topic with TopicNameStrategy and after
// the collection's own topic with the others.
func TestSubjectsFollowTheStrategies(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		kv   []string
		want []string
	}{
		{"topic name", []string{"topic.namespace.map", `{"*": "all"}`}, []string{"p.all-key", "p.all-value"}},
		{"record name", []string{"topic.namespace.map", `{"*": "all"}`, "key.subject.name.strategy", "RecordNameStrategy",
			"value.subject.name.strategy", "io.confluent.kafka.serializers.subject.RecordNameStrategy"}, []string{"p.db.coll.Envelope", "p.db.coll.Key"}},
		{"topic record name, document shape", []string{"topic.namespace.map", `{"db": "d"}`, "output.shape", "document",
			"key.subject.name.strategy", "TopicRecordNameStrategy", "value.subject.name.strategy", "TopicRecordNameStrategy"},
			[]string{"p.d.coll-p.db.coll.Key", "p.d.coll-p.db.coll.Value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := newTestRegistry(t)
			enc, err := newRecordEncoder(ctx, reg, routingConfig(t, tt.kv...), "db", "coll")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := enc.appendValue(ctx, nil, insertEvent(t, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: "x"}}), 0); err != nil {
				t.Fatal(err)
			}
			if got := reg.Subjects(false); !slices.Equal(got, tt.want) {
				t.Errorf("subjects %v, want %v", got, tt.want)
			}
		})
	}
}

// TestHeartbeatRecords: Debezium's heartbeat, key {serverName: topic.prefix} and value
// {ts_ms}, in each key and value format, written once per heartbeat.interval.ms.
func TestHeartbeatRecords(t *testing.T) {
	ctx := context.Background()
	at := time.UnixMilli(1700000000123)
	reg := newTestRegistry(t)
	h, err := newHeartbeat(ctx, reg, routingConfig(t, "heartbeat.topic", "__debezium-heartbeat.p"))
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeAvro(t, reg, h.key); !maps.Equal(got, map[string]any{"serverName": "p"}) {
		t.Errorf("avro key %v", got)
	}
	if got := decodeAvro(t, reg, h.appendValue(nil, at)); !maps.Equal(got, map[string]any{"ts_ms": int64(1700000000123)}) {
		t.Errorf("avro value %v", got)
	}
	if got, want := reg.Subjects(false), []string{"__debezium-heartbeat.p-key", "__debezium-heartbeat.p-value"}; !slices.Equal(got, want) {
		t.Errorf("subjects %v, want %v", got, want)
	}
	if !h.due(at) || h.due(at.Add(9*time.Second)) || !h.due(at.Add(10*time.Second)) {
		t.Errorf("a heartbeat is not due once per heartbeat.interval.ms (10 s)")
	}

	for _, tt := range []struct{ key, value, wantKey, wantValue string }{
		{"json", "json", `{"serverName":"p"}`, `{"ts_ms":1700000000123}`},
		{"string", "json_schema", `p`, `{"schema":{"type":"struct","fields":[{"type":"int64","optional":false,"field":"ts_ms"}],"optional":false,"name":"io.debezium.connector.common.Heartbeat"},"payload":{"ts_ms":1700000000123}}`},
	} {
		reg := newTestRegistry(t)
		h, err := newHeartbeat(ctx, reg, routingConfig(t, "heartbeat.topic", "beats", "key.format", tt.key, "value.format", tt.value))
		if err != nil {
			t.Fatal(err)
		}
		if string(h.key) != tt.wantKey || string(h.appendValue(nil, at)) != tt.wantValue {
			t.Errorf("%s/%s: key %s value %s", tt.key, tt.value, h.key, h.appendValue(nil, at))
		}
		if got := reg.Subjects(false); len(got) != 0 {
			t.Errorf("%s/%s registered %v", tt.key, tt.value, got)
		}
	}
	if h, err := newHeartbeat(ctx, reg, routingConfig(t)); h != nil || err != nil || h.due(at) {
		t.Errorf("without heartbeat.topic: %v, %v", h, err)
	}
}
