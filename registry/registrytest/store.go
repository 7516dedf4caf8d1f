// Package registrytest provides an in-memory registry.Store for tests.
package registrytest

import (
	"context"
	"slices"
	"sync"

	"github.com/mongorelay/mongorelay/registry"
)

// Store is an in-memory registry.Store that can fail on demand and compact
// itself the way a Kafka topic would.
type Store struct {
	mu      sync.Mutex
	changes []registry.Change
	fail    error
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{} }

// Append records changes, or returns the error set by FailNext.
func (s *Store) Append(_ context.Context, changes ...registry.Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail; err != nil {
		s.fail = nil
		return err
	}
	s.changes = append(s.changes, changes...)
	return nil
}

// Replay calls apply with every change, oldest first.
func (s *Store) Replay(_ context.Context, apply func(registry.Change) error) error {
	for _, c := range s.Changes() {
		if err := apply(c); err != nil {
			return err
		}
	}
	return nil
}

// Changes returns a copy of the changes recorded so far.
func (s *Store) Changes() []registry.Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.changes)
}

// FailNext makes the next Append return err without recording anything.
func (s *Store) FailNext(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

// Compact keeps only the last change per key, in its place, and drops the
// Remove changes left: what Kafka's log compaction does once tombstones
// expire.
func (s *Store) Compact() {
	s.mu.Lock()
	defer s.mu.Unlock()
	type key struct {
		kind    registry.ChangeKind
		subject string
		version int
	}
	keyOf := func(c registry.Change) key {
		switch c.Kind {
		case registry.ChangeVersion:
			return key{c.Kind, c.Subject, c.Version}
		case registry.ChangeConfig:
			return key{kind: c.Kind, subject: c.Subject}
		default:
			return key{kind: c.Kind}
		}
	}
	last := map[key]int{}
	for i, c := range s.changes {
		last[keyOf(c)] = i
	}
	var kept []registry.Change
	for i, c := range s.changes {
		if last[keyOf(c)] == i && !c.Remove {
			kept = append(kept, c)
		}
	}
	s.changes = kept
}
