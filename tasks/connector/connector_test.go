package connector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// fakeKind is a kind whose every call says which kind answered.
type fakeKind struct{ plugin Plugin }

func (k fakeKind) Plugin() Plugin         { return k.plugin }
func (k fakeKind) ConfigDef() []ConfigKey { return nil }
func (k fakeKind) Validate(_ string, c map[string]string) (map[string]string, error) {
	return map[string]string{"validated.by": k.plugin.Class}, nil
}
func (k fakeKind) Redact(string, map[string]string) map[string]string {
	return map[string]string{"redacted.by": k.plugin.Class}
}
func (k fakeKind) Check(context.Context, string, map[string]string) error { return nil }
func (k fakeKind) Expand(context.Context, string, map[string]string) ([]taskid.Spec, error) {
	return []taskid.Spec{{DB: k.plugin.Class, Coll: "c", Shards: 1}}, nil
}
func (k fakeKind) Run(context.Context, Task) error { return fmt.Errorf("run by %s", k.plugin.Class) }

func TestCatalogFindsTheKindOfAClass(t *testing.T) {
	catalog, err := NewCatalog(
		fakeKind{Plugin{Class: "src", Aliases: []string{"com.example.Source"}, Type: Source}},
		fakeKind{Plugin{Class: "snk", Type: Sink}},
	)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		class, want string
		typ         Type
	}{
		{"src", "src", Source},
		{"com.example.Source", "src", Source},
		{" snk ", "snk", Sink},
	}
	for _, tt := range tests {
		t.Run(tt.class, func(t *testing.T) {
			cfg := map[string]string{ClassKey: tt.class}
			if got, _ := catalog.Validate("c", cfg); got["validated.by"] != tt.want {
				t.Errorf("validated by %v, want %s", got, tt.want)
			}
			if got := catalog.Redact("c", cfg); got["redacted.by"] != tt.want {
				t.Errorf("redacted by %v, want %s", got, tt.want)
			}
			if got := catalog.Type(cfg); got != tt.typ {
				t.Errorf("type %s, want %s", got, tt.typ)
			}
			if specs, _ := catalog.Expand(context.Background(), "c", cfg); len(specs) != 1 || specs[0].DB != tt.want {
				t.Errorf("expanded by %v, want %s", specs, tt.want)
			}
			if err := catalog.Run(context.Background(), Task{Config: cfg}); err == nil || err.Error() != "run by "+tt.want {
				t.Errorf("run: %v, want run by %s", err, tt.want)
			}
		})
	}
}

