package registry

import "context"

// Store keeps the registry's changes. The standalone process uses a
// compacted Kafka topic (package kafkastore); a cluster its Raft log
// (package replicated), which is a SharedStore.
//
// Every change is keyed: a subject version, a subject's (or the global)
// compatibility level, or the id high-water mark. Only the last change for a
// key matters, so a store may drop any change that a later one with the same
// key supersedes, and a Remove change once nothing older with its key is
// left. That is what Kafka's log compaction does.
type Store interface {
	// Append records changes, in order, and returns once they are durable.
	// The registry applies a change and answers only after this returns nil.
	Append(ctx context.Context, changes ...Change) error
	// Replay calls apply with every change recorded so far, oldest first, and
	// returns once it has seen all that were durable when it was called.
	Replay(ctx context.Context, apply func(Change) error) error
}

// SharedStore is a Store that other registries write to as well. Its Append
// refuses changes (ErrConflict) when another writer changed the registry
// since this store last read or wrote, because the registry allocates ids
// from what it has read; the registry then catches up (CatchUp) before its
// next write instead of replaying everything.
type SharedStore interface {
	Store
	// CatchUp calls apply with the changes recorded since this store last
	// replayed, appended or caught up, oldest first. It returns
	// ErrReplayNeeded when it cannot tell them all (a change that dropped a
	// key is no longer kept): the registry then replays the whole store.
	CatchUp(ctx context.Context, apply func(Change) error) error
}

// ChangeKind says which key a Change is for.
type ChangeKind uint8

// The kinds of change.
const (
	// ChangeVersion sets (or, with Remove, hard-deletes) version Version of
	// Subject: schema ID with text Schema, soft-deleted if Deleted.
	ChangeVersion ChangeKind = iota + 1
	// ChangeConfig sets Subject's compatibility Level, or the global one when
	// Subject is empty; with Remove it drops the setting.
	ChangeConfig
	// ChangeMaxID records ID as the highest id ever assigned. A hard delete
	// writes it first, so the id of a schema whose every version is gone,
	// and compacted away, is still never given to another schema.
	ChangeMaxID
)

// Change is one keyed change to the registry's state. Applying the same
// change twice is harmless.
type Change struct {
	Kind    ChangeKind
	Subject string
	Version int
	ID      int
	Schema  string
	Deleted bool
	Level   Compatibility
	Remove  bool
}
