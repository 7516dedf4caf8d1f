package client_test

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mongorelay/mongorelay/api/registryapi"
	"github.com/mongorelay/mongorelay/registry"
	"github.com/mongorelay/mongorelay/registry/client"
	"github.com/mongorelay/mongorelay/registry/registrytest"
)

const (
	userV1       = `{"type":"record","name":"User","fields":[{"name":"id","type":"long"}]}`
	userV2       = `{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"email","type":["null","string"],"default":null}]}`
	userRequired = `{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"age","type":"int"}]}`
)

// Tasks use either registry behind one interface.
var (
	_ client.Source = (*registry.Registry)(nil)
	_ client.Source = (*client.Client)(nil)
	_ client.Source = (*client.Cached)(nil)
)

// newRegistryServer serves a fresh registry over HTTP the way the standalone
// process does, and returns its URL.
func newRegistryServer(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	reg, err := registry.New(t.Context(), registrytest.NewStore(), registry.Logger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = registryapi.NewServer(reg, quiet)
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestClientAgainstRegistryAPI(t *testing.T) {
	ctx := t.Context()
	c, err := client.New(newRegistryServer(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	id1, err := c.Register(ctx, "users-value", userV1)
	if err != nil || id1 != 1 {
		t.Fatalf("Register: %d, %v", id1, err)
	}
	id2, err := c.Register(ctx, "users-value", userV2)
	if err != nil || id2 != 2 {
		t.Fatalf("Register v2: %d, %v", id2, err)
	}
	if again, err := c.Register(ctx, "users-value", userV1); err != nil || again != id1 {
		t.Fatalf("Register again: %d, %v", again, err)
	}
	want, _ := registry.Canonical(userV2)
	if s, err := c.SchemaByID(ctx, id2); err != nil || s != want {
		t.Fatalf("SchemaByID: %s, %v", s, err)
	}
	latest, err := c.Latest(ctx, "users-value")
	if err != nil || latest != (registry.Schema{Subject: "users-value", Version: 2, ID: id2, Schema: want}) {
		t.Fatalf("Latest: %+v, %v", latest, err)
	}

	tests := []struct {
		name string
		err  error
		want error
	}{
		{"unknown id", func() error { _, err := c.SchemaByID(ctx, 99); return err }(), registry.ErrSchemaNotFound},
		{"unknown subject", func() error { _, err := c.Latest(ctx, "nope"); return err }(), registry.ErrSubjectNotFound},
		{"incompatible", func() error { _, err := c.Register(ctx, "users-value", userRequired); return err }(), registry.ErrIncompatible},
		{"invalid", func() error { _, err := c.Register(ctx, "users-value", `{"type":"nope"}`); return err }(), registry.ErrInvalidSchema},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, tt.err, tt.want)
		}
		if _, ok := errors.AsType[*client.Error](tt.err); !ok {
			t.Errorf("%s: %v is not a *client.Error", tt.name, tt.err)
		}
	}
}

func TestClientSubjectEscaping(t *testing.T) {
	ctx := t.Context()
	c, err := client.New(newRegistryServer(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	subject := "a/b c?d"
	if _, err := c.Register(ctx, subject, userV1); err != nil {
		t.Fatal(err)
	}
	if l, err := c.Latest(ctx, subject); err != nil || l.Subject != subject {
		t.Fatalf("Latest: %+v, %v", l, err)
	}
}

func TestClientFailsOverAndAuthenticates(t *testing.T) {
	var user, password string
	url := newRegistryServer(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user, password, _ = r.BasicAuth()
			h.ServeHTTP(w, r)
		})
	})
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()

	withUser := "http://alice:secret@" + url[len("http://"):]
	c, err := client.New(dead.URL + ", " + withUser + "/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(t.Context(), "s", userV1); err != nil {
		t.Fatalf("Register with the first URL down: %v", err)
	}
	if user != "alice" || password != "secret" {
		t.Fatalf("basic auth %q:%q", user, password)
	}

	c, err = client.New(url, client.BasicAuth("bob", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SchemaByID(t.Context(), 1); err != nil || user != "bob" {
		t.Fatalf("SchemaByID: %v, user %q", err, user)
	}
}

func TestClientAllURLsDown(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	c, err := client.New(dead.URL + "," + dead.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SchemaByID(t.Context(), 1); err == nil {
		t.Fatal("no error with every URL down")
	}
}

func TestClientNonJSONError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream broke", http.StatusBadGateway)
	}))
	defer srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.SchemaByID(t.Context(), 1)
	e, ok := errors.AsType[*client.Error](err)
	if !ok || e.StatusCode != http.StatusBadGateway || e.Message != "upstream broke" {
		t.Fatalf("error %#v", err)
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", " , ", "localhost:8081", "ftp://x", "http://"} {
		if _, err := client.New(u); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}
