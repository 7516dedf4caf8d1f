package offsets

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestKeyBytes(t *testing.T) {
	tests := []struct {
		name string
		key  Key
		want string
	}{
		{"shard", ShardKey("orders-cdc", "shop", "orders", 0, 1),
			`["orders-cdc",{"db":"shop","coll":"orders","shard":"0-of-1"}]`},
		{"shard of many", ShardKey("c", "shop", "orders", 11, 16),
			`["c",{"db":"shop","coll":"orders","shard":"11-of-16"}]`},
		{"snapshot range", SnapshotKey("orders-cdc", "shop", "orders", 2, 8),
			`["orders-cdc",{"db":"shop","coll":"orders","snapshot":"2-of-8"}]`},
		{"quotes and backslashes", ShardKey(`my "cdc"`, `a\b`, `c"d`, 0, 1),
			`["my \"cdc\"",{"db":"a\\b","coll":"c\"d","shard":"0-of-1"}]`},
		{"non-ASCII as is", ShardKey("café", "日本", "emoji😀", 1, 2),
			`["café",{"db":"日本","coll":"emoji😀","shard":"1-of-2"}]`},
		{"HTML characters not escaped", ShardKey("<a&b>", "d", "c", 0, 1),
			`["<a&b>",{"db":"d","coll":"c","shard":"0-of-1"}]`},
		{"control characters", ShardKey("a\nb\tc\rd\be\ff\x01g\x1f", "d", "c", 0, 1),
			`["a\nb\tc\rd\be\ff\u0001g\u001f",{"db":"d","coll":"c","shard":"0-of-1"}]`},
		{"line and paragraph separators", ShardKey("a\u2028b\u2029c", "d", "c", 0, 1),
			`["a\u2028b\u2029c",{"db":"d","coll":"c","shard":"0-of-1"}]`},
		{"invalid UTF-8", ShardKey("a\xffb", "d", "c", 0, 1),
			`["a\ufffdb",{"db":"d","coll":"c","shard":"0-of-1"}]`},
		{"dots and dollars", ShardKey("c", "db.x", "system.$cmd", 0, 1),
			`["c",{"db":"db.x","coll":"system.$cmd","shard":"0-of-1"}]`},
		{"empty names", ShardKey("", "", "", 0, 1),
			`["",{"db":"","coll":"","shard":"0-of-1"}]`},
		{"sink topic partition", PartitionKey("sink", "t1", 7),
			`["sink",{"kafka_topic":"t1","kafka_partition":7}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.key.Bytes()); got != tt.want {
				t.Errorf("Bytes =\n %s\nwant\n %s", got, tt.want)
			}
			if got := tt.key.String(); got != tt.want {
				t.Errorf("String = %s", got)
			}
			if ref := referenceKey(t, tt.key); ref != tt.want {
				t.Errorf("encoding/json gives\n %s\nwant\n %s", ref, tt.want)
			}
			if !strings.Contains(tt.name, "invalid") {
				back, err := ParseKey([]byte(tt.want))
				if err != nil {
					t.Fatalf("ParseKey: %v", err)
				}
				if back != tt.key {
					t.Errorf("ParseKey = %+v, want %+v", back, tt.key)
				}
			}
		})
	}
}

// referenceKey encodes k with encoding/json from structs, the documented
// equivalent of Bytes.
func referenceKey(t testing.TB, k Key) string {
	t.Helper()
	type shard struct {
		DB    string `json:"db"`
		Coll  string `json:"coll"`
		Shard string `json:"shard"`
	}
	type snapshot struct {
		DB       string `json:"db"`
		Coll     string `json:"coll"`
		Snapshot string `json:"snapshot"`
	}
	type partition struct {
		Topic     string `json:"kafka_topic"`
		Partition int32  `json:"kafka_partition"`
	}
	slice := strings.Join([]string{itoa(k.Index), "of", itoa(k.Count)}, "-")
	var second any = shard{k.DB, k.Coll, slice}
	switch {
	case k.KafkaTopic != "":
		second = partition{k.KafkaTopic, k.KafkaPartition}
	case k.Snapshot:
		second = snapshot{k.DB, k.Coll, slice}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode([]any{k.Connector, second}); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestParseKeyRejects(t *testing.T) {
	for name, in := range map[string]string{
		"not JSON":                `nope`,
		"a map, spaces":           `["c", {"db":"d","coll":"c","shard":"0-of-1"}]`,
		"fields reordered":        `["c",{"coll":"c","db":"d","shard":"0-of-1"}]`,
		"unknown field":           `["c",{"db":"d","coll":"c","shard":"0-of-1","x":1}]`,
		"both shard and range":    `["c",{"db":"d","coll":"c","shard":"0-of-1","snapshot":"0-of-1"}]`,
		"neither":                 `["c",{"db":"d","coll":"c"}]`,
		"bad slice":               `["c",{"db":"d","coll":"c","shard":"0of1"}]`,
		"three elements":          `["c",{"db":"d","coll":"c","shard":"0-of-1"},1]`,
		"escaped differently":     `["\u0063",{"db":"d","coll":"c","shard":"0-of-1"}]`,
		"HTML-escaped":            `["\u003ca",{"db":"d","coll":"c","shard":"0-of-1"}]`,
		"connector not a string":  `[1,{"db":"d","coll":"c","shard":"0-of-1"}]`,
		"partition without topic": `["c",{"kafka_partition":1}]`,
		"partition reordered":     `["c",{"kafka_partition":1,"kafka_topic":"t"}]`,
		"partition and shard":     `["c",{"kafka_topic":"t","kafka_partition":1,"shard":"0-of-1"}]`,
	} {
		if k, err := ParseKey([]byte(in)); err == nil {
			t.Errorf("%s: ParseKey(%s) = %+v, want an error", name, in, k)
		}
	}
}

func FuzzKeyBytes(f *testing.F) {
	f.Add("orders-cdc", "shop", "orders", 3, 8, false)
	f.Add("a\"b\\c", "\u2028\x00", "日本\xff", 0, 1, true)
	f.Fuzz(func(t *testing.T, connector, db, coll string, i, n int, snapshot bool) {
		k := Key{Connector: connector, DB: db, Coll: coll, Snapshot: snapshot, Index: i, Count: n}
		got := string(k.Bytes())
		if ref := referenceKey(t, k); got != ref {
			t.Fatalf("Bytes = %s, encoding/json = %s", got, ref)
		}
		if !json.Valid([]byte(got)) {
			t.Fatalf("invalid JSON %s", got)
		}
		if i < 0 || n < 0 || !utf8.ValidString(connector) || !utf8.ValidString(db) || !utf8.ValidString(coll) {
			// "-1-of-2" does not split back, and invalid UTF-8 reads
			// back as U+FFFD; neither is ever built from real names.
			return
		}
		back, err := ParseKey([]byte(got))
		if err != nil {
			t.Fatalf("ParseKey(%s): %v", got, err)
		}
		if !bytes.Equal(back.Bytes(), []byte(got)) {
			t.Fatalf("round trip changed the bytes: %s -> %s", got, back.Bytes())
		}
	})
}
