package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The secrets the reference tests keep in files and variables; none may ever be shown.
const (
	filePassword = "F1leS3cret"
	dirPassword  = "D1rS3cret"
	envToken     = "Env70ken"
)

// secretFiles writes a properties file and a secrets directory and sets a variable, and returns
// the references to them.
func secretFiles(t *testing.T) (fileRef, dirRef, envRef string) {
	t.Helper()
	root := t.TempDir()
	props := filepath.Join(root, "mongo.properties")
	if err := os.WriteFile(props, []byte("password="+filePassword+"\nuser=cdc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "mongo_pw"), []byte(dirPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MR_TEST_TOKEN", envToken)
	return "${file:" + props + ":password}", "${directory:" + root + ":mongo_pw}", "${env:MR_TEST_TOKEN}"
}

func TestReferencesAreResolvedButStored(t *testing.T) {
	fileRef, dirRef, envRef := secretFiles(t)
	uri := "mongodb://cdc:" + fileRef + "@db1:27017/?authSource=admin&appName=" + dirRef
	t.Setenv("MR_TEST_PREFIX", "orders")
	c := mustParse(t, with(
		"mongodb.connection.string", uri,
		"topic.prefix", "${env:MR_TEST_PREFIX}",
		"schema.registry.url", "https://sr:"+envRef+"@sr1:8081"))

	if got, want := c.ConnectionString.Reveal(), "mongodb://cdc:"+filePassword+"@db1:27017/?authSource=admin&appName="+dirPassword; got != want {
		t.Errorf("connection string = %q, want %q", got, want)
	}
	if c.TopicPrefix != "orders" {
		t.Errorf("topic prefix = %q, want the variable's value", c.TopicPrefix)
	}
	if got, want := c.SchemaRegistryURLs[0].Reveal(), "https://sr:"+envToken+"@sr1:8081"; got != want {
		t.Errorf("registry URL = %q, want %q", got, want)
	}
	raw := c.Raw()
	if raw["mongodb.connection.string"] != uri || raw["topic.prefix"] != "${env:MR_TEST_PREFIX}" {
		t.Errorf("Raw, what is stored, = %v; want the references", raw)
	}

	red := c.Redacted()
	if red["mongodb.connection.string"] != uri {
		t.Errorf("Redacted connection string = %q, want the references as written: %q", red["mongodb.connection.string"], uri)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "uri", c.ConnectionString, "registries", c.SchemaRegistryURLs, "config", c)
	js, _ := json.Marshal(c)
	for _, s := range []string{c.String(), fmt.Sprintf("%+v", c), fmt.Sprint(c.ConnectionString), fmt.Sprint(c.SchemaRegistryURLs),
		string(js), logs.String(), fmt.Sprint(red), fmt.Sprint(RedactRaw(raw))} {
		for _, secret := range []string{filePassword, dirPassword, envToken} {
			if strings.Contains(s, secret) {
				t.Errorf("secret %s shown: %s", secret, s)
			}
		}
	}
	if got := fmt.Sprint(c.ConnectionString); !strings.Contains(got, fileRef) || !strings.Contains(got, dirRef) {
		t.Errorf("the connection string shows as %s, want its references", got)
	}
}

func TestReferenceProblems(t *testing.T) {
	fileRef, dirRef, envRef := secretFiles(t)
	missingFile := "${file:/nonexistent/mongo.properties:password}"
	tests := []struct {
		name string
		raw  map[string]string
		key  string
		want []string // parts of the problem's message
	}{
		{"missing variable", with("mongodb.connection.string", "mongodb://cdc:${env:MR_TEST_UNSET}@db1/"),
			"mongodb.connection.string", []string{"${env:MR_TEST_UNSET}", "is not set on this node"}},
		{"missing file", with("mongodb.connection.string", "mongodb://cdc:"+missingFile+"@db1/"),
			"mongodb.connection.string", []string{missingFile, "no such file"}},
		{"unknown provider", with("topic.prefix", "${vault:secret/mongo:prefix}"),
			"topic.prefix", []string{`no config provider "vault"`}},
		{"reference in the class", with("connector.class", "${env:MR_TEST_TOKEN}"),
			"connector.class", []string{"cannot be a config provider reference"}},
		{"reference in the name", with("name", "${env:MR_TEST_TOKEN}"),
			"name", []string{"cannot be a config provider reference"}},
		{"empty required value", with("mongodb.connection.string", "${env:MR_TEST_EMPTY}"),
			"mongodb.connection.string", []string{"is empty on this node", "${env:MR_TEST_EMPTY}"}},
		// The value a reference gives is checked as a literal would be, and a secret's
		// problem names the reference instead of the value.
		{"bad referenced URI", with("mongodb.connection.string", "mongodb://cdc:"+fileRef+"@db1/?maxPoolSize="+dirRef),
			"mongodb.connection.string", []string{"is not a valid MongoDB connection string", dirRef}},
		{"bad referenced registry", with("schema.registry.url", "ftp://u:"+envRef+"@sr"),
			"schema.registry.url", []string{"ftp://u:" + envRef + "@sr is not an http(s) URL"}},
		{"bad referenced value", with("shards", "${env:MR_TEST_TOKEN}"),
			"shards", []string{"is not a whole number", "(the value of ${env:MR_TEST_TOKEN} on this node)"}},
		{"hidden sent back", with("mongodb.connection.string", "mongodb://cdc:[hidden]@db1/"),
			"mongodb.connection.string", []string{"contains [hidden]", "send back the value exactly as GET"}},
	}
	t.Setenv("MR_TEST_EMPTY", "")
	for _, tt := range tests {
		problems := problemsOf(t, tt.raw)
		var p *Problem
		for i := range problems {
			if problems[i].Key == tt.key {
				p = &problems[i]
			}
		}
		if p == nil {
			t.Errorf("%s: no problem with %s in %v", tt.name, tt.key, problems)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(p.Message, w) {
				t.Errorf("%s: message %q does not say %q", tt.name, p.Message, w)
			}
		}
		for _, s := range []string{p.Value, p.Message} {
			for _, secret := range []string{filePassword, dirPassword} {
				if strings.Contains(s, secret) {
					t.Errorf("%s: secret shown: %s", tt.name, s)
				}
			}
		}
		if _, err := Parse("orders-cdc", tt.raw); !errors.As(err, new(*ValidationError)) {
			t.Errorf("%s: Parse error %v is not a *ValidationError", tt.name, err)
		}
	}
}

func TestRedactStoredValues(t *testing.T) {
	uriKey, secretKey := Key{Secret: true, uris: true}, Key{Secret: true}
	listKey := Key{Secret: true, uris: true, Type: TypeList}
	tests := []struct {
		key      Key
		in, want string
	}{
		{uriKey, "mongodb://u:${file:/s/c.properties:pw}@h/", "mongodb://u:${file:/s/c.properties:pw}@h/"},
		{uriKey, "mongodb://${env:U}:${env:P}@h/?authMechanismProperties=${env:T}", "mongodb://${env:U}:${env:P}@h/?authMechanismProperties=${env:T}"},
		{uriKey, "${file:/s/mongo.properties:uri}", "${file:/s/mongo.properties:uri}"},
		// Text of its own in a password or secret option is hidden with it.
		{uriKey, "mongodb://u:pw${env:P}@h/", "mongodb://u:[hidden]@h/"},
		{uriKey, "mongodb://u:pw@h/?tlsCertificateKeyFilePassword=x${env:P}", "mongodb://u:[hidden]@h/?tlsCertificateKeyFilePassword=[hidden]"},
		{uriKey, "mongodb://u:pw@${env:HOST}/", "mongodb://u:[hidden]@${env:HOST}/"},
		{listKey, "https://a:${env:A}@r1,https://b:pw@r2", "https://a:${env:A}@r1,https://b:[hidden]@r2"},
		{secretKey, "${env:P}", "${env:P}"},
		{secretKey, "${env:P}${file:/a:b}", "${env:P}${file:/a:b}"},
		{secretKey, "x${env:P}", "[hidden]"},
		{secretKey, "\x000\x00", "[hidden]"},
		{Key{}, "${env:P}", "${env:P}"},
	}
	for _, tt := range tests {
		if got := tt.key.Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
