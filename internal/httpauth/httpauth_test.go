package httpauth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/mongorelay/mongorelay/internal/jsonerr"
)

const (
	token     = "tok-0123456789abcdef"
	usersFile = `# mongorelay users
alice: pw-alice,admin
bob = pw-bob , Read-Only
carol: pw-carol,readonly,Administrators,ADMIN

! a Java properties comment
dave: pw:with=signs,read-only,Users
`
)

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

func TestParseBasicFile(t *testing.T) {
	users, err := parseBasicFile([]byte(usersFile))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Role{"alice": Admin, "bob": ReadOnly, "carol": Admin, "dave": ReadOnly}
	if len(users) != len(want) {
		t.Errorf("users %v, want %v", users, want)
	}
	for name, role := range want {
		if users[name].role != role {
			t.Errorf("%s has role %v, want %v", name, users[name].role, role)
		}
	}

	tests := []struct {
		name, file string
		want       []string
	}{
		{"no separator", "alice pw,admin\n", []string{"line 1 is not user: password,role"}},
		{"no name", ": pw,admin\n", []string{"line 1 has no user name"}},
		{"listed twice", "a: pw1,admin\nb: pw2,admin\na: pw3,read-only\n", []string{`line 3: user "a" is listed twice`}},
		{"no password", "a: ,admin\n", []string{`line 1: user "a" has no password`}},
		{"hashed password", "a: MD5:164c88b302622e17050af52c89945d44,admin\n", []string{`user "a" has an obfuscated or hashed password`}},
		{"no role", "a: pw\n", []string{`user "a" has no role: end the line with ,admin or ,read-only`}},
		{"only other roles", "a: pw,Users,Operators\n", []string{`user "a" has roles ["Users" "Operators"], none of them admin or read-only`}},
		{"no users", "# nobody yet\n\n", []string{"has no users"}},
		{"every problem at once", "a: pw\nb\nc: ,admin\n", []string{"line 1:", "line 2 ", "line 3:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseBasicFile([]byte(tt.file))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, secret := range []string{"pw1", "pw2", "pw3", "164c88b3"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows a password", err)
				}
			}
		})
	}
}

func TestNew(t *testing.T) {
	if u, err := New("", nil); u != nil || err != nil || u.Enabled() {
		t.Errorf("no token, no file: %v, %v; want authentication off", u, err)
	}
	if _, err := New("short", nil); err == nil || !strings.Contains(err.Error(), "shorter than 16 characters") {
		t.Errorf("a short token: %v", err)
	}
	u, err := New(token, []byte(usersFile))
	if err != nil || !u.Enabled() {
		t.Fatalf("token and file: %v", err)
	}
	// Only digests are kept: neither the token nor a password is in the value.
	if dump := fmt.Sprintf("%#v %#v", *u, u.basic); strings.Contains(dump, token) || strings.Contains(dump, "pw-alice") {
		t.Errorf("Users holds a secret in clear: %s", dump)
	}
}

// TestAuthenticate: the token and each user's password are accepted exactly; anything near
// them (a prefix, an extension, another user's password) is ErrBadCredentials like an
// unknown user; no header is ErrNoCredentials.
func TestAuthenticate(t *testing.T) {
	both, err := New(token, []byte(usersFile))
	if err != nil {
		t.Fatal(err)
	}
	tokenOnly, _ := New(token, nil)
	basicOnly, _ := New("", []byte(usersFile))
	tests := []struct {
		name   string
		users  *Users
		header string
		want   User
		err    error
	}{
		{"no header", both, "", User{}, ErrNoCredentials},
		{"the token", both, "Bearer " + token, User{TokenUser, Admin}, nil},
		{"the token, scheme in lower case", both, "bearer " + token, User{TokenUser, Admin}, nil},
		{"a prefix of the token", both, "Bearer " + token[:len(token)-1], User{}, ErrBadCredentials},
		{"the token and more", both, "Bearer " + token + "x", User{}, ErrBadCredentials},
		{"an empty token", both, "Bearer ", User{}, ErrBadCredentials},
		{"an admin", both, basic("alice", "pw-alice"), User{"alice", Admin}, nil},
		{"a read-only user", both, basic("bob", "pw-bob"), User{"bob", ReadOnly}, nil},
		{"a password with separators", both, basic("dave", "pw:with=signs"), User{"dave", ReadOnly}, nil},
		{"a wrong password", both, basic("alice", "pw-bob"), User{}, ErrBadCredentials},
		{"a prefix of the password", both, basic("alice", "pw-alic"), User{}, ErrBadCredentials},
		{"an empty password", both, basic("alice", ""), User{}, ErrBadCredentials},
		{"an unknown user", both, basic("mallory", "pw-alice"), User{}, ErrBadCredentials},
		{"the token as a password", both, basic("alice", token), User{}, ErrBadCredentials},
		{"not base64", both, "Basic !!!", User{}, ErrBadCredentials},
		{"another scheme", both, "Digest username=alice", User{}, ErrBadCredentials},
		{"a user where only the token is set", tokenOnly, basic("alice", "pw-alice"), User{}, ErrBadCredentials},
		{"the token where only users are set", basicOnly, "Bearer " + token, User{}, ErrBadCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			got, err := tt.users.Authenticate(r)
			if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Errorf("Authenticate(%q) = %+v, %v; want %+v, %v", tt.header, got, err, tt.want, tt.err)
			}
		})
	}
}

