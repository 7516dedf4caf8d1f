package registryapi_test

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/mongorelay/mongorelay/api/registryapi"
	"github.com/mongorelay/mongorelay/internal/httpauth"
	"github.com/mongorelay/mongorelay/registry"
	"github.com/mongorelay/mongorelay/registry/registrytest"
)

// TestRegistryAuth: with users, reads (GETs, lookups, compatibility checks) stay open to
// consumers unless registry.auth.reads; writes and deletes need an admin; the root stays open
// to health checks.
func TestRegistryAuth(t *testing.T) {
	users, err := httpauth.New("admin-token-0123456789", []byte("viewer: pw-viewer,read-only\n"))
	if err != nil {
		t.Fatal(err)
	}
	viewer := "Basic " + base64.StdEncoding.EncodeToString([]byte("viewer:pw-viewer"))
	admin := "Bearer admin-token-0123456789"
	anyone, reader := []string{"", viewer, admin}, []string{viewer, admin}
	tests := []struct {
		method, path, body string
		open, closed       []string // who gets past authentication with reads open, and with them closed
	}{
		{http.MethodGet, "/", "", anyone, anyone},
		{http.MethodGet, "/subjects", "", anyone, reader},
		{http.MethodGet, "/schemas/ids/1", "", anyone, reader},
		{http.MethodGet, "/config", "", anyone, reader},
		{http.MethodGet, "/openapi.json", "", anyone, reader},
		{http.MethodPost, "/subjects/s-value", body(userV1), anyone, reader},
		{http.MethodPost, "/compatibility/subjects/s-value/versions/latest", body(userV1), anyone, reader},
		{http.MethodPost, "/subjects/s-value/versions", body(userV1), []string{admin}, []string{admin}},
		{http.MethodPut, "/config/s-value", `{"compatibility":"NONE"}`, []string{admin}, []string{admin}},
		{http.MethodDelete, "/subjects/s-value", "", []string{admin}, []string{admin}},
		{http.MethodDelete, "/config", "", []string{admin}, []string{admin}},
	}
	for _, authReads := range []bool{false, true} {
		quiet := slog.New(slog.DiscardHandler)
		reg, err := registry.New(t.Context(), registrytest.NewStore(), registry.Logger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(registryapi.NewServer(reg, quiet, registryapi.WithAuth(users, authReads)))
		t.Cleanup(srv.Close)
		for _, tt := range tests {
			allowed := tt.open
			if authReads {
				allowed = tt.closed
			}
			for _, auth := range anyone {
				t.Run(fmt.Sprintf("reads closed %v %s %s as %q", authReads, tt.method, tt.path, auth), func(t *testing.T) {
					req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
					req.Header.Set("Content-Type", "application/json")
					if auth != "" {
						req.Header.Set("Authorization", auth)
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					want := "through"
					switch {
					case slices.Contains(allowed, auth):
					case auth == "":
						want = "401"
					default:
						want = "403"
					}
					got := "through"
					if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
						got = fmt.Sprint(resp.StatusCode)
					}
					if got != want {
						t.Errorf("%d, want %s", resp.StatusCode, want)
					}
				})
			}
		}
	}
}

// TestRegistryBodyLimit: a registration over 8 MiB is refused 413 in Confluent's error shape.
func TestRegistryBodyLimit(t *testing.T) {
	s := newServer(t)
	status, got, header := s.do(call{http.MethodPost, "/subjects/s-value/versions", body(strings.Repeat("x", 8<<20))}, "application/json")
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(got, `"error_code":413`) || !strings.Contains(got, "at most 8 MiB") ||
		header.Get("Content-Type") != "application/vnd.schemaregistry.v1+json" {
		t.Errorf("an 8 MiB schema = %d %s (%s)", status, got, header.Get("Content-Type"))
	}
}
