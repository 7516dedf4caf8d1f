package api

import (
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mongorelay/mongorelay/internal/forward"
	"github.com/mongorelay/mongorelay/internal/httpauth"
)

const adminToken = "admin-token-0123456789"

func testUsers(t *testing.T, file string) *httpauth.Users {
	t.Helper()
	u, err := httpauth.New(adminToken, []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func serveWith(t *testing.T, f *fakeCluster, opts ...ServerOption) *httptest.Server {
	t.Helper()
	opts = append([]ServerOption{WithLogger(quiet), WithForwardWait(time.Second)}, opts...)
	srv := httptest.NewServer(NewServer(f, testCatalog(t), opts...).Handler())
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, method, url, body, auth string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data), resp.Header
}

func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// TestRouteAccess: the probes and the status page are open, GETs are reads and every other
// route a write.
func TestRouteAccess(t *testing.T) {
	e := NewServer(newFakeCluster("n1", true), testCatalog(t), WithMetrics(http.NotFoundHandler())).e
	for _, r := range e.Routes() {
		got := access(r.Method, r.Path)
		want := httpauth.Write
		switch {
		case r.Path == "/health" || r.Path == "/readyz" || r.Path == "/ui":
			want = httpauth.Open
		case r.Method == http.MethodGet:
			want = httpauth.Read
		}
		if got != want {
			t.Errorf("%s %s needs %v, want %v", r.Method, r.Path, got, want)
		}
	}
}

// TestAuthOnTheRESTAPI: with users every route but the probes and the status page refuses a
// request without credentials; a read-only user reads and is refused writes; an admin writes.
func TestAuthOnTheRESTAPI(t *testing.T) {
	f := newFakeCluster("n1", true)
	f.status["orders"] = ConnectorStatus{Name: "orders", Tasks: []TaskStatus{}}
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "up 1\n") })
	srv := serveWith(t, f, WithAuth(testUsers(t, "viewer: pw-viewer,read-only\nops: pw-ops,admin\n")), WithMetrics(metrics))
	viewer, ops, bearer := basicAuth("viewer", "pw-viewer"), basicAuth("ops", "pw-ops"), "Bearer "+adminToken
	tests := []struct {
		method, path, body, auth string
		want                     int
	}{
		{http.MethodGet, "/health", "", "", http.StatusOK},
		{http.MethodGet, "/readyz", "", "", http.StatusOK},
		{http.MethodGet, "/ui", "", "", http.StatusOK},
		{http.MethodGet, "/openapi.json", "", "", http.StatusUnauthorized},
		{http.MethodGet, "/openapi.json", "", viewer, http.StatusOK},
		{http.MethodGet, "/", "", "", http.StatusUnauthorized},
		{http.MethodGet, "/connectors", "", "", http.StatusUnauthorized},
		{http.MethodGet, "/cluster", "", basicAuth("viewer", "nope"), http.StatusUnauthorized},
		{http.MethodPost, "/connectors", validConnector, "", http.StatusUnauthorized},
		{http.MethodPost, "/connectors", validConnector, viewer, http.StatusForbidden},
		{http.MethodPost, "/connectors", validConnector, ops, http.StatusCreated},
		{http.MethodGet, "/connectors/orders/config", "", viewer, http.StatusOK},
		{http.MethodGet, "/connectors/orders/status", "", viewer, http.StatusOK},
		{http.MethodGet, "/metrics", "", "", http.StatusUnauthorized},
		{http.MethodGet, "/metrics", "", viewer, http.StatusOK},
		{http.MethodPut, "/connectors/orders/pause", "", viewer, http.StatusForbidden},
		{http.MethodPut, "/connectors/orders/pause", "", bearer, http.StatusAccepted},
		{http.MethodDelete, "/connectors/orders", "", viewer, http.StatusForbidden},
		{http.MethodDelete, "/cluster/nodes/n2", "", "", http.StatusUnauthorized},
		{http.MethodDelete, "/connectors/orders", "", bearer, http.StatusNoContent},
	}
	for _, tt := range tests {
		status, body, header := call(t, tt.method, srv.URL+tt.path, tt.body, tt.auth)
		if status != tt.want {
			t.Errorf("%s %s as %q = %d %s, want %d", tt.method, tt.path, tt.auth, status, body, tt.want)
		}
		if status == http.StatusUnauthorized && (header.Get("WWW-Authenticate") == "" || !strings.HasPrefix(body, `{"error_code":401,"message":"`)) {
			t.Errorf("%s %s: 401 %s without a challenge or the error shape", tt.method, tt.path, body)
		}
		if status == http.StatusForbidden && body != `{"error_code":403,"message":"user \"viewer\" is read-only: `+tt.method+` `+tt.path+` needs an admin"}` {
			t.Errorf("%s %s: 403 %s", tt.method, tt.path, body)
		}
	}
}

