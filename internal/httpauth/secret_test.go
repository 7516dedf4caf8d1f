package httpauth

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

const clusterSecret = "cluster-secret-0123456789"

func TestNewSecret(t *testing.T) {
	if s, err := NewSecret(""); s != nil || err != nil || s.Enabled() {
		t.Errorf(`NewSecret("") = %v, %v; want none`, s, err)
	}
	for _, bad := range []string{"short", "has a space in it 0123"} {
		if _, err := NewSecret(bad); err == nil {
			t.Errorf("NewSecret(%q) took it", bad)
		}
	}
	s, err := NewSecret(clusterSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(s) + fmt.Sprintf("%v %+v", s, s); strings.Contains(got, clusterSecret) {
		t.Errorf("the secret shows when printed: %s", got)
	}
}

// TestSecretMiddleware: the node-to-node routes take only the requests with the secret:
// 401 without, 403 with another; without a secret they take every request.
func TestSecretMiddleware(t *testing.T) {
	secret, err := NewSecret(clusterSecret)
	if err != nil {
		t.Fatal(err)
	}
	serve := func(s *Secret) http.Handler {
		e := echo.New()
		e.Use(s.Middleware(nil, "application/json", slog.New(slog.DiscardHandler)))
		e.POST("/internal/heartbeat", func(c echo.Context) error { return c.String(http.StatusOK, "done") })
		return e
	}
	for _, tt := range []struct {
		name   string
		secret *Secret
		sent   string
		want   int
	}{
		{"without the secret", secret, "", http.StatusUnauthorized},
		{"with another secret", secret, "another-secret-0123456789", http.StatusForbidden},
		{"with a prefix of the secret", secret, clusterSecret[:20], http.StatusForbidden},
		{"with the secret", secret, clusterSecret, http.StatusOK},
		{"no secret configured", nil, "", http.StatusOK},
	} {
		req := httptest.NewRequest(http.MethodPost, "/internal/heartbeat", nil)
		if tt.sent != "" {
			req.Header.Set(SecretHeader, tt.sent)
		}
		rec := httptest.NewRecorder()
		serve(tt.secret).ServeHTTP(rec, req)
		if rec.Code != tt.want || strings.Contains(rec.Body.String(), clusterSecret) {
			t.Errorf("%s: %d %s, want %d without the secret in the answer", tt.name, rec.Code, rec.Body, tt.want)
		}
	}
}

// TestTrustNodes: with the cluster secret, the leader takes the user a follower names instead
// of authenticating the caller again; a request naming a user without the secret is refused,
// and a read-only user named by a follower still cannot write.
func TestTrustNodes(t *testing.T) {
	users, err := New(token, []byte(usersFile))
	if err != nil {
		t.Fatal(err)
	}
	secret, err := NewSecret(clusterSecret)
	if err != nil {
		t.Fatal(err)
	}
	serve := func(u *Users) http.Handler {
		e := echo.New()
		e.Use(u.Middleware(func(method, _ string) Access { return MethodAccess(method) }, "application/json", slog.New(slog.DiscardHandler)))
		ok := func(c echo.Context) error {
			u, _ := UserOf(c)
			return c.String(http.StatusOK, u.Name)
		}
		e.GET("/things", ok)
		e.POST("/things", ok)
		return e
	}
	trusting, plain := serve(users.TrustNodes(secret)), serve(users)
	for _, tt := range []struct {
		name         string
		h            http.Handler
		method       string
		secret, role string
		auth         string
		want         int
		wantUser     string
	}{
		{"a follower names an admin", trusting, http.MethodPost, clusterSecret, "admin", "", http.StatusOK, "alice"},
		{"a follower names a read-only user reading", trusting, http.MethodGet, clusterSecret, "read-only", "", http.StatusOK, "alice"},
		{"a follower names a read-only user writing", trusting, http.MethodPost, clusterSecret, "read-only", "", http.StatusForbidden, ""},
		{"a role without the secret", trusting, http.MethodPost, "", "admin", basic("bob", "pw-bob"), http.StatusUnauthorized, ""},
		{"a role with another secret", trusting, http.MethodPost, "another-secret-0123456789", "admin", "", http.StatusForbidden, ""},
		{"an unknown role", trusting, http.MethodPost, clusterSecret, "root", "", http.StatusForbidden, ""},
		{"no role: the caller's own credentials", trusting, http.MethodPost, clusterSecret, "", "Bearer " + token, http.StatusOK, TokenUser},
		{"a node without the secret ignores the role", plain, http.MethodPost, clusterSecret, "admin", basic("bob", "pw-bob"), http.StatusForbidden, ""},
	} {
		req := httptest.NewRequest(tt.method, "/things", nil)
		if tt.secret != "" {
			req.Header.Set(SecretHeader, tt.secret)
		}
		if tt.role != "" {
			SetForwardedUser(req.Header, User{Name: "alice", Role: map[string]Role{"admin": Admin}[tt.role]})
			req.Header.Set(RoleHeader, tt.role)
		}
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		rec := httptest.NewRecorder()
		tt.h.ServeHTTP(rec, req)
		if rec.Code != tt.want || (tt.want == http.StatusOK && rec.Body.String() != tt.wantUser) {
			t.Errorf("%s: %d %s, want %d (user %q)", tt.name, rec.Code, rec.Body, tt.want, tt.wantUser)
		}
	}
	if users.TrustNodes(nil) != users || (*Users)(nil).TrustNodes(secret) != nil {
		t.Error("TrustNodes without a secret or users changed them")
	}
}

// TestPeerCertificates: with WithPeerCertificates, a request whose client certificate the
// listener verified goes through in place of the secret; one without still needs the secret,
// and with no secret at all nothing else gets in.
func TestPeerCertificates(t *testing.T) {
	secret, err := NewSecret(clusterSecret)
	if err != nil {
		t.Fatal(err)
	}
	verified := &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{}}}}
	for _, tt := range []struct {
		name   string
		s      *Secret
		state  *tls.ConnectionState
		sent   string
		want   int
		header bool // the secret is put on calls
	}{
		{"a node's certificate, no secret sent", secret.WithPeerCertificates(), verified, "", http.StatusOK, true},
		{"no certificate, the secret", secret.WithPeerCertificates(), &tls.ConnectionState{}, clusterSecret, http.StatusOK, true},
		{"no certificate, no secret", secret.WithPeerCertificates(), &tls.ConnectionState{}, "", http.StatusUnauthorized, true},
		{"certificates only: one", (*Secret)(nil).WithPeerCertificates(), verified, "", http.StatusOK, false},
		{"certificates only: none", (*Secret)(nil).WithPeerCertificates(), nil, "", http.StatusUnauthorized, false},
		{"certificates only: a header is no secret", (*Secret)(nil).WithPeerCertificates(), nil, "anything-at-all-0123", http.StatusUnauthorized, false},
		{"a certificate without WithPeerCertificates", secret, verified, "", http.StatusUnauthorized, true},
	} {
		e := echo.New()
		e.Use(tt.s.Middleware(nil, "application/json", slog.New(slog.DiscardHandler)))
		e.POST("/internal/join", func(c echo.Context) error { return c.String(http.StatusOK, "done") })
		req := httptest.NewRequest(http.MethodPost, "/internal/join", nil)
		req.TLS = tt.state
		if tt.sent != "" {
			req.Header.Set(SecretHeader, tt.sent)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, rec.Code, rec.Body, tt.want)
		}
		h := http.Header{}
		tt.s.Set(h)
		if (h.Get(SecretHeader) != "") != tt.header {
			t.Errorf("%s: calls carry %q", tt.name, h.Get(SecretHeader))
		}
	}
}
