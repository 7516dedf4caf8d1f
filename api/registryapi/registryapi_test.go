package registryapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mongorelay/mongorelay/api/registryapi"
	"github.com/mongorelay/mongorelay/registry"
	"github.com/mongorelay/mongorelay/registry/registrytest"
)

const (
	userV1       = `{"type":"record","name":"User","fields":[{"name":"id","type":"long"}]}`
	userV1Canon  = `{"name":"User","type":"record","fields":[{"name":"id","type":"long"}]}`
	userV2       = `{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"email","type":["null","string"],"default":null}]}`
	userV2Canon  = `{"name":"User","type":"record","fields":[{"name":"id","type":"long"},{"name":"email","type":["null","string"],"default":null}]}`
	userRequired = `{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"age","type":"int"}]}`
)

// body returns a registration request body for schema.
func body(schema string, extra ...string) string {
	b, _ := json.Marshal(schema)
	return `{"schema":` + string(b) + strings.Join(extra, "") + `}`
}

type call struct {
	method, path, body string
}

type server struct {
	t     *testing.T
	url   string
	store *registrytest.Store
}

func newServer(t *testing.T) *server {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	store := registrytest.NewStore()
	reg, err := registry.New(t.Context(), store, registry.Logger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registryapi.NewServer(reg, quiet))
	t.Cleanup(srv.Close)
	return &server{t: t, url: srv.URL, store: store}
}

