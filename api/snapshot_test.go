package api

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestSnapshotRequestAnswersAsConnectDoes(t *testing.T) {
	for _, tc := range []struct {
		name        string
		connector   string // the path's connector
		contentType string
		body        string
		wantStatus  int
		wantIn      string // in the answer's body
		wantAsked   []string
	}{
		{name: "accepted", connector: "orders", body: `{"collections":["db.a","db.b"]}`,
			wantStatus: http.StatusAccepted, wantIn: `"collections":["db.a","db.b"]`, wantAsked: []string{"orders:db.a,db.b"}},
		{name: "unknown connector", connector: "nope", body: `{"collections":["db.a"]}`,
			wantStatus: http.StatusNotFound, wantIn: "Connector nope not found"},
		{name: "stopped connector", connector: "stopped", body: `{"collections":["db.a"]}`,
			wantStatus: http.StatusConflict, wantIn: "PUT /connectors/stopped/resume"},
		{name: "a collection the connector does not stream", connector: "orders", body: `{"collections":["other.a"]}`,
			wantStatus: http.StatusBadRequest, wantIn: "streams no collection other.a"},
		{name: "no collection", connector: "orders", body: `{"collections":[]}`,
			wantStatus: http.StatusBadRequest, wantIn: "names no collection"},
		{name: "a name without a database", connector: "orders", body: `{"collections":["a"]}`,
			wantStatus: http.StatusBadRequest, wantIn: `\"a\" is not a`},
		{name: "not JSON", connector: "orders", body: `collections`,
			wantStatus: http.StatusBadRequest, wantIn: "not valid JSON"},
		{name: "not application/json", connector: "orders", contentType: "text/plain", body: `{"collections":["db.a"]}`,
			wantStatus: http.StatusUnsupportedMediaType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCluster("n1", true)
			f.connectors["orders"] = Connector{Name: "orders", Config: ordersStored, State: StateRunning}
			f.connectors["stopped"] = Connector{Name: "stopped", Config: ordersStored, State: StateStopped}
			srv := serveFake(t, f)
			ct := tc.contentType
			if ct == "" {
				ct = "application/json"
			}
			status, _, body := send(t, http.MethodPost, srv.URL+"/connectors/"+tc.connector+"/snapshot", ct, tc.body)
			if status != tc.wantStatus || !strings.Contains(body, tc.wantIn) {
				t.Fatalf("POST snapshot = %d %s, want %d with %q", status, body, tc.wantStatus, tc.wantIn)
			}
			if status >= 400 && !strings.Contains(body, `"error_code":`) {
				t.Fatalf("error answer %s lacks Connect's error shape", body)
			}
			if !slices.Equal(f.snapshots, tc.wantAsked) {
				t.Fatalf("requests %v, want %v", f.snapshots, tc.wantAsked)
			}
		})
	}
}