// TestMiddleware: open routes take anyone; reads take any user, writes an admin; a refusal is
// a 401 with a challenge per way to authenticate, or a 403 for a read-only user's write, in
// the error shape.
func TestMiddleware(t *testing.T) {
	users, err := New(token, []byte(usersFile))
	if err != nil {
		t.Fatal(err)
	}
	access := func(method, route string) Access {
		if route == "/health" {
			return Open
		}
		return MethodAccess(method)
	}
	serve := func(u *Users) http.Handler {
		e := echo.New()
		e.Use(u.Middleware(access, "application/test+json", slog.New(slog.DiscardHandler)))
		ok := func(c echo.Context) error { return c.String(http.StatusOK, "done") }
		e.GET("/health", ok)
		e.GET("/things/:id", ok)
		e.POST("/things", ok)
		e.DELETE("/things/:id", ok)
		return e
	}
	h := serve(users)
	tests := []struct {
		method, path, auth string
		want               int
		message            string
	}{
		{http.MethodGet, "/health", "", http.StatusOK, ""},
		{http.MethodGet, "/health", basic("alice", "wrong"), http.StatusOK, ""},
		{http.MethodGet, "/things/1", "", http.StatusUnauthorized,
			"authentication required: send the admin token of http.auth.token (Authorization: Bearer <token>) or a user and password of http.auth.basic.file (HTTP Basic)"},
		{http.MethodPost, "/things", "", http.StatusUnauthorized, "authentication required"},
		{http.MethodGet, "/no-such-route", "", http.StatusUnauthorized, "authentication required"},
		{http.MethodGet, "/things/1", basic("bob", "wrong"), http.StatusUnauthorized, "invalid credentials: the token, the user or the password is wrong"},
		{http.MethodDelete, "/things/1", "Bearer nope-nope-nope-nope", http.StatusUnauthorized, "invalid credentials"},
		{http.MethodGet, "/things/1", basic("bob", "pw-bob"), http.StatusOK, ""},
		{http.MethodPost, "/things", basic("bob", "pw-bob"), http.StatusForbidden, `user "bob" is read-only: POST /things needs an admin`},
		{http.MethodDelete, "/things/1", basic("dave", "pw:with=signs"), http.StatusForbidden, `user "dave" is read-only: DELETE /things/1 needs an admin`},
		{http.MethodPost, "/things", basic("alice", "pw-alice"), http.StatusOK, ""},
		{http.MethodDelete, "/things/1", "Bearer " + token, http.StatusOK, ""},
		{http.MethodGet, "/things/1", "Bearer " + token, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s %q", tt.method, tt.path, tt.auth), func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status %d %s, want %d", rec.Code, rec.Body, tt.want)
			}
			challenges := rec.Header().Values("WWW-Authenticate")
			if tt.want == http.StatusUnauthorized {
				if strings.Join(challenges, "; ") != `Basic realm="mongorelay", charset="UTF-8"; Bearer realm="mongorelay"` {
					t.Errorf("WWW-Authenticate %q, want a Basic and a Bearer challenge", challenges)
				}
			} else if len(challenges) > 0 {
				t.Errorf("WWW-Authenticate %q on a %d", challenges, rec.Code)
			}
			if tt.message == "" {
				return
			}
			var body jsonerr.Body
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Code != tt.want || !strings.HasPrefix(body.Message, tt.message) {
				t.Errorf("body %s (%v), want error_code %d and a message starting %q", rec.Body, err, tt.want, tt.message)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/test+json" {
				t.Errorf("content type %q", ct)
			}
		})
	}

	// Without users every request goes through.
	rec := httptest.NewRecorder()
	serve(nil).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/things", nil))
	if body, _ := io.ReadAll(rec.Body); rec.Code != http.StatusOK || string(body) != "done" {
		t.Errorf("no users: %d %s, want the handler's answer", rec.Code, body)
	}
}

func TestLoad(t *testing.T) {
	if _, err := Load("", "/nonexistent/users"); err == nil || !strings.Contains(err.Error(), "read the users file") {
		t.Errorf("a missing file: %v", err)
	}
	dir := t.TempDir()
	path := dir + "/users"
	if err := os.WriteFile(path, []byte("a: pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load("", path); err == nil || !strings.HasPrefix(err.Error(), path+": line 1:") {
		t.Errorf("a bad file: %v, want its path and line", err)
	}
}
