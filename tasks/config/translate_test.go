package config

import (
	"maps"
	"strings"
	"testing"
)

// mkc is a MongoDB Kafka Connector config with kv added.
func mkc(kv ...string) map[string]string {
	m := map[string]string{"connector.class": ClassMongoKafka, "connection.uri": goodURI}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// debezium is a Debezium MongoDB connector config with kv added.
func debezium(kv ...string) map[string]string {
	return with(append([]string{"connector.class", ClassDebezium}, kv...)...)
}

const unwrap = "io.debezium.connector.mongodb.transforms.ExtractNewDocumentState"

func TestEachForeignKeyBecomesItsNativeKey(t *testing.T) {
	tests := []struct {
		name  string
		given map[string]string
		want  map[string]string // native entries the translation must hold
	}{
		{"connection.uri is the connection string", mkc(), map[string]string{"mongodb.connection.string": goodURI}},
		{"MKC defaults to startup.mode=latest, JSON values and keys, no tombstones", mkc(),
			map[string]string{"snapshot.mode": "never", "value.format": "json", "key.format": "json", "tombstones.on.delete": "false"}},
		{"database alone selects that database", mkc("database", "shop.v1"), map[string]string{"database.include.list": `(?-i:shop\.v1)`}},
		{"database and collection select one collection", mkc("database", "shop", "collection", "orders"),
			map[string]string{"collection.include.list": `(?-i:shop\.orders)`}},
		{"filters.match.mode=literal quotes each name", debezium("filters.match.mode", "literal", "collection.include.list", ` shop.orders,a\b `),
			map[string]string{"collection.include.list": `shop\.orders,a\x5cb`}},
		{"copy.existing=true copies first", mkc("copy.existing", "true"), map[string]string{"snapshot.mode": "initial"}},
		{"copy.existing=false streams only", mkc("copy.existing", "false"), map[string]string{"snapshot.mode": "never"}},
		{"startup.mode=copy_existing copies first", mkc("startup.mode", "copy_existing"), map[string]string{"snapshot.mode": "initial"}},
		{"startup.mode=latest streams only", mkc("startup.mode", "latest"), map[string]string{"snapshot.mode": "never"}},
		{"publish.full.document.only writes the document", mkc("publish.full.document.only", "true"),
			map[string]string{"output.shape": "document", "tombstones.on.delete": "false"}},
		{"publish.full.document.only.tombstone.on.delete writes tombstones",
			mkc("publish.full.document.only", "true", "publish.full.document.only.tombstone.on.delete", "true"),
			map[string]string{"output.shape": "document", "tombstones.on.delete": "true"}},
		{"output.format.value=json", mkc("output.format.value", "json"), map[string]string{"value.format": "json"}},
		{"output.format.value=schema follows the converter", mkc("output.format.value", "schema", "value.converter", converterAvro),
			map[string]string{"value.format": "avro"}},
		{"output.format.value=schema without a converter is avro", mkc("output.format.value", "schema"), map[string]string{"value.format": "avro"}},
		{"Debezium's tombstones.on.delete=false: no tombstone for the transform to keep",
			debezium("tombstones.on.delete", "false", "transforms", "unwrap", "transforms.unwrap.type", unwrap, "transforms.unwrap.drop.tombstones", "false"),
			map[string]string{"tombstones.on.delete": "false"}},
		{"the transform drops the tombstone tombstones.on.delete=true writes",
			debezium("tombstones.on.delete", "true", "transforms", "unwrap", "transforms.unwrap.type", unwrap),
			map[string]string{"tombstones.on.delete": "false"}},
		{"output.format.key=json", mkc("output.format.key", "json"), map[string]string{"key.format": "json"}},
		{"change.stream.full.document=updateLookup", mkc("change.stream.full.document", "updateLookup"),
			map[string]string{"capture.mode": "change_streams_update_full"}},
		{"change.stream.full.document=default", mkc("change.stream.full.document", "default"),
			map[string]string{"capture.mode": "change_streams"}},
		{"full document with its pre-image", mkc("change.stream.full.document", "updateLookup", "change.stream.full.document.before.change", "whenAvailable"),
			map[string]string{"capture.mode": "change_streams_update_full_with_pre_image"}},
		{"poll.await.time.ms and batch.size", mkc("poll.await.time.ms", "700", "batch.size", "100"),
			map[string]string{"poll.max.wait.ms": "700", "max.batch.size": "100"}},
		{"pipeline is the same key", mkc("pipeline", `[{"$match": {"operationType": "insert"}}]`),
			map[string]string{"pipeline": `[{"$match": {"operationType": "insert"}}]`}},
		{"Debezium writes documents as JSON strings", debezium(), map[string]string{"document.mode": "json"}},
		{"Debezium's snapshot.mode=no_data is never", debezium("snapshot.mode", "no_data"), map[string]string{"snapshot.mode": "never"}},
		{"ExtractNewDocumentState writes the document and drops deletes", debezium("transforms", "unwrap", "transforms.unwrap.type", unwrap),
			map[string]string{"output.shape": "document", "tombstones.on.delete": "false"}},
		{"ExtractNewDocumentState's add.fields and drop.tombstones=false",
			debezium("transforms", "unwrap", "transforms.unwrap.type", unwrap, "transforms.unwrap.add.fields", "op,source.db", "transforms.unwrap.drop.tombstones", "false"),
			map[string]string{"output.shape": "document", "output.document.add.fields": "op,source.db", "tombstones.on.delete": "true"}},
		{"ExtractNewDocumentState's delete.tombstone.handling.mode=tombstone",
			debezium("transforms", "unwrap", "transforms.unwrap.type", unwrap, "transforms.unwrap.delete.tombstone.handling.mode", "tombstone"),
			map[string]string{"tombstones.on.delete": "true"}},
		{"JsonConverter with schemas is json_schema", debezium("value.converter", converterJSON), map[string]string{"value.format": "json_schema"}},
		{"JsonConverter without schemas is json", debezium("value.converter", converterJSON, "value.converter.schemas.enable", "false"),
			map[string]string{"value.format": "json"}},
		{"AvroConverter is avro, with its registry", debezium("value.converter", converterAvro, "value.converter.schema.registry.url", "http://registry:8081"),
			map[string]string{"value.format": "avro", "schema.registry.url": "http://registry:8081"}},
		{"StringConverter keys are strings", debezium("key.converter", converterString), map[string]string{"key.format": "string"}},
		{"JsonConverter keys without schemas are json", debezium("key.converter", converterJSON, "key.converter.schemas.enable", "false"),
			map[string]string{"key.format": "json"}},
		{"a native key and its alias may agree", mkc("mongodb.connection.string", goodURI), map[string]string{"mongodb.connection.string": goodURI}},
		{"a native key beats a class's default", mkc("snapshot.mode", "initial", "value.format", "avro"),
			map[string]string{"snapshot.mode": "initial", "value.format": "avro"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.given)
			for k, v := range tt.want {
				if got, ok := c.raw[k]; !ok || got != v {
					t.Errorf("native %s = %q (set: %v), want %q; translations: %v", k, got, ok, v, c.changes)
				}
			}
			if !maps.Equal(c.Raw(), tt.given) {
				t.Errorf("Raw() = %v, want the config as given %v", c.Raw(), tt.given)
			}
		})
	}
}

