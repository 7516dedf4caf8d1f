package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestConnectorPlugins(t *testing.T) {
	srv := serveFake(t, newFakeCluster("n1", true))
	for _, q := range []string{"", "?connectorsOnly=true", "?connectorsOnly=false"} {
		status, _, body := send(t, http.MethodGet, srv.URL+"/connector-plugins"+q, "", "")
		var got []pluginInfo
		if err := json.Unmarshal([]byte(body), &got); err != nil || status != http.StatusOK {
			t.Fatalf("GET /connector-plugins%s = %d %s: %v", q, status, body, err)
		}
		if len(got) != 1 || got[0] != (pluginInfo{Class: "mongodb", Type: "source", Version: "v1"}) {
			t.Errorf("GET /connector-plugins%s = %+v, want the mongodb source at the binary's version", q, got)
		}
	}
}

func TestConnectorPluginConfig(t *testing.T) {
	srv := serveFake(t, newFakeCluster("n1", true))
	for _, tc := range []struct {
		plugin     string
		wantStatus int
	}{
		{"mongodb", 200},
		{"io.debezium.connector.mongodb.MongoDbConnector", 200},
		{"MongoDbConnector", 200},
		{"MongoSourceConnector", 200},
		{"nope", 404},
	} {
		status, _, body := send(t, http.MethodGet, srv.URL+"/connector-plugins/"+tc.plugin+"/config", "", "")
		if status != tc.wantStatus {
			t.Errorf("GET config of %s = %d %s, want %d", tc.plugin, status, body, tc.wantStatus)
			continue
		}
		if status != http.StatusOK {
			if !strings.Contains(body, `"error_code":404`) {
				t.Errorf("GET config of %s = %s, want Connect's error body", tc.plugin, body)
			}
			continue
		}
		var keys []map[string]any
		if err := json.Unmarshal([]byte(body), &keys); err != nil {
			t.Fatal(err)
		}
		byName := map[string]map[string]any{}
		for _, k := range keys {
			byName[k["name"].(string)] = k
		}
		prefix := byName["topic.prefix"]
		if prefix == nil || prefix["required"] != true || prefix["type"] != "STRING" || prefix["group"] == "" ||
			prefix["documentation"] == "" || prefix["default_value"] != nil {
			t.Errorf("topic.prefix described as %v", prefix)
		}
		for _, field := range []string{"importance", "order", "width", "display_name", "dependents"} {
			if _, ok := prefix[field]; !ok {
				t.Errorf("ConfigKeyInfo has no %q: %v", field, prefix)
			}
		}
	}
}

func TestValidateConfig(t *testing.T) {
	srv := serveFake(t, newFakeCluster("n1", true))
	for _, tc := range []struct {
		name, plugin, body string
		wantStatus         int
		wantErrors         map[string]string // key: part of its error; others must have none
	}{
		{name: "a valid config", plugin: "mongodb", wantStatus: 200, wantErrors: map[string]string{},
			body: `{"name":"orders","mongodb.connection.string":"mongodb://app:s3cret@db:27017","topic.prefix":"shop"}`},
		{name: "every bad key named", plugin: "io.debezium.connector.mongodb.MongoDbConnector", wantStatus: 200,
			body: `{"name":"orders","connector.class":"io.debezium.connector.mongodb.MongoDbConnector","shards":"0","topic.prefx":"x"}`,
			wantErrors: map[string]string{"shards": "out of range", "topic.prefix": "is required",
				"mongodb.connection.string": "is required", "topic.prefx": "topic.prefix"}},
		{name: "another kind's class", plugin: "mongodb", wantStatus: 400,
			body: `{"connector.class":"org.example.Other"}`},
		{name: "an unknown plugin", plugin: "nope", wantStatus: 404, body: `{}`},
		{name: "not an object", plugin: "mongodb", wantStatus: 400, body: `[1]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := send(t, http.MethodPut, srv.URL+"/connector-plugins/"+tc.plugin+"/config/validate", "application/json", tc.body)
			if status != tc.wantStatus {
				t.Fatalf("validate = %d %s, want %d", status, body, tc.wantStatus)
			}
			if status != http.StatusOK {
				return
			}
			if strings.Contains(body, "s3cret") {
				t.Errorf("validate shows the secret: %s", body)
			}
			var got configInfos
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			if got.Name != "mongodb" || len(got.Groups) == 0 || got.ErrorCount < len(tc.wantErrors) {
				t.Errorf("ConfigInfos %s/%d errors/%v groups, want mongodb with %d errors", got.Name, got.ErrorCount, got.Groups, len(tc.wantErrors))
			}
			seen := map[string]bool{}
			for _, ci := range got.Configs {
				errs := strings.Join(ci.Value.Errors, "; ")
				if ci.Definition.Name != ci.Value.Name {
					t.Errorf("definition %s has the value of %s", ci.Definition.Name, ci.Value.Name)
				}
				want, bad := tc.wantErrors[ci.Value.Name]
				switch {
				case bad && !strings.Contains(errs, want):
					t.Errorf("%s has errors %q, want %q", ci.Value.Name, errs, want)
				case !bad && errs != "":
					t.Errorf("%s has errors %q, want none", ci.Value.Name, errs)
				}
				seen[ci.Value.Name] = true
			}
			for key := range tc.wantErrors {
				if !seen[key] {
					t.Errorf("no entry for %s", key)
				}
			}
		})
	}
	status, _, body := send(t, http.MethodPut, srv.URL+"/connector-plugins/mongodb/config/validate", "text/plain", `{}`)
	if status != http.StatusUnsupportedMediaType {
		t.Errorf("validate as text/plain = %d %s, want 415", status, body)
	}
}
