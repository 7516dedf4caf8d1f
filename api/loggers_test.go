package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// levelHandler is a handler whose level the API may change, as the worker's is.
type levelHandler struct {
	slog.Handler
	level *slog.LevelVar
}

func (h levelHandler) LevelVar() *slog.LevelVar { return h.level }

func TestLoggers(t *testing.T) {
	var out bytes.Buffer
	level := new(slog.LevelVar)
	log := slog.New(levelHandler{slog.NewTextHandler(&out, &slog.HandlerOptions{Level: level}), level})
	cl := newFakeCluster("n1", true)
	srv := httptest.NewServer(NewServer(cl, testCatalog(t), WithLogger(log), WithForwardWait(time.Second)).Handler())
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		method, path, contentType, body string
		wantStatus                      int
		wantBody                        string
		wantLevel                       slog.Level
	}{
		{"GET", "/admin/loggers", "", "", 200, `{"root":{"level":"INFO"}}`, slog.LevelInfo},
		{"GET", "/admin/loggers/root", "", "", 200, `{"level":"INFO"}`, slog.LevelInfo},
		{"GET", "/admin/loggers/org.apache.kafka", "", "", 404, `Logger org.apache.kafka not found`, slog.LevelInfo},
		{"PUT", "/admin/loggers/root", "application/json", `{"level":"debug"}`, 200, `["root"]`, slog.LevelDebug},
		{"GET", "/admin/loggers/root", "", "", 200, `{"level":"DEBUG","last_modified":`, slog.LevelDebug},
		{"PUT", "/admin/loggers/root?scope=worker", "application/json", `{"level":"TRACE"}`, 200, `["root"]`, slog.LevelDebug - 4},
		{"PUT", "/admin/loggers/root", "application/json", `{"level":"LOUD"}`, 400, `Invalid log level 'LOUD'`, slog.LevelDebug - 4},
		{"PUT", "/admin/loggers/root", "application/json", `{}`, 400, `request has no \"level\"`, slog.LevelDebug - 4},
		{"PUT", "/admin/loggers/root", "text/plain", `{"level":"INFO"}`, 415, `"error_code":415`, slog.LevelDebug - 4},
		// The cluster's level reaches this node through its state (the fake has none to apply).
		{"PUT", "/admin/loggers/root?scope=cluster", "application/json", `{"level":"info"}`, 204, ``, slog.LevelDebug - 4},
		{"PUT", "/admin/loggers/root?scope=cluster", "application/json", `{"level":"LOUD"}`, 400, `Invalid log level 'LOUD'`, slog.LevelDebug - 4},
		{"PUT", "/admin/loggers/io.debezium?scope=cluster", "application/json", `{"level":"INFO"}`, 404, `Logger io.debezium not found`, slog.LevelDebug - 4},
		{"PUT", "/admin/loggers/root?scope=galaxy", "application/json", `{"level":"INFO"}`, 400, `invalid scope \"galaxy\"`, slog.LevelDebug - 4},
		{"PUT", "/admin/loggers/io.debezium", "application/json", `{"level":"INFO"}`, 404, `Logger io.debezium not found`, slog.LevelDebug - 4},
		{"PUT", "/admin/loggers/root", "application/json", `{"level":"WARN"}`, 200, `["root"]`, slog.LevelWarn},
	} {
		status, _, body := send(t, tc.method, srv.URL+tc.path, tc.contentType, tc.body)
		if status != tc.wantStatus || !strings.Contains(body, tc.wantBody) || level.Level() != tc.wantLevel {
			t.Errorf("%s %s %s = %d %s at level %s, want %d %s at %s", tc.method, tc.path, tc.body, status, body, level.Level(),
				tc.wantStatus, tc.wantBody, tc.wantLevel)
		}
	}
	if cl.logLevels["root"] != "INFO" || len(cl.logLevels) != 1 {
		t.Errorf("levels set for the cluster: %v, want root at INFO", cl.logLevels)
	}
	var got map[string]loggerLevel
	_, _, body := send(t, "GET", srv.URL+"/admin/loggers", "", "")
	if err := json.Unmarshal([]byte(body), &got); err != nil || got["root"].Level != "WARN" || got["root"].LastModified == nil ||
		time.Since(time.UnixMilli(*got["root"].LastModified)) > time.Minute {
		t.Errorf("GET /admin/loggers = %s, want root at WARN, just modified", body)
	}
}

func TestLoggersWithALevelThatCannotChange(t *testing.T) {
	srv := serveFake(t, newFakeCluster("n1", true))
	if status, _, body := send(t, "GET", srv.URL+"/admin/loggers", "", ""); status != 200 || body != "{}\n" && body != "{}" {
		t.Errorf("GET /admin/loggers = %d %q, want no logger", status, body)
	}
	if status, _, body := send(t, "PUT", srv.URL+"/admin/loggers/root", "application/json", `{"level":"DEBUG"}`); status != 404 {
		t.Errorf("PUT root = %d %s, want 404", status, body)
	}
}

func TestLevelNames(t *testing.T) {
	for name, l := range levels {
		if got := levelName(l); got != name && !(name == "ALL" && got == "TRACE") {
			t.Errorf("levelName(levels[%s]) = %s", name, got)
		}
	}
}