func (s *server) do(c call, contentType string) (int, string, http.Header) {
	s.t.Helper()
	var rd io.Reader
	if c.body != "" {
		rd = strings.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(s.t.Context(), c.method, s.url+c.path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// Setups shared by the cases below.
var (
	oneVersion = []call{
		{"POST", "/subjects/users-value/versions", body(userV1)},
	}
	twoVersions = []call{
		{"POST", "/subjects/users-value/versions", body(userV1)},
		{"POST", "/subjects/users-value/versions", body(userV2)},
	}
	softDeletedV1 = append(twoVersions[:2:2],
		call{"DELETE", "/subjects/users-value/versions/1", ""})
	softDeletedSubject = append(oneVersion[:1:1],
		call{"DELETE", "/subjects/users-value", ""})
)

func TestRegistryAPI(t *testing.T) {
	tests := []struct {
		name       string
		setup      []call
		req        call
		wantStatus int
		wantBody   string // the exact answer, when set
		wantCode   int    // the error_code, when set
	}{
		{name: "root", req: call{"GET", "/", ""}, wantStatus: 200, wantBody: `{}`},
		{name: "schema types", req: call{"GET", "/schemas/types", ""}, wantStatus: 200, wantBody: `["AVRO"]`},

		// Registration.
		{name: "register", req: call{"POST", "/subjects/users-value/versions", body(userV1)},
			wantStatus: 200, wantBody: `{"id":1}`},
		{name: "register as Python's client does", req: call{"POST", "/subjects/users-value/versions?normalize=False",
			body(userV1, `,"schemaType":"AVRO","references":[]`)}, wantStatus: 200, wantBody: `{"id":1}`},
		{name: "register again is idempotent", setup: twoVersions,
			req: call{"POST", "/subjects/users-value/versions", body(userV1)}, wantStatus: 200, wantBody: `{"id":1}`},
		{name: "register under a second subject keeps the id", setup: twoVersions,
			req: call{"POST", "/subjects/other-value/versions", body(userV2)}, wantStatus: 200, wantBody: `{"id":2}`},
		{name: "register protobuf", req: call{"POST", "/subjects/s/versions", body(`syntax = "proto3";`, `,"schemaType":"PROTOBUF"`)},
			wantStatus: 422, wantCode: 42201},
		{name: "register invalid avro", req: call{"POST", "/subjects/s/versions", body(`{"type":"record","name":"R"}`)},
			wantStatus: 422, wantCode: 42201},
		{name: "register without schema", req: call{"POST", "/subjects/s/versions", `{}`}, wantStatus: 422, wantCode: 42201},
		{name: "register with references", req: call{"POST", "/subjects/s/versions",
			body(userV1, `,"references":[{"name":"x","subject":"y","version":1}]`)}, wantStatus: 422, wantCode: 42201},
		{name: "register a body that is not JSON", req: call{"POST", "/subjects/s/versions", `schema`}, wantStatus: 400, wantCode: 400},
		{name: "register incompatible", setup: oneVersion,
			req: call{"POST", "/subjects/users-value/versions", body(userRequired)}, wantStatus: 409, wantCode: 409},

		// Schemas by id.
		{name: "schema by id", setup: oneVersion, req: call{"GET", "/schemas/ids/1", ""},
			wantStatus: 200, wantBody: `{"schema":` + quote(userV1Canon) + `}`},
		{name: "schema by id with subject, as Python's client asks", setup: oneVersion,
			req: call{"GET", "/schemas/ids/1?subject=users-value", ""}, wantStatus: 200, wantBody: `{"schema":` + quote(userV1Canon) + `}`},
		{name: "schema by unknown id", req: call{"GET", "/schemas/ids/9", ""},
			wantStatus: 404, wantBody: `{"error_code":40403,"message":"Schema 9 not found"}`},
		{name: "schema by bad id", req: call{"GET", "/schemas/ids/x", ""}, wantStatus: 404, wantCode: 40403},
		{name: "raw schema by id", setup: oneVersion, req: call{"GET", "/schemas/ids/1/schema", ""}, wantStatus: 200, wantBody: userV1Canon},
		{name: "subjects by id", setup: append(oneVersion[:1:1], call{"POST", "/subjects/a/versions", body(userV1)}),
			req: call{"GET", "/schemas/ids/1/subjects", ""}, wantStatus: 200, wantBody: `["a","users-value"]`},
		{name: "versions by id", setup: twoVersions, req: call{"GET", "/schemas/ids/2/versions", ""},
			wantStatus: 200, wantBody: `[{"subject":"users-value","version":2}]`},
		{name: "versions by id hides soft-deleted", setup: softDeletedV1, req: call{"GET", "/schemas/ids/1/versions", ""},
			wantStatus: 404, wantCode: 40403},
		{name: "versions by id with deleted", setup: softDeletedV1, req: call{"GET", "/schemas/ids/1/versions?deleted=true", ""},
			wantStatus: 200, wantBody: `[{"subject":"users-value","version":1}]`},

		// Subjects and versions.
		{name: "no subjects", req: call{"GET", "/subjects", ""}, wantStatus: 200, wantBody: `[]`},
		{name: "subjects", setup: oneVersion, req: call{"GET", "/subjects", ""}, wantStatus: 200, wantBody: `["users-value"]`},
		{name: "subjects hides soft-deleted", setup: softDeletedSubject, req: call{"GET", "/subjects", ""}, wantStatus: 200, wantBody: `[]`},
		{name: "subjects with deleted", setup: softDeletedSubject, req: call{"GET", "/subjects?deleted=true", ""},
			wantStatus: 200, wantBody: `["users-value"]`},
		{name: "subject with an escaped slash", setup: []call{{"POST", "/subjects/a%2Fb/versions", body(userV1)}},
			req: call{"GET", "/subjects/a%2Fb/versions/1", ""}, wantStatus: 200,
			wantBody: `{"subject":"a/b","version":1,"id":1,"schema":` + quote(userV1Canon) + `}`},
		{name: "versions", setup: twoVersions, req: call{"GET", "/subjects/users-value/versions", ""}, wantStatus: 200, wantBody: `[1,2]`},
		{name: "versions of an unknown subject", req: call{"GET", "/subjects/nope/versions", ""},
			wantStatus: 404, wantBody: `{"error_code":40401,"message":"Subject 'nope' not found."}`},
		{name: "latest version", setup: twoVersions, req: call{"GET", "/subjects/users-value/versions/latest", ""},
			wantStatus: 200, wantBody: `{"subject":"users-value","version":2,"id":2,"schema":` + quote(userV2Canon) + `}`},
		{name: "version -1 is latest", setup: twoVersions, req: call{"GET", "/subjects/users-value/versions/-1", ""},
			wantStatus: 200, wantBody: `{"subject":"users-value","version":2,"id":2,"schema":` + quote(userV2Canon) + `}`},
		{name: "raw version", setup: twoVersions, req: call{"GET", "/subjects/users-value/versions/1/schema", ""},
			wantStatus: 200, wantBody: userV1Canon},
		{name: "missing version", setup: twoVersions, req: call{"GET", "/subjects/users-value/versions/3", ""},
			wantStatus: 404, wantBody: `{"error_code":40402,"message":"Version 3 not found."}`},
		{name: "soft-deleted version", setup: softDeletedV1, req: call{"GET", "/subjects/users-value/versions/1", ""},
			wantStatus: 404, wantCode: 40402},
		{name: "soft-deleted version with deleted", setup: softDeletedV1, req: call{"GET", "/subjects/users-value/versions/1?deleted=true", ""},
			wantStatus: 200, wantBody: `{"subject":"users-value","version":1,"id":1,"schema":` + quote(userV1Canon) + `}`},
		{name: "version of an unknown subject", req: call{"GET", "/subjects/nope/versions/1", ""}, wantStatus: 404, wantCode: 40401},
		{name: "version zero", setup: oneVersion, req: call{"GET", "/subjects/users-value/versions/0", ""},
			wantStatus: 422, wantBody: `{"error_code":42202,"message":"The specified version '0' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""}`},
		{name: "version not a number", setup: oneVersion, req: call{"GET", "/subjects/users-value/versions/first", ""},
			wantStatus: 422, wantCode: 42202},

		// Lookup.
		{name: "lookup", setup: twoVersions, req: call{"POST", "/subjects/users-value?normalize=False&deleted=False", body(userV1)},
			wantStatus: 200, wantBody: `{"subject":"users-value","version":1,"id":1,"schema":` + quote(userV1Canon) + `}`},
		{name: "lookup an unknown schema", setup: oneVersion, req: call{"POST", "/subjects/users-value", body(userV2)},
			wantStatus: 404, wantBody: `{"error_code":40403,"message":"Schema not found"}`},
		{name: "lookup under an unknown subject", req: call{"POST", "/subjects/nope", body(userV1)}, wantStatus: 404, wantCode: 40401},
		{name: "lookup an invalid schema", setup: oneVersion, req: call{"POST", "/subjects/users-value", body(`{`)}, wantStatus: 422, wantCode: 42201},

		// Deletes.
		{name: "soft delete subject", setup: twoVersions, req: call{"DELETE", "/subjects/users-value", ""}, wantStatus: 200, wantBody: `[1,2]`},
		{name: "soft delete a soft-deleted subject", setup: softDeletedSubject, req: call{"DELETE", "/subjects/users-value", ""},
			wantStatus: 404, wantCode: 40404},
		{name: "hard delete a live subject", setup: oneVersion, req: call{"DELETE", "/subjects/users-value?permanent=true", ""},
			wantStatus: 404, wantBody: `{"error_code":40405,"message":"Subject 'users-value' was not deleted first before being permanently deleted"}`},
		{name: "hard delete a soft-deleted subject", setup: softDeletedSubject, req: call{"DELETE", "/subjects/users-value?permanent=true", ""},
			wantStatus: 200, wantBody: `[1]`},
		{name: "delete an unknown subject", req: call{"DELETE", "/subjects/nope", ""}, wantStatus: 404, wantCode: 40401},
		{name: "soft delete version", setup: twoVersions, req: call{"DELETE", "/subjects/users-value/versions/1", ""}, wantStatus: 200, wantBody: `1`},
		{name: "soft delete latest version", setup: twoVersions, req: call{"DELETE", "/subjects/users-value/versions/latest", ""}, wantStatus: 200, wantBody: `2`},
		{name: "soft delete a soft-deleted version", setup: softDeletedV1, req: call{"DELETE", "/subjects/users-value/versions/1", ""},
			wantStatus: 404, wantCode: 40406},
		{name: "hard delete a live version", setup: twoVersions, req: call{"DELETE", "/subjects/users-value/versions/1?permanent=true", ""},
			wantStatus: 404, wantBody: `{"error_code":40407,"message":"Subject 'users-value' Version 1 was not deleted first before being permanently deleted"}`},
		{name: "hard delete a soft-deleted version", setup: softDeletedV1, req: call{"DELETE", "/subjects/users-value/versions/1?permanent=true", ""},
			wantStatus: 200, wantBody: `1`},
		{name: "delete a missing version", setup: oneVersion, req: call{"DELETE", "/subjects/users-value/versions/7", ""}, wantStatus: 404, wantCode: 40402},
		{name: "delete an invalid version", setup: oneVersion, req: call{"DELETE", "/subjects/users-value/versions/0", ""}, wantStatus: 422, wantCode: 42202},

		// Compatibility levels.
		{name: "global level", req: call{"GET", "/config", ""}, wantStatus: 200, wantBody: `{"compatibilityLevel":"BACKWARD_TRANSITIVE"}`},
		{name: "set global level", req: call{"PUT", "/config", `{"compatibility":"full"}`}, wantStatus: 200, wantBody: `{"compatibility":"FULL"}`},
		{name: "set global level as Python's set_config does", req: call{"PUT", "/config", `{"compatibilityLevel":"FORWARD"}`},
			wantStatus: 200, wantBody: `{"compatibility":"FORWARD"}`},
		{name: "global level after set", setup: []call{{"PUT", "/config", `{"compatibility":"NONE"}`}},
			req: call{"GET", "/config", ""}, wantStatus: 200, wantBody: `{"compatibilityLevel":"NONE"}`},
		{name: "delete global level", setup: []call{{"PUT", "/config", `{"compatibility":"NONE"}`}},
			req: call{"DELETE", "/config", ""}, wantStatus: 200, wantBody: `{"compatibilityLevel":"NONE"}`},
		{name: "set an invalid level", req: call{"PUT", "/config", `{"compatibility":"SIDEWAYS"}`}, wantStatus: 422,
			wantBody: `{"error_code":42203,"message":"Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive"}`},
		{name: "subject level not set", setup: oneVersion, req: call{"GET", "/config/users-value", ""},
			wantStatus: 404, wantBody: `{"error_code":40408,"message":"Subject 'users-value' does not have subject-level compatibility configured"}`},
		{name: "subject level defaulting to global", setup: oneVersion, req: call{"GET", "/config/users-value?defaultToGlobal=true", ""},
			wantStatus: 200, wantBody: `{"compatibilityLevel":"BACKWARD_TRANSITIVE"}`},
		{name: "set subject level", req: call{"PUT", "/config/users-value", `{"compatibility":"FORWARD"}`},
			wantStatus: 200, wantBody: `{"compatibility":"FORWARD"}`},
		{name: "subject level", setup: []call{{"PUT", "/config/users-value", `{"compatibility":"FORWARD"}`}},
			req: call{"GET", "/config/users-value", ""}, wantStatus: 200, wantBody: `{"compatibilityLevel":"FORWARD"}`},
		{name: "delete subject level", setup: []call{{"PUT", "/config/users-value", `{"compatibility":"FORWARD"}`}},
			req: call{"DELETE", "/config/users-value", ""}, wantStatus: 200, wantBody: `{"compatibilityLevel":"FORWARD"}`},
		{name: "delete an unset subject level", req: call{"DELETE", "/config/users-value", ""}, wantStatus: 404, wantCode: 40401},

		// Compatibility checks.
		{name: "compatible with latest", setup: oneVersion, req: call{"POST", "/compatibility/subjects/users-value/versions/latest", body(userV2)},
			wantStatus: 200, wantBody: `{"is_compatible":true}`},
		{name: "incompatible with latest", setup: oneVersion, req: call{"POST", "/compatibility/subjects/users-value/versions/latest", body(userRequired)},
			wantStatus: 200, wantBody: `{"is_compatible":false}`},
		{name: "verbose compatible", setup: oneVersion, req: call{"POST", "/compatibility/subjects/users-value/versions/1?verbose=true", body(userV2)},
			wantStatus: 200, wantBody: `{"is_compatible":true,"messages":[]}`},
		{name: "against all versions", setup: twoVersions, req: call{"POST", "/compatibility/subjects/users-value/versions", body(userRequired)},
			wantStatus: 200, wantBody: `{"is_compatible":false}`},
		{name: "latest of a new subject", req: call{"POST", "/compatibility/subjects/new/versions/latest", body(userV1)},
			wantStatus: 200, wantBody: `{"is_compatible":true}`},
		{name: "against a missing version", setup: oneVersion, req: call{"POST", "/compatibility/subjects/users-value/versions/4", body(userV1)},
			wantStatus: 404, wantCode: 40402},
		{name: "an invalid schema", setup: oneVersion, req: call{"POST", "/compatibility/subjects/users-value/versions/latest", body(`{"type":1}`)},
			wantStatus: 422, wantCode: 42201},

		// Routing.
		{name: "unknown path", req: call{"GET", "/nope", ""}, wantStatus: 404, wantBody: `{"error_code":404,"message":"HTTP 404 Not Found"}`},
		{name: "wrong method", req: call{"PATCH", "/subjects", ""}, wantStatus: 405, wantCode: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			for _, c := range tt.setup {
				if status, b, _ := s.do(c, "application/vnd.schemaregistry.v1+json"); status != 200 {
					t.Fatalf("setup %s %s: %d %s", c.method, c.path, status, b)
				}
			}
			status, got, header := s.do(tt.req, "application/vnd.schemaregistry.v1+json")
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", status, tt.wantStatus, got)
			}
			if ct := header.Get("Content-Type"); ct != "application/vnd.schemaregistry.v1+json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tt.wantBody != "" && got != tt.wantBody {
				t.Errorf("body\n got %s\nwant %s", got, tt.wantBody)
			}
			if tt.wantCode != 0 {
				var e struct {
					Code    int    `json:"error_code"`
					Message string `json:"message"`
				}
				if err := json.Unmarshal([]byte(got), &e); err != nil || e.Code != tt.wantCode || e.Message == "" {
					t.Errorf("error body %s, want error_code %d and a message", got, tt.wantCode)
				}
			}
		})
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestRegistryAPIVerboseIncompatibility(t *testing.T) {
	s := newServer(t)
	s.do(call{"POST", "/subjects/s/versions", body(userV1)}, "application/json")
	for _, tc := range []struct{ name, schema string }{
		{"incompatible", userRequired},
		{"invalid", `{"type":1}`},
	} {
		status, got, _ := s.do(call{"POST", "/compatibility/subjects/s/versions/latest?verbose=true", body(tc.schema)}, "application/json")
		var answer struct {
			IsCompatible bool     `json:"is_compatible"`
			Messages     []string `json:"messages"`
		}
		if err := json.Unmarshal([]byte(got), &answer); status != 200 || err != nil || answer.IsCompatible || len(answer.Messages) == 0 {
			t.Errorf("%s: %d %s, want is_compatible false with messages", tc.name, status, got)
		}
	}
}

func TestRegistryAPIAcceptsContentTypes(t *testing.T) {
	for _, ct := range []string{
		"application/vnd.schemaregistry.v1+json",
		"application/vnd.schemaregistry+json",
		"application/json",
		"application/octet-stream",
	} {
		s := newServer(t)
		if status, got, _ := s.do(call{"POST", "/subjects/s/versions", body(userV1)}, ct); status != 200 || got != `{"id":1}` {
			t.Errorf("Content-Type %s: %d %s", ct, status, got)
		}
	}
}

func TestRegistryAPIStoreFailure(t *testing.T) {
	s := newServer(t)
	s.store.FailNext(errors.New("broker gone"))
	status, got, _ := s.do(call{"POST", "/subjects/s/versions", body(userV1)}, "application/json")
	var e struct {
		Code int `json:"error_code"`
	}
	if err := json.Unmarshal([]byte(got), &e); status != 500 || err != nil || e.Code != 50001 {
		t.Fatalf("%d %s, want 500 with error_code 50001", status, got)
	}
}

func TestRegistryAPIRejectsHugeBodies(t *testing.T) {
	s := newServer(t)
	huge := body(strings.Repeat(" ", 17<<20) + `"string"`)
	status, got, _ := s.do(call{"POST", "/subjects/s/versions", huge}, "application/json")
	if status != http.StatusRequestEntityTooLarge {
		t.Fatalf("%d %s, want 413", status, bytes.TrimSpace([]byte(got))[:min(len(got), 200)])
	}
}