func TestMongoKafkaTopicsNeedNoPrefix(t *testing.T) {
	tests := []struct {
		name  string
		given map[string]string
		want  string
	}{
		{"no prefix", mkc(), "shop.orders"},
		{"a prefix", mkc("topic.prefix", "cdc"), "cdc.shop.orders"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustParse(t, tt.given).Topic("shop", "orders"); got != tt.want {
				t.Errorf("Topic = %q, want %q", got, tt.want)
			}
		})
	}
	if p := problemsOf(t, map[string]string{"connector.class": "mongodb", "mongodb.connection.string": goodURI}); len(p) != 1 || p[0].Key != "topic.prefix" {
		t.Errorf("a native config without topic.prefix: problems = %v, want topic.prefix required", p)
	}
}

func TestConflictingKeysAreRefusedNamingBoth(t *testing.T) {
	tests := []struct {
		name    string
		given   map[string]string
		key     string
		mention []string
	}{
		{"alias and native", mkc("mongodb.connection.string", "mongodb://other:27017/"), "connection.uri",
			[]string{"connection.uri", "mongodb.connection.string"}},
		{"two aliases", mkc("copy.existing", "true", "startup.mode", "latest"), "startup.mode", []string{"copy.existing", "startup.mode"}},
		{"transform and native shape", debezium("transforms", "unwrap", "transforms.unwrap.type", unwrap, "output.shape", "envelope"),
			"transforms.unwrap.type", []string{"transforms.unwrap.type", "output.shape"}},
		{"converter and native format", debezium("value.converter", converterAvro, "value.format", "json"), "value.converter",
			[]string{"value.converter", "value.format"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problems := problemsOf(t, tt.given)
			if len(problems) != 1 || problems[0].Key != tt.key {
				t.Fatalf("problems = %v, want one about %s", problems, tt.key)
			}
			for _, m := range tt.mention {
				if !strings.Contains(problems[0].Message, m) {
					t.Errorf("message %q does not name %s", problems[0].Message, m)
				}
			}
			if strings.Contains(problems[0].Message, "S3cr3tPa55") {
				t.Errorf("message %q shows the password", problems[0].Message)
			}
		})
	}
}

