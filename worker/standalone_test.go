package worker

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConnectorFilesKeepReferences loads a connector file whose password is a reference to a
// properties file: the connector keeps the reference (its tasks resolve it), and a reference
// that does not resolve fails the load, naming the file, the key and the reference.
func TestConnectorFilesKeepReferences(t *testing.T) {
	dir := t.TempDir()
	props := filepath.Join(dir, "mongo.properties")
	if err := os.WriteFile(props, []byte("password=Fi1eSecret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	uri := "mongodb://cdc:${file:" + props + ":password}@db1:27017/"
	good := filepath.Join(dir, "good.json")
	writeConnector(t, good, "good", uri)
	conns, err := LoadConnectorFiles([]string{good})
	if err != nil {
		t.Fatal(err)
	}
	if got := conns[0].Config["mongodb.connection.string"]; got != uri {
		t.Errorf("loaded connection string %q, want the reference kept: %q", got, uri)
	}

	bad := filepath.Join(dir, "bad.json")
	writeConnector(t, bad, "bad", "mongodb://cdc:${file:"+props+":pasword}@db1:27017/")
	_, err = LoadConnectorFiles([]string{bad})
	if err == nil {
		t.Fatal("a connector file whose reference names a missing key loaded")
	}
	for _, want := range []string{bad, `"mongodb.connection.string"`, `no key "pasword"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "Fi1eSecret") {
		t.Errorf("error shows the secret: %v", err)
	}
}

func writeConnector(t *testing.T, path, name, uri string) {
	t.Helper()
	body := `{"name": "` + name + `", "config": {"connector.class": "mongodb", "topic.prefix": "shop",
		"mongodb.connection.string": "` + uri + `"}}`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAStandaloneProcessServesNoPeerRoute: a standalone process has no other node, so the
// node-to-node routes, which a cluster guards with cluster.secret, are not there at all.
func TestAStandaloneProcessServesNoPeerRoute(t *testing.T) {
	n := NewStandalone(Config{}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), "", "")
	n.initMetrics()
	for _, path := range []string{"/internal/heartbeat", "/internal/join", "/internal/registry", "/internal/forward"} {
		rec := httptest.NewRecorder()
		n.handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader("{}")))
		if rec.Code != http.StatusNotFound {
			t.Errorf("POST %s = %d %s, want 404", path, rec.Code, rec.Body)
		}
	}
}
