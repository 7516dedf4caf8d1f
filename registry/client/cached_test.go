package client_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mongorelay/mongorelay/registry"
	"github.com/mongorelay/mongorelay/registry/client"
	"github.com/mongorelay/mongorelay/registry/registrytest"
)

// counting is a registry that counts the calls reaching it.
type counting struct {
	client.Source
	calls atomic.Int64
}

func (c *counting) Register(ctx context.Context, subject, schema string) (int, error) {
	c.calls.Add(1)
	return c.Source.Register(ctx, subject, schema)
}

func (c *counting) SchemaByID(ctx context.Context, id int) (string, error) {
	c.calls.Add(1)
	return c.Source.SchemaByID(ctx, id)
}

func (c *counting) Latest(ctx context.Context, subject string) (registry.Schema, error) {
	c.calls.Add(1)
	return c.Source.Latest(ctx, subject)
}

func newCached(t testing.TB) (*client.Cached, *counting) {
	t.Helper()
	reg, err := registry.New(context.Background(), registrytest.NewStore(), registry.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	src := &counting{Source: reg}
	return client.NewCached(src), src
}

func TestCachedRegister(t *testing.T) {
	ctx := t.Context()
	c, src := newCached(t)
	reformatted := `{ "name": "User", "type": "record", "fields": [ {"type": "long", "name": "id"} ] }`
	tests := []struct {
		name      string
		subject   string
		schema    string
		wantID    int
		wantCalls int64 // calls reaching the registry so far
	}{
		{"first registration asks", "s", userV1, 1, 1},
		{"same text is a hit", "s", userV1, 1, 1},
		{"reformatted text is a hit", "s", reformatted, 1, 1},
		{"another subject asks", "t", userV1, 1, 2},
		{"a new schema asks", "s", userV2, 2, 3},
	}
	for _, tt := range tests {
		id, err := c.Register(ctx, tt.subject, tt.schema)
		if err != nil || id != tt.wantID {
			t.Fatalf("%s: %d, %v; want %d", tt.name, id, err, tt.wantID)
		}
		if n := src.calls.Load(); n != tt.wantCalls {
			t.Fatalf("%s: %d calls reached the registry, want %d", tt.name, n, tt.wantCalls)
		}
	}
}

func TestCachedErrorsAreNotCached(t *testing.T) {
	ctx := t.Context()
	c, src := newCached(t)
	if _, err := c.Register(ctx, "s", `{"type":"nope"}`); !errors.Is(err, registry.ErrInvalidSchema) {
		t.Fatalf("invalid schema: %v", err)
	}
	if _, err := c.SchemaByID(ctx, 1); !errors.Is(err, registry.ErrSchemaNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	if _, err := c.Register(ctx, "s", userV1); err != nil {
		t.Fatal(err)
	}
	before := src.calls.Load()
	if _, err := c.SchemaByID(ctx, 1); err != nil {
		t.Fatalf("id after registration: %v", err)
	}
	if src.calls.Load() != before+1 {
		t.Fatal("a failed lookup was cached")
	}
}

func TestCachedSchemaByIDAndLatest(t *testing.T) {
	ctx := t.Context()
	c, src := newCached(t)
	id, err := src.Source.Register(ctx, "s", userV1)
	if err != nil {
		t.Fatal(err)
	}
	latest, err := c.Latest(ctx, "s")
	if err != nil || latest.ID != id {
		t.Fatalf("Latest: %+v, %v", latest, err)
	}
	if _, err := c.Latest(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if n := src.calls.Load(); n != 2 {
		t.Fatalf("Latest must always ask: %d calls", n)
	}
	// What Latest returned is known now.
	if s, err := c.SchemaByID(ctx, id); err != nil || s != latest.Schema {
		t.Fatalf("SchemaByID: %s, %v", s, err)
	}
	if got, err := c.Register(ctx, "s", userV1); err != nil || got != id {
		t.Fatalf("Register: %d, %v", got, err)
	}
	if n := src.calls.Load(); n != 2 {
		t.Fatalf("%d calls, want 2", n)
	}
}

func TestCachedConcurrentUse(t *testing.T) {
	ctx := t.Context()
	c, _ := newCached(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				id, err := c.Register(ctx, "s", userV1)
				if err != nil || id != 1 {
					t.Errorf("Register: %d, %v", id, err)
					return
				}
				if _, err := c.SchemaByID(ctx, id); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkCachedRegisterHit is the encoder's hot path: a schema it has
// registered before.
func BenchmarkCachedRegisterHit(b *testing.B) {
	ctx := context.Background()
	c, _ := newCached(b)
	if _, err := c.Register(ctx, "s", userV2); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Register(ctx, "s", userV2); err != nil {
				b.Fatal(err)
			}
		}
	})
}