func TestUntranslatableValuesAreRefused(t *testing.T) {
	tests := []struct {
		name  string
		given map[string]string
		key   string
		want  string
	}{
		{"startup.mode=timestamp", mkc("startup.mode", "timestamp"), "startup.mode", "PATCH /connectors/{name}/offsets"},
		{"output.format.value=bson", mkc("output.format.value", "bson"), "output.format.value", "not supported yet"},
		{"post-images", mkc("change.stream.full.document", "required"), "change.stream.full.document", "not supported yet"},
		{"a collection without its database", mkc("collection", "orders"), "collection", "set database too"},
		{"another transform", debezium("transforms", "route", "transforms.route.type", "org.apache.kafka.connect.transforms.RegexRouter"),
			"transforms.route.type", "no single message transforms"},
		{"a transform option with no translation", debezium("transforms", "unwrap", "transforms.unwrap.type", unwrap, "transforms.unwrap.array.encoding", "document"),
			"transforms.unwrap.array.encoding", "not supported yet"},
		{"deletes rewritten", debezium("transforms", "unwrap", "transforms.unwrap.type", unwrap, "transforms.unwrap.delete.handling.mode", "rewrite"),
			"transforms.unwrap.delete.handling.mode", "not supported yet"},
		{"a converter with no format", debezium("value.converter", "org.apache.kafka.connect.converters.ByteArrayConverter"), "value.converter", "not supported yet"},
		{"a filters.match.mode Debezium lacks", debezium("filters.match.mode", "glob"), "filters.match.mode", "not one of regex, literal"},
		{"literal names held by a reference", debezium("filters.match.mode", "literal", "collection.include.list", "${env:MR_TEST_COLLECTIONS}"),
			"filters.match.mode", "config provider reference"},
	}
	t.Setenv("MR_TEST_COLLECTIONS", "shop.orders")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problems := problemsOf(t, tt.given)
			if len(problems) != 1 || problems[0].Key != tt.key || !strings.Contains(problems[0].Message, tt.want) {
				t.Errorf("problems = %v, want one about %s saying %q", problems, tt.key, tt.want)
			}
		})
	}
}

func TestFrameworkKeysThatMeanNothingHereAreWarnings(t *testing.T) {
	c := mustParse(t, debezium("errors.log.enable", "true", "header.converter", "org.apache.kafka.connect.storage.SimpleHeaderConverter"))
	_, changes := c.Translation()
	warned := map[string]bool{}
	for _, ch := range changes {
		if ch.Warning {
			warned[ch.From] = true
		}
	}
	for _, k := range []string{"errors.log.enable", "header.converter"} {
		if !warned[k] {
			t.Errorf("%s: no warning in %v", k, changes)
		}
	}
}

func TestForeignKeysAreShownRedacted(t *testing.T) {
	c := mustParse(t, mkc("value.converter", converterAvro, "value.converter.schema.registry.url", "http://u:pw@registry:8081"))
	shown := c.Redacted()
	if got := shown["connection.uri"]; strings.Contains(got, "S3cr3tPa55") || !strings.Contains(got, "db1:27017") {
		t.Errorf("connection.uri shown as %q, want its password hidden and the rest shown", got)
	}
	if got := shown["value.converter.schema.registry.url"]; strings.Contains(got, "pw") {
		t.Errorf("the converter's registry URL shown as %q", got)
	}
	if got := shown["value.converter"]; got != converterAvro {
		t.Errorf("value.converter shown as %q, want as given", got)
	}
	native, changes := c.Translation()
	if strings.Contains(native["mongodb.connection.string"], "S3cr3tPa55") {
		t.Errorf("native connection string shown as %q", native["mongodb.connection.string"])
	}
	for _, ch := range changes {
		if strings.Contains(ch.String(), "S3cr3tPa55") || strings.Contains(ch.String(), ":pw@") {
			t.Errorf("change %s shows a secret", ch)
		}
	}
}

