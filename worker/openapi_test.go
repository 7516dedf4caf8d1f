package worker

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/mongorelay/mongorelay/api/peer"
	"github.com/mongorelay/mongorelay/api/registryapi"
)

// TestOpenAPIDocumentsEveryRoute serves each of a node's listeners and reads its GET
// /openapi.json: the document is valid OpenAPI 3, every route of every handler mounted on the
// listener has an entry, and every entry a route.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hc := &http.Client{Timeout: 5 * time.Second}
	n := &Node{id: "n1", log: log, reports: newTaskReports(), peers: peer.NewClient(hc), catalog: Kinds(),
		listeners: listeners{client: hc, scheme: "http"}}
	n.initMetrics()
	registry := registryapi.NewServer(nil, log)
	tests := []struct {
		listener, document string
		handler            http.Handler
		mounts             []mount
	}{
		{"REST (http.listen)", "api/openapi.json", n.handler(), n.restMounts()},
		{"schema registry (registry.listen)", "api/registryapi/openapi.json", registry, []mount{{"/", registry}}},
	}
	for _, tt := range tests {
		t.Run(tt.listener, func(t *testing.T) {
			documented := documentedRoutes(t, tt.handler)
			served := servedRoutes(t, tt.mounts)
			for _, r := range served {
				if !documented[r] {
					t.Errorf("%s is served but %s has no entry for it", r, tt.document)
				}
			}
			for r := range documented {
				if !slices.Contains(served, r) {
					t.Errorf("%s documents %s, which no handler serves", tt.document, r)
				}
			}
			t.Logf("%d routes served and documented", len(served))
		})
	}
}

// documentedRoutes reads GET /openapi.json from h, checks that it is valid OpenAPI and
// returns its entries ("METHOD /path/{param}").
func documentedRoutes(t *testing.T, h http.Handler) map[string]bool {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != echo.MIMEApplicationJSON {
		t.Fatalf("GET /openapi.json: %d %q %v", resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		t.Fatalf("load the document: %v", err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("the document is not valid OpenAPI: %v", err)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	return documented
}

// servedRoutes returns the routes ("METHOD /path/{param}") of every mount, each of which
// must be an echo instance, and checks that each route lies under its own mount's prefix and
// under no other mount's longer one (else the listener would send it elsewhere).
func servedRoutes(t *testing.T, mounts []mount) []string {
	t.Helper()
	param := regexp.MustCompile(`:([^/]+)`)
	var out []string
	for _, m := range mounts {
		e, ok := m.handler.(interface{ Routes() []*echo.Route })
		if !ok {
			t.Fatalf("the handler mounted at %s is a %T, not an echo instance: the check cannot list its routes", m.prefix, m.handler)
		}
		for _, r := range e.Routes() {
			if owner := ownerOf(mounts, r.Path); owner != m.prefix {
				t.Errorf("%s %s, registered under %s, is served by the handler at %s", r.Method, r.Path, m.prefix, owner)
			}
			out = append(out, r.Method+" "+param.ReplaceAllString(r.Path, "{$1}"))
		}
	}
	slices.Sort(out)
	return out
}

// ownerOf returns the prefix of the mount an http.ServeMux sends path to: the longest one
// it starts with.
func ownerOf(mounts []mount, path string) string {
	owner := ""
	for _, m := range mounts {
		if strings.HasPrefix(path, m.prefix) && len(m.prefix) > len(owner) {
			owner = m.prefix
		}
	}
	return owner
}
