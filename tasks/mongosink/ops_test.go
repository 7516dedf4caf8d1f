package mongosink

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func mustParse(t *testing.T, extra map[string]string) *Config {
	t.Helper()
	raw := map[string]string{"connector.class": Class, "mongodb.connection.string": "mongodb://h", "topics": "t", "database": "d"}
	for k, v := range extra {
		raw[k] = v
	}
	cfg, err := Parse("s", raw)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestConvertAppliesEachShapeAsItsOperation(t *testing.T) {
	oid := bson.NewObjectID()
	// 256 bytes long: the length's first byte is 0, as the Confluent wire format's magic byte.
	bsonValue, err := bson.Marshal(bson.D{{Key: "_id", Value: int32(1)}, {Key: "s", Value: strings.Repeat("x", 234)}})
	if err != nil || len(bsonValue) != 256 {
		t.Fatalf("BSON value of %d bytes: %v", len(bsonValue), err)
	}
	oidKey := `{"id":"{\"$oid\":\"` + oid.Hex() + `\"}"}`
	tests := []struct {
		name       string
		cfg        map[string]string
		key, value string
		null       bool
		want       op
	}{
		{"a plain JSON document is replaced by its _id", nil, "", `{"_id": 1, "a": "x"}`, false,
			op{kind: opReplace, id: int32(1), doc: bson.D{{Key: "_id", Value: int32(1)}, {Key: "a", Value: "x"}}}},
		{"a document without _id takes the key's id", nil, `{"id": "k1"}`, `{"a": 2}`, false,
			op{kind: opReplace, id: "k1", doc: bson.D{{Key: "_id", Value: "k1"}, {Key: "a", Value: int32(2)}}}},
		{"a string key is the id", nil, `k2`, `{"a": 2}`, false,
			op{kind: opReplace, id: "k2", doc: bson.D{{Key: "_id", Value: "k2"}, {Key: "a", Value: int32(2)}}}},
		{"update-one sets the fields", map[string]string{"writemodel.strategy": UpdateOne}, "", `{"_id": 1, "a": 1}`, false,
			op{kind: opSet, id: int32(1), doc: bson.D{{Key: "_id", Value: int32(1)}, {Key: "a", Value: int32(1)}}}},
		{"Connect's schema envelope is unwrapped", map[string]string{"writemodel.strategy": "com.mongodb.kafka.connect.sink.writemodel.strategy.InsertOneDefaultStrategy"},
			"", `{"schema": {"type": "struct"}, "payload": {"_id": "p"}}`, false,
			op{kind: opInsert, id: "p", doc: bson.D{{Key: "_id", Value: "p"}}}},
		{"Extended JSON keeps BSON types", nil, "", `{"_id": {"$oid": "` + oid.Hex() + `"}, "n": {"$numberLong": "5"}}`, false,
			op{kind: opReplace, id: oid, doc: bson.D{{Key: "_id", Value: oid}, {Key: "n", Value: int64(5)}}}},
		{"a tombstone deletes with delete.on.null.values", map[string]string{"delete.on.null.values": "true"}, oidKey, "", true,
			op{kind: opDelete, id: oid}},
		{"a tombstone is kept otherwise", nil, oidKey, "", true, op{kind: opSkip}},
		{"Debezium's create upserts after", nil, oidKey,
			`{"schema": {}, "payload": {"op": "c", "after": "{\"_id\": {\"$oid\": \"` + oid.Hex() + `\"}, \"x\": 1}", "source": {"connector": "mongodb"}}}`, false,
			op{kind: opReplace, id: oid, doc: bson.D{{Key: "_id", Value: oid}, {Key: "x", Value: int32(1)}}}},
		{"an update without after applies its description", nil, oidKey,
			`{"op": "u", "after": null, "updateDescription": {"updatedFields": "{\"a.b\": 2}", "removedFields": ["c"], "truncatedArrays": [{"field": "arr", "newSize": 1}]}, "source": {}}`, false,
			op{kind: opUpdate, id: oid, set: bson.D{{Key: "a.b", Value: int32(2)}}, unset: []string{"c"}, truncated: []truncation{{"arr", 1}}}},
		{"an update without after nor description writes nothing", nil, oidKey,
			`{"op": "u", "after": null, "updateDescription": null, "source": {}}`, false, op{kind: opSkip}},
		{"a delete deletes the key's id", nil, oidKey, `{"op": "d", "after": null, "before": null, "source": {}}`, false,
			op{kind: opDelete, id: oid}},
		{"mongorelay's document shape drops the added fields", nil, "", `{"_id": 3, "v": 1, "__op": "u", "__ts_ms": 5, "__source_db": "x"}`, false,
			op{kind: opReplace, id: int32(3), doc: bson.D{{Key: "_id", Value: int32(3)}, {Key: "v", Value: int32(1)}}}},
		{"a MongoDB change event", nil, "", `{"operationType": "insert", "documentKey": {"_id": 4}, "fullDocument": {"_id": 4, "q": true}}`, false,
			op{kind: opReplace, id: int32(4), doc: bson.D{{Key: "_id", Value: int32(4)}, {Key: "q", Value: true}}}},
		{"handler none writes an envelope as a document", map[string]string{"change.data.capture.handler": HandlerNone}, "",
			`{"_id": 5, "op": "d", "source": {}}`, false,
			op{kind: opReplace, id: int32(5), doc: bson.D{{Key: "_id", Value: int32(5)}, {Key: "op", Value: "d"}, {Key: "source", Value: bson.D{}}}}},
		{"a BSON value is read as BSON, not Avro", nil, "", string(bsonValue), false,
			op{kind: opReplace, id: int32(1), doc: bson.D{{Key: "_id", Value: int32(1)}, {Key: "s", Value: strings.Repeat("x", 234)}}}},
		{"handler mongorelay writes a plain document as its document shape", map[string]string{"change.data.capture.handler": HandlerMongoRelay},
			"", `{"_id": 6, "w": 1}`, false, op{kind: opReplace, id: int32(6), doc: bson.D{{Key: "_id", Value: int32(6)}, {Key: "w", Value: int32(1)}}}},
		{"kafka-metadata ids", map[string]string{"document.id.strategy": "com.mongodb.kafka.connect.sink.processor.id.strategy.KafkaMetaDataStrategy"},
			"", `{"_id": 1}`, false, op{kind: opReplace, id: "t-2-7", doc: bson.D{{Key: "_id", Value: "t-2-7"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, tt.cfg)
			c := &converter{cfg: cfg, dec: &decoder{format: cfg.ValueFormat}}
			r := &kgo.Record{Topic: "t", Partition: 2, Offset: 7}
			if tt.key != "" {
				r.Key = []byte(tt.key)
			}
			if !tt.null {
				r.Value = []byte(tt.value)
			}
			got, err := c.convert(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("convert =\n %#v\nwant\n %#v", got, tt.want)
			}
		})
	}
}

func TestConvertRefusesRecordsItCannotWrite(t *testing.T) {
	big, err := bson.Marshal(bson.D{{Key: "_id", Value: 1}, {Key: "b", Value: bson.Binary{Data: make([]byte, maxDocument)}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct{ key, value string }{
		"no id anywhere":         {"", `{"a": 1}`},
		"BSON over 16 MiB":       {"", string(big)},
		"not a document":         {"", `[1, 2]`},
		"binary garbage":         {"", "\xff\xfe"},
		"a delete naming no _id": {"", `{"op": "d", "after": null, "source": {}}`},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := mustParse(t, nil)
			c := &converter{cfg: cfg, dec: &decoder{format: cfg.ValueFormat}}
			_, err := c.convert(context.Background(), &kgo.Record{Value: []byte(tt.value)})
			if !errors.Is(err, errBadRecord) {
				t.Fatalf("convert = %v, want a bad record", err)
			}
		})
	}
}

func TestParseNamesEveryBadKeyAndItsFix(t *testing.T) {
	_, err := Parse("s", map[string]string{"connector.class": Class, "mongodb.connection.string": "http://x",
		"topics": "a", "topics.regex": "b.*", "writemodel.strategy": "upsert", "databse": "d",
		"errors.deadletterqueue.topic.name": "dlq", "document.id.strategy": "bson-oid"})
	if err == nil {
		t.Fatal("Parse accepted a bad config")
	}
	for _, want := range []string{`"mongodb.connection.string"`, `"topics": and topics.regex are both given`,
		`"writemodel.strategy": "upsert" is not one of`, `"databse": is not a key of the mongodb-sink connector (did you mean "database"?)`,
		`"database": is required`, `needs errors.tolerance=all`, `"document.id.strategy"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	_, err = Parse("s", map[string]string{"connector.class": ClassAlias, "connection.uri": "mongodb://h", "topics": "t",
		"database": "d", "value.projection.list": "a"})
	if err == nil || !strings.Contains(err.Error(), `"value.projection.list": is the MongoDB Kafka Connector's and not implemented yet`) {
		t.Errorf("a key that changes what MKC writes: %v", err)
	}
	cfg := mustParse(t, map[string]string{"topic.override.t.collection": "c2", "connection.uri": "mongodb://h", "max.num.retries": "3"})
	if !slices.Equal(cfg.Ignored, []string{"max.num.retries"}) {
		t.Errorf("Ignored = %v, want MKC's retry key", cfg.Ignored)
	}
	if got := cfg.CollectionOf("t"); got != "c2" {
		t.Errorf("CollectionOf(t) = %q, want the override", got)
	}
	if got := cfg.CollectionOf("u"); got != "u" {
		t.Errorf("CollectionOf(u) = %q, want the topic's name", got)
	}
}

// BenchmarkConvert measures the hot path of a sink task: a record of about 1 KB of JSON (the
// bench's sink workload's shape) read into its write.
func BenchmarkConvert(b *testing.B) {
	value := []byte(`{"_id": 12345, "customer": "c000042", "status": "paid", "total": 1234.56, "created": "2024-03-13T10:00:00Z", ` +
		`"address": {"city": "Oslo", "zip": "01500", "lines": ["Street 1", "Floor 2"]}, "items": [` +
		strings.Repeat(`{"sku": "sku-00042", "qty": 3, "price": 12.5, "note": "`+strings.Repeat("x", 60)+`"}, `, 5) +
		`{"sku": "sku-00043", "qty": 1, "price": 99.99, "note": "last"}], "tags": ["gift", "b2b"]}`)
	cfg, err := Parse("s", map[string]string{"connector.class": Class, "mongodb.connection.string": "mongodb://h", "topics": "t", "database": "d"})
	if err != nil {
		b.Fatal(err)
	}
	c := &converter{cfg: cfg, dec: &decoder{format: cfg.ValueFormat}}
	r := &kgo.Record{Key: []byte("12345"), Value: value}
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.convert(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPlainJSONReadsAsTheDriverDoes checks the hot path's JSON reader against the driver's
// relaxed Extended JSON reader, value for value and type for type.
func TestPlainJSONReadsAsTheDriverDoes(t *testing.T) {
	for _, text := range []string{
		`{"a": 1, "b": -2147483648, "c": 2147483648, "d": -9223372036854775808, "e": 1.5, "f": 1e3, "g": -0, "h": 0.0}`,
		`{"s": "x\"y\\u00e9\n", "t": true, "f": false, "n": null, "nested": {"z": [1, "two", {"three": [3.25]}], "y": {}}, "arr": []}`,
		`{"z": 1, "a": 2, "m": {"k2": 1, "k1": 2}}`,
		`[1, {"a": null}]`, `"text"`, `42`, `12345678901`,
	} {
		got, ok, err := parsePlainJSON([]byte(text))
		if !ok || err != nil {
			t.Fatalf("parsePlainJSON(%s) = %v, %v", text, ok, err)
		}
		var want bson.D
		if err := bson.UnmarshalExtJSON([]byte(`{"v":`+text+`}`), false, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want[0].Value) {
			t.Errorf("%s:\n got  %#v\n want %#v", text, got, want[0].Value)
		}
	}
	if _, ok, _ := parsePlainJSON([]byte(`{"_id": {"$oid": "65f1a2b3c4d5e6f708192a3b"}}`)); ok {
		t.Error("Extended JSON read by the plain reader")
	}
	if _, _, err := parsePlainJSON([]byte(`{"a": 1} {"b": 2}`)); err == nil {
		t.Error("two values read as one")
	}
}
