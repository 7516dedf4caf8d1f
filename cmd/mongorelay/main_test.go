package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/registry"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"version", []string{"version"}, 0, "mongorelay dev (commit unknown, built unknown, go", ""},
		{"help", []string{"help"}, 0, "usage: mongorelay", ""},
		{"no command", nil, exitUsage, "", "usage: mongorelay"},
		{"unknown command", []string{"frobnicate"}, exitUsage, "", `unknown command "frobnicate"`},
		{"standalone --help", []string{"standalone", "--help"}, 0, "", "usage: mongorelay standalone"},
		{"worker --help", []string{"worker", "--help"}, 0, "", "usage: mongorelay worker"},
		{"worker leave -h", []string{"worker", "leave", "-h"}, 0, "", "usage: mongorelay worker leave"},
		{"healthcheck --help", []string{"healthcheck", "--help"}, 0, "", "usage: mongorelay healthcheck"},
		{"healthcheck of nothing", []string{"healthcheck", "--http", "127.0.0.1:1", "--timeout", "2s"}, 1, "", `mongorelay healthcheck: Get "http://127.0.0.1:1/health"`},
		{"consume --help", []string{"consume", "--help"}, 0, "", "usage: mongorelay consume"},
		{"config --help", []string{"config", "--help"}, 0, "", "usage: mongorelay config"},
		{"config docs worker", []string{"config", "docs", "worker"}, 0, "| `kafka.bootstrap.servers` |", ""},
		{"config docs nothing", []string{"config", "docs", "nothing"}, 1, "", `config docs "nothing": choose connector or worker`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr: %s)", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout = %q, want it to contain %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tt.wantStderr)
			}
			if n := strings.Count(stdout.String()+stderr.String(), "usage: mongorelay"); tt.wantCode == 0 && n > 1 {
				t.Errorf("the usage is printed %d times, want once:\n%s%s", n, stdout.String(), stderr.String())
			}
			if strings.Contains(stderr.String(), "help requested") {
				t.Errorf("stderr = %q: --help is no error", stderr.String())
			}
		})
	}
}

// TestReferencePagesAreCurrent: the committed reference pages are what the code generates, so
// they cannot drift from the keys the code accepts. make docs writes them again.
func TestReferencePagesAreCurrent(t *testing.T) {
	for _, page := range []struct{ file, what string }{
		{"../../docs/connector-config.md", "connector"},
		{"../../docs/worker-config.md", "worker"},
	} {
		var want, stderr bytes.Buffer
		if code := run(context.Background(), []string{"config", "docs", page.what}, &want, &stderr); code != 0 {
			t.Fatalf("config docs %s: exit %d: %s", page.what, code, stderr.String())
		}
		got, err := os.ReadFile(page.file)
		if err != nil {
			t.Fatalf("%v (run make docs)", err)
		}
		if string(got) != want.String() {
			t.Errorf("%s is not what `mongorelay config docs %s` prints: run make docs and commit it", page.file, page.what)
		}
	}
}

// TestEveryReferenceKeyIsDocumented: every key of both pages has a description.
func TestEveryReferenceKeyIsDocumented(t *testing.T) {
	for _, what := range []string{"connector", "worker"} {
		var out, stderr bytes.Buffer
		if code := run(context.Background(), []string{"config", "docs", what}, &out, &stderr); code != 0 {
			t.Fatalf("config docs %s: exit %d: %s", what, code, stderr.String())
		}
		for _, line := range strings.Split(out.String(), "\n") {
			if !strings.HasPrefix(line, "| `") {
				continue
			}
			cells := strings.Split(strings.TrimSuffix(line, " |"), " | ")
			if desc := strings.TrimSpace(cells[len(cells)-1]); len(desc) < 10 {
				t.Errorf("%s reference: %s has no description", what, cells[0])
			}
		}
	}
}

func TestConsumeShowsRecordsWrittenWithoutTheRegistryAsTheyAre(t *testing.T) {
	dec := registry.NewDecoder(nil) // never asked: no part is in the wire format
	r := &kgo.Record{Topic: "t", Key: []byte(`{"$numberInt":"7"}`), Value: []byte(`{"_id":{"$numberInt":"7"},"s":"a"}`)}
	got, err := decodeRecord(context.Background(), dec, r)
	if err != nil {
		t.Fatal(err)
	}
	line, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"topic":"t","partition":0,"offset":0,"timestamp":"0001-01-01T00:00:00Z","key":{"$numberInt":"7"},"value":{"_id":{"$numberInt":"7"},"s":"a"}}`
	if string(line) != want {
		t.Errorf("got  %s\nwant %s", line, want)
	}
	r.Key = []byte(`abc`)
	if got, err = decodeRecord(context.Background(), dec, r); err != nil || got.Key != "abc" {
		t.Errorf("a text key: %#v, %v", got.Key, err)
	}
}

// TestConfigTranslateShowsWhatItChanged: `config translate` reads the peers' documented configs
// (e2e/python/dropin, whose README cites their pages) and prints the native config and each
// key it translated or defaulted.
func TestConfigTranslateShowsWhatItChanged(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"../../e2e/python/dropin/debezium-mongodb.json", []string{
			"native config:",
			`"mongodb.connection.string": "mongodb://192.168.99.100:27017/?replicaSet=rs0"`,
			`"collection.include.list": "inventory[.]*"`, // as given: matched as Debezium matches it
			`"document.mode": "json"`,
			`connector.class="io.debezium.connector.mongodb.MongoDbConnector" -> document.mode="json" (Debezium writes before and after as Extended JSON strings)`,
			"warnings (these keys do nothing in mongorelay):\n  none",
		}},
		{"../../e2e/python/dropin/debezium-tutorial-mongodb.json", []string{
			`"mongodb.connection.string": "mongodb://debezium:[hidden]@mongodb:27017/?replicaSet=rs0"`,
			`mongodb.user="debezium" -> mongodb.connection.string="mongodb://debezium:[hidden]@mongodb:27017/?replicaSet=rs0"`,
			`mongodb.password="[hidden]" -> mongodb.connection.string=`,
			`"database.include.list": "inventory"`,
			`"tasks.max": "1"`,
			"warnings (these keys do nothing in mongorelay):\n  none",
		}},
		{"../../e2e/python/dropin/mongodb-kafka-source.json", []string{
			`connection.uri="mongodb://mongo1" -> mongodb.connection.string="mongodb://mongo1"`,
			`database="Tutorial1" -> not used (read with collection)`,
			`collection="orders" -> collection.include.list="(?-i:Tutorial1\\.orders)"`,
			`connector.class="com.mongodb.kafka.connect.MongoSourceConnector" -> snapshot.mode="never"`,
			`-> value.format="json"`,
			`-> key.format="json"`,
			"without it topics are <database>.<collection>",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), []string{"config", "translate", tt.file}, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, stdout.String())
				}
			}
		})
	}
}

func TestConfigTranslateRefusesAnInvalidConfig(t *testing.T) {
	path := t.TempDir() + "/c.json"
	body := `{"name": "c", "config": {"connector.class": "com.mongodb.kafka.connect.MongoSourceConnector",
		"connection.uri": "mongodb://h:27017/", "mongodb.connection.string": "mongodb://other:27017/", "copy.existng": "true"}}`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"config", "translate", path}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, w := range []string{"keep only one of connection.uri and mongodb.connection.string", `"copy.existng": unknown key (did you mean "copy.existing"?)`} {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
		}
	}
}