// TestForwardedWriteCarriesTheCaller: a follower forwards a write with the caller's own
// credentials, which the leader checks again: the admin's write is applied, the follower
// answers once it has applied the leader's state too, and credentials the leader does not
// take are refused by it, its challenge reaching the caller.
func TestForwardedWriteCarriesTheCaller(t *testing.T) {
	leader := newFakeCluster("leader", true)
	leaderSrv := serveWith(t, leader, WithAuth(testUsers(t, "ops: pw-ops,admin\n")))
	follower := newFakeCluster("n2", false)
	follower.leaderHTTP = strings.TrimPrefix(leaderSrv.URL, "http://")
	// The follower takes a user the leader does not know: nodes with different users files.
	followerSrv := serveWith(t, follower, WithAuth(testUsers(t, "ops: pw-ops,admin\nstale: pw-stale,admin\n")))

	status, body, header := call(t, http.MethodPost, followerSrv.URL+"/connectors", validConnector, basicAuth("ops", "pw-ops"))
	if status != http.StatusCreated || header.Get("Location") != "/connectors/orders" {
		t.Fatalf("POST through the follower = %d %s (Location %q), want the leader's 201 and Location", status, body, header.Get("Location"))
	}
	if _, ok := leader.connectors["orders"]; !ok {
		t.Error("the leader did not apply the forwarded write")
	}
	if !slices.Equal(follower.waited, []uint64{1}) {
		t.Errorf("the follower waited for indexes %v before answering, want the leader's [1]", follower.waited)
	}
	status, body, header = call(t, http.MethodDelete, followerSrv.URL+"/connectors/orders", "", basicAuth("stale", "pw-stale"))
	if status != http.StatusUnauthorized || header.Get("WWW-Authenticate") == "" || !strings.Contains(body, "invalid credentials") {
		t.Errorf("a write the leader's users refuse = %d %s (challenge %q), want the leader's 401", status, body, header.Get("WWW-Authenticate"))
	}
	if _, ok := leader.connectors["orders"]; !ok {
		t.Error("the leader applied a write from a user it does not know")
	}
}

// TestForwardedWriteWithClusterSecret: with cluster.secret a follower forwards a write with
// the secret and the caller it authenticated, which the leader takes; a request marked
// forwarded without the secret is refused 401 (403 with another one), whatever credentials
// it carries, and a role named without the secret counts for nothing.
func TestForwardedWriteWithClusterSecret(t *testing.T) {
	secret, err := httpauth.NewSecret("cluster-secret-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	users := "ops: pw-ops,admin\nviewer: pw-viewer,read-only\n"
	leader := newFakeCluster("leader", true)
	leaderSrv := serveWith(t, leader, WithAuth(testUsers(t, users)), WithClusterSecret(secret))
	follower := newFakeCluster("n2", false)
	follower.leaderHTTP = strings.TrimPrefix(leaderSrv.URL, "http://")
	followerSrv := serveWith(t, follower, WithAuth(testUsers(t, users)), WithClusterSecret(secret))

	status, body, _ := call(t, http.MethodPost, followerSrv.URL+"/connectors", validConnector, basicAuth("ops", "pw-ops"))
	if _, ok := leader.connectors["orders"]; status != http.StatusCreated || !ok {
		t.Fatalf("an admin's POST through the follower = %d %s, want the leader's 201", status, body)
	}
	if status, body, _ := call(t, http.MethodGet, followerSrv.URL+"/connectors", "", basicAuth("viewer", "pw-viewer")); status != http.StatusOK {
		t.Errorf("a read-only user's forwarded read = %d %s, want 200", status, body)
	}
	if status, _, _ := call(t, http.MethodDelete, followerSrv.URL+"/connectors/orders", "", basicAuth("viewer", "pw-viewer")); status != http.StatusForbidden {
		t.Errorf("a read-only user's write through the follower = %d, want 403", status)
	}

	forged := func(secretSent, role, auth string) (int, string) {
		req, _ := http.NewRequest(http.MethodDelete, leaderSrv.URL+"/connectors/orders", nil)
		req.Header.Set(forward.Header, "1")
		if secretSent != "" {
			req.Header.Set(httpauth.SecretHeader, secretSent)
		}
		if role != "" {
			req.Header.Set(httpauth.RoleHeader, role)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	for _, tt := range []struct {
		name, secret, role, auth string
		want                     int
	}{
		{"forwarded without the secret, with an admin's credentials", "", "", "Bearer " + adminToken, http.StatusUnauthorized},
		{"forwarded with another secret", "another-secret-0123456789", "admin", "", http.StatusForbidden},
		{"a forged admin role without the secret", "", "admin", basicAuth("viewer", "pw-viewer"), http.StatusUnauthorized},
	} {
		if status, body := forged(tt.secret, tt.role, tt.auth); status != tt.want || !strings.Contains(body, "cluster secret") {
			t.Errorf("%s = %d %s, want %d naming the cluster secret", tt.name, status, body, tt.want)
		}
	}
	if _, ok := leader.connectors["orders"]; !ok {
		t.Error("a forged forwarded request deleted the connector")
	}
}

// TestBodyLimitAndInternalErrors: a body over 1 MiB is a 413 naming the limit; a 500 does not
// show the error, which the log has.
func TestBodyLimitAndInternalErrors(t *testing.T) {
	f := newFakeCluster("n1", true)
	srv := serveWith(t, f)
	big := `{"name":"x","config":{"topic.prefix":"` + strings.Repeat("a", 1<<20) + `"}}`
	status, body, _ := call(t, http.MethodPost, srv.URL+"/connectors", big, "")
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "at most 1 MiB") {
		t.Errorf("a 1 MiB config = %d %.200s, want 413 naming the limit", status, body)
	}
	f.fail = errors.New("raft apply: open /var/lib/mongorelay/raft/raft.db: permission denied")
	status, body, _ = call(t, http.MethodDelete, srv.URL+"/connectors/x", "", "")
	if status != http.StatusInternalServerError || body != `{"error_code":500,"message":"internal server error (see the node's log)"}` {
		t.Errorf("an internal error = %d %s, want a 500 that shows nothing of it", status, body)
	}
}