func TestCatalogRefusesAConfigOfNoKind(t *testing.T) {
	catalog, err := NewCatalog(fakeKind{Plugin{Class: "src"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, class := range []string{"", "nope"} {
		cfg := map[string]string{ClassKey: class, "password": "s3cret"}
		_, err := catalog.Validate("c", cfg)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Problems[0].Key != ClassKey || !strings.Contains(ve.Error(), "src") {
			t.Errorf("class %q: %v, want a problem with connector.class naming the classes", class, err)
		}
		if got := catalog.Redact("c", cfg); got["password"] != Hidden {
			t.Errorf("class %q: redacted %v, want every value hidden", class, got)
		}
		if err := catalog.Run(context.Background(), Task{Connector: "c", Config: cfg}); !IsPermanent(err) {
			t.Errorf("class %q: run %v, want a permanent error", class, err)
		}
	}
	if _, err := NewCatalog(fakeKind{Plugin{Class: "a"}}, fakeKind{Plugin{Class: "b", Aliases: []string{"a"}}}); err == nil {
		t.Error("two kinds claiming one class were accepted")
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("history lost")
	err := fmt.Errorf("task x: %w", Permanent(base))
	if !IsPermanent(err) || !errors.Is(err, base) || err.Error() != "task x: history lost" {
		t.Errorf("Permanent wrapped: %v (permanent %v)", err, IsPermanent(err))
	}
	if IsPermanent(base) || Permanent(nil) != nil {
		t.Error("an unmarked error is permanent, or Permanent(nil) is not nil")
	}
}

func TestConfigFromJSON(t *testing.T) {
	raw, err := ConfigFromJSON([]byte(`{"a": "x", "n": 8, "b": true, "skip": null, "p": [ {"$match": {}} ]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "x", "n": "8", "b": "true", "p": `[{"$match":{}}]`}
	if fmt.Sprint(raw) != fmt.Sprint(want) {
		t.Errorf("ConfigFromJSON = %v, want %v", raw, want)
	}
	for _, bad := range []string{`[]`, `{"a": }`} {
		if _, err := ConfigFromJSON([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

// hidingKind redacts as a real kind does: password whole, the password inside uri.
type hidingKind struct{ fakeKind }

func (hidingKind) Redact(_ string, c map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range c {
		switch k {
		case "password":
			v = Hidden
		case "uri":
			v = strings.Replace(v, "s3cret", Hidden, 1)
		}
		out[k] = v
	}
	return out
}

func TestRestoreHiddenKeepsTheStoredSecrets(t *testing.T) {
	catalog, err := NewCatalog(hidingKind{fakeKind{Plugin{Class: "src"}}})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]string{ClassKey: "src", "password": "s3cret", "uri": "mongodb://u:s3cret@h1/", "topic": "t"}
	tests := []struct {
		name       string
		sent, want map[string]string
	}{
		{"sent back as shown",
			map[string]string{ClassKey: "src", "password": Hidden, "uri": "mongodb://u:[hidden]@h1/", "topic": "t2"},
			map[string]string{ClassKey: "src", "password": "s3cret", "uri": "mongodb://u:s3cret@h1/", "topic": "t2"}},
		{"new values",
			map[string]string{ClassKey: "src", "password": "n3w", "uri": "mongodb://u:${env:PW}@h1/"},
			map[string]string{ClassKey: "src", "password": "n3w", "uri": "mongodb://u:${env:PW}@h1/"}},
		// A [hidden] in a changed value cannot say what it stands for: Validate refuses it.
		{"changed around a hidden",
			map[string]string{ClassKey: "src", "uri": "mongodb://u:[hidden]@h2/"},
			map[string]string{ClassKey: "src", "uri": "mongodb://u:[hidden]@h2/"}},
		{"hidden for a key not stored",
			map[string]string{ClassKey: "src", "other": Hidden},
			map[string]string{ClassKey: "src", "other": Hidden}},
	}
	for _, tt := range tests {
		got := catalog.RestoreHidden("c", tt.sent, stored)
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: RestoreHidden = %v, want %v", tt.name, got, tt.want)
		}
	}
	sent := map[string]string{"password": Hidden}
	if got := catalog.RestoreHidden("c", sent, nil); got["password"] != Hidden {
		t.Errorf("with nothing stored: %v, want the config as sent", got)
	}
}

// namingKind names one topic per collection shard, <db>.<coll>.
type namingKind struct{ fakeKind }

func (namingKind) Topics(_ string, _ map[string]string, spec taskid.Spec) ([]string, error) {
	var out []string
	for _, u := range spec.Units() {
		out = append(out, u.DB+"."+u.Coll)
	}
	return out, nil
}

func TestCatalogTopicsAreSortedOnceEachAndOnlyFromKindsThatNameThem(t *testing.T) {
	c, err := NewCatalog(namingKind{fakeKind{Plugin{Class: "naming"}}}, fakeKind{Plugin{Class: "silent"}})
	if err != nil {
		t.Fatal(err)
	}
	specs := []taskid.Spec{
		{Members: []taskid.Spec{{DB: "s", Coll: "b", Shard: 0, Shards: 2}, {DB: "s", Coll: "a", Shards: 1}}},
		{DB: "s", Coll: "b", Shard: 1, Shards: 2},
	}
	got, err := c.Topics("x", map[string]string{ClassKey: "naming"}, specs)
	if err != nil || !slices.Equal(got, []string{"s.a", "s.b"}) {
		t.Errorf("Topics = %v, %v; want [s.a s.b]", got, err)
	}
	if _, err := c.Topics("x", map[string]string{ClassKey: "silent"}, specs); !errors.Is(err, ErrNoTopics) {
		t.Errorf("Topics of a kind that does not name them: %v, want ErrNoTopics", err)
	}
}
