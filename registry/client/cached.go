package client

import (
	"context"
	"sync"

	"github.com/mongorelay/mongorelay/registry"
)

// Source is a registry the cache sits in front of: a *registry.Registry or
// a *Client.
type Source interface {
	Register(ctx context.Context, subject, schema string) (int, error)
	SchemaByID(ctx context.Context, id int) (string, error)
	Latest(ctx context.Context, subject string) (registry.Schema, error)
	SchemaAt(ctx context.Context, subject string, v int) (registry.Schema, error)
}

// Cached answers from memory what a registry has answered before: the id of
// a schema under a subject, and the schema of an id. Both never change once
// given (ids are immutable), so entries never expire. Latest is not cached:
// callers ask for it precisely because it may have moved.
//
// A Register hit costs one map lookup on the text as given; a text not seen
// before is canonicalised and looked up again, so a reformatted copy of a
// known schema costs no I/O either.
type Cached struct {
	src  Source
	ids  sync.Map // subjectSchema (text as given, and canonical) -> int
	byID sync.Map // int -> string
}

type subjectSchema struct{ subject, schema string }

// NewCached returns a cache in front of src.
func NewCached(src Source) *Cached { return &Cached{src: src} }

// Register returns the id of schema under subject, registering it on the
// first call only.
func (c *Cached) Register(ctx context.Context, subject, schema string) (int, error) {
	key := subjectSchema{subject, schema}
	if id, ok := c.ids.Load(key); ok {
		return id.(int), nil
	}
	canon, err := registry.Canonical(schema)
	if err != nil {
		return 0, err
	}
	canonKey := subjectSchema{subject, canon}
	if id, ok := c.ids.Load(canonKey); ok {
		c.ids.Store(key, id)
		return id.(int), nil
	}
	id, err := c.src.Register(ctx, subject, schema)
	if err != nil {
		return 0, err
	}
	c.ids.Store(key, id)
	c.ids.Store(canonKey, id)
	return id, nil
}

// SchemaByID returns the schema with id, asking the registry once.
func (c *Cached) SchemaByID(ctx context.Context, id int) (string, error) {
	if s, ok := c.byID.Load(id); ok {
		return s.(string), nil
	}
	s, err := c.src.SchemaByID(ctx, id)
	if err != nil {
		return "", err
	}
	c.byID.Store(id, s)
	return s, nil
}

// SchemaAt asks the registry for version v of subject.
func (c *Cached) SchemaAt(ctx context.Context, subject string, v int) (registry.Schema, error) {
	return c.src.SchemaAt(ctx, subject, v)
}

// Latest asks the registry for the newest version of subject, and
// remembers what it learns for Register and SchemaByID.
func (c *Cached) Latest(ctx context.Context, subject string) (registry.Schema, error) {
	s, err := c.src.Latest(ctx, subject)
	if err != nil {
		return s, err
	}
	c.byID.Store(s.ID, s.Schema)
	if canon, err := registry.Canonical(s.Schema); err == nil {
		c.ids.Store(subjectSchema{subject, canon}, s.ID)
	}
	return s, nil
}