// TestMongoKafkaNamespaceMapsRouteWithoutAPrefix: an MKC config's topic.namespace.map is the
// native key, and with no topic.prefix its topics have no leading '.'.
func TestMongoKafkaNamespaceMapsRouteWithoutAPrefix(t *testing.T) {
	c, err := Parse("c", mkc("database", "shop", "topic.namespace.map", `{"shop": "sales", "shop.refunds": "money"}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ coll, want string }{{"orders", "sales.orders"}, {"refunds", "money"}} {
		if got := c.Topic("shop", tc.coll); got != tc.want {
			t.Errorf("Topic(shop, %s) = %q, want %q", tc.coll, got, tc.want)
		}
	}
	if got := c.CollectionTopic("shop", "refunds"); got != "shop.refunds" {
		t.Errorf("CollectionTopic(shop, refunds) = %q, want shop.refunds", got)
	}
}

// TestDebeziumCredentialsGoIntoTheConnectionString: mongodb.user, mongodb.password and
// mongodb.authsource (Debezium's default: admin) become the connection string's userinfo and
// authSource, percent-encoded;
// credentials given both ways are refused naming both, and a change never shows the password.
func TestDebeziumCredentialsGoIntoTheConnectionString(t *testing.T) {
	const bare = "mongodb://db1:27017,db2:27017/?replicaSet=rs0"
	for _, tc := range []struct {
		name    string
		uri     string // the connection string given; bare when empty
		kv      []string
		want    string // the translated connection string; "" for a refusal
		refusal string
	}{
		{name: "user and password", kv: []string{"mongodb.user", "cdc", "mongodb.password", "p@ss:w/rd %"},
			want: "mongodb://cdc:p%40ss%3Aw%2Frd%20%25@db1:27017,db2:27017/?replicaSet=rs0"},
		{name: "with an authentication database", kv: []string{"mongodb.user", "cdc", "mongodb.password", "pw", "mongodb.authsource", "admin"},
			want: "mongodb://cdc:pw@db1:27017,db2:27017/?replicaSet=rs0&authSource=admin"},
		{name: "a password alone", kv: []string{"mongodb.password", "pw"}, refusal: "without mongodb.user"},
		// Debezium's mongodb.authsource defaults to admin; the driver's authSource to the path's database.
		{name: "a database in the path is not where the user is", uri: "mongodb://db1:27017/inventory?replicaSet=rs0", kv: []string{"mongodb.user", "cdc", "mongodb.password", "pw"},
			want: "mongodb://cdc:pw@db1:27017/inventory?replicaSet=rs0&authSource=admin"},
		{name: "a database in the path, without options", uri: "mongodb://db1:27017/inventory", kv: []string{"mongodb.user", "cdc"},
			want: "mongodb://cdc@db1:27017/inventory?authSource=admin"},
		{name: "the connection string's authSource=admin agrees", uri: bare + "&authSource=admin", kv: []string{"mongodb.user", "cdc"},
			want: "mongodb://cdc@db1:27017,db2:27017/?replicaSet=rs0&authSource=admin"},
		{name: "the connection string's authSource, which Debezium ignores", uri: bare + "&authSource=users", kv: []string{"mongodb.user", "cdc"},
			refusal: "set mongodb.authsource=users"},
		{name: "mongodb.authsource against the connection string's", uri: bare + "&authSource=users", kv: []string{"mongodb.user", "cdc", "mongodb.authsource", "admin"},
			refusal: "keep only one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uri := tc.uri
			if uri == "" {
				uri = bare
			}
			given := debezium(append([]string{"mongodb.connection.string", uri}, tc.kv...)...)
			native, changes, problems := translate(given)
			if tc.refusal != "" {
				if len(problems) == 0 || !strings.Contains(problems[0].String(), tc.refusal) {
					t.Fatalf("problems %v, want one saying %q", problems, tc.refusal)
				}
				return
			}
			if len(problems) > 0 {
				t.Fatalf("problems: %v", problems)
			}
			if got := native["mongodb.connection.string"]; got != tc.want {
				t.Errorf("connection string %q, want %q", got, tc.want)
			}
			if _, err := Parse("c", given); err != nil {
				t.Errorf("Parse: %v", err)
			}
			for _, ch := range changes {
				if strings.Contains(ch.String(), "rd%20") || strings.Contains(ch.String(), `"pw"`) {
					t.Errorf("a change shows the password: %s", ch)
				}
			}
		})
	}
	_, _, problems := translate(debezium("mongodb.connection.string", goodURI, "mongodb.user", "other"))
	if len(problems) == 0 || !strings.Contains(problems[0].String(), "credentials of its own") {
		t.Errorf("credentials given both ways: problems %v, want a conflict", problems)
	}
}

// TestMongoKafkaUpdatesCarryWhatChanged: without change.stream.full.document, an MKC config's
// updates carry their changes and no looked-up document, as the MongoDB Kafka Connector's
// default; publish.full.document.only looks documents up, as it does there.
func TestMongoKafkaUpdatesCarryWhatChanged(t *testing.T) {
	for _, tc := range []struct {
		name string
		kv   []string
		want CaptureMode
	}{
		{"the default", nil, CaptureChangeStreams},
		{"publish.full.document.only", []string{"publish.full.document.only", "true"}, CaptureUpdateFull},
		{"updateLookup asked for", []string{"change.stream.full.document", "updateLookup"}, CaptureUpdateFull},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("c", mkc(append([]string{"database", "shop"}, tc.kv...)...))
			if err != nil {
				t.Fatal(err)
			}
			if c.CaptureMode != tc.want {
				t.Errorf("capture.mode %s, want %s", c.CaptureMode, tc.want)
			}
		})
	}
}

// TestIncludeListsMatchAsThePeersDo pins which collections a peer's include lists select, as
// the peer selects them. Debezium (2.x and 3.x, filters.match.mode=regex, its default) compiles
// each comma-separated expression with Pattern.CASE_INSENSITIVE (Strings.setOfRegex, called by
// Predicates.includes) and keeps a collection when one matches the whole of <db>.<collection>
// (Matcher.matches, in Predicates.matchedByPattern; its MongoDB documentation says "anchored"
// and "does not match substrings"). The change stream pipeline's unanchored $regex on the
// namespace only pre-filters: every event still passes EventDispatcher's filter, the same
// Predicates.includes. So the example configuration of its documentation,
// collection.include.list=inventory[.]* ("inventory" and then dots only), selects no
// collection there, nor here. With filters.match.mode=literal Debezium compares the trimmed
// names, lowercased, with the whole lowercased name. The MongoDB Kafka Connector watches
// exactly the database and collection it names, case and all.
func TestIncludeListsMatchAsThePeersDo(t *testing.T) {
	tests := []struct {
		name     string
		given    map[string]string
		included []string // namespaces db.coll selected
		excluded []string // and not
	}{
		{"Debezium's documented example selects nothing", debezium("collection.include.list", "inventory[.]*"),
			nil, []string{"inventory.customers", "inventory.orders", "inventory..x"}},
		{"a collection expression matches the whole namespace", debezium("collection.include.list", "inventory[.].*"),
			[]string{"inventory.customers", "inventory.orders"}, []string{"inventory2.customers", "shop.inventory"}},
		{"a database name alone is no prefix of a namespace", debezium("collection.include.list", "inventory"),
			nil, []string{"inventory.customers"}},
		{"a collection name alone matches no namespace", debezium("collection.include.list", "customers"),
			nil, []string{"inventory.customers"}},
		{"expressions match case-insensitively", debezium("collection.include.list", `INVENTORY\.Customers`),
			[]string{"inventory.customers", "Inventory.CUSTOMERS"}, []string{"inventory.customers2"}},
		{"the tutorial's database.include.list matches the whole database name", debezium("database.include.list", "inventory"),
			[]string{"inventory.customers", "Inventory.orders"}, []string{"inventory_archive.customers", "old_inventory.customers"}},
		{"filters.match.mode=regex is the default", debezium("filters.match.mode", "regex", "collection.include.list", "inventory[.]*"),
			nil, []string{"inventory.customers"}},
		{"filters.match.mode=literal compares whole names, case-insensitively",
			debezium("filters.match.mode", "literal", "collection.include.list", "inventory.customers, Shop.Orders"),
			[]string{"inventory.customers", "INVENTORY.Customers", "shop.orders"}, []string{"inventoryXcustomers.x", "shop.orders2", "inventory.customer"}},
		{"filters.match.mode=literal database names", debezium("filters.match.mode", "literal", "database.exclude.list", "inventory"),
			[]string{"inventory2.x", "shop.x"}, []string{"inventory.customers", "Inventory.x"}},
		{"the MongoDB Kafka Connector's database and collection, case and all", mkc("database", "Tutorial1", "collection", "orders"),
			[]string{"Tutorial1.orders"}, []string{"Tutorial1.Orders", "tutorial1.orders", "Tutorial1.orders2"}},
		{"the MongoDB Kafka Connector's database, case and all", mkc("database", "Tutorial1"),
			[]string{"Tutorial1.orders", "Tutorial1.Orders"}, []string{"tutorial1.orders", "Tutorial10.orders"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.given)
			for want, namespaces := range map[bool][]string{true: tt.included, false: tt.excluded} {
				for _, ns := range namespaces {
					db, coll, _ := strings.Cut(ns, ".")
					if got := c.Includes(db, coll); got != want {
						t.Errorf("Includes(%q, %q) = %v, want %v", db, coll, got, want)
					}
				}
			}
		})
	}
}
