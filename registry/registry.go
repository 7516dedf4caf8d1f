// Package registry is a Confluent-compatible schema registry (subjects,
// versions, global schema ids, compatibility levels, soft and hard deletes)
// that keeps its state in a pluggable Store.
//
// The rules are Confluent's: an id belongs to a schema, not to a subject, so
// the same schema registered under two subjects gets one id; registering a
// schema a subject already has returns its id and creates nothing; a new
// version is checked against the subject's live versions at the subject's
// compatibility level (else the global one, else BACKWARD_TRANSITIVE);
// soft-deleted versions keep their ids readable and their version numbers
// taken, and only a soft-deleted version or subject can be hard-deleted.
//
// Every change is appended to the Store before it is applied or answered,
// so a restarted registry replays exactly what it acknowledged. Reads take
// a shared lock only; writes are serialised with one another.
package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
)

// Version numbers with a special meaning.
const (
	// LatestVersion names a subject's newest live version.
	LatestVersion = -1
	// AllVersions asks CheckCompatibility for the check registration makes:
	// against the subject's live versions, as its level says.
	AllVersions = 0
)

// Schema is one version of a subject.
type Schema struct {
	Subject string
	Version int
	ID      int
	Schema  string // canonical text, see Canonical
	Deleted bool   // soft-deleted
}

// Opt configures a Registry.
type Opt func(*Registry)

// Logger sets where the registry logs registrations and deletions. Default
// slog.Default().
func Logger(l *slog.Logger) Opt { return func(r *Registry) { r.log = l } }

// DefaultCompatibility sets the level of subjects without one of their own
// while no global level is set through SetCompatibility. Default
// BACKWARD_TRANSITIVE (DESIGN.md section 4: typed documents evolve so that
// every version stays readable).
func DefaultCompatibility(c Compatibility) Opt { return func(r *Registry) { r.defaultLevel = c } }

// Registry is a schema registry kept in a Store.
type Registry struct {
	store        Store
	log          *slog.Logger
	defaultLevel Compatibility

	// writeMu serialises writers across their store round trip, so that an
	// id or a version number is handed out once. Readers never take it.
	writeMu sync.Mutex
	// stale is set when an Append failed: it may still have landed, so the
	// next writer catches up with the store first. Guarded by writeMu.
	stale bool

	// mu guards the contents of st (and st itself); writers change them only
	// while they also hold writeMu, so a writer may read st without mu.
	mu sync.RWMutex
	st *state
}

// New returns a registry with the state replayed from store.
func New(ctx context.Context, store Store, opts ...Opt) (*Registry, error) {
	r := &Registry{store: store, log: slog.Default(), defaultLevel: BackwardTransitive}
	for _, o := range opts {
		o(r)
	}
	if _, err := ParseCompatibility(string(r.defaultLevel)); err != nil {
		return nil, fmt.Errorf("default compatibility: %w", err)
	}
	st, err := r.load(ctx)
	if err != nil {
		return nil, err
	}
	r.st = st
	return r, nil
}

func (r *Registry) load(ctx context.Context) (*state, error) {
	st := newState(r.log)
	err := r.store.Replay(ctx, func(c Change) error {
		st.apply(c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("replay schema registry store: %w", err)
	}
	return st, nil
}

// level returns the compatibility level that applies to subject.
func (r *Registry) level(st *state, subject string) Compatibility {
	if s, ok := st.subjects[subject]; ok && s.level != "" {
		return s.level
	}
	if st.global != "" {
		return st.global
	}
	return r.defaultLevel
}

// beginWrite takes the writer lock and brings the state up to date with the
// store first (see catchUp). The caller unlocks writeMu.
func (r *Registry) beginWrite(ctx context.Context) error {
	r.writeMu.Lock()
	if err := r.catchUp(ctx); err != nil {
		r.writeMu.Unlock()
		return err
	}
	return nil
}

// CatchUp applies what other writers recorded in the store since this
// registry last read it, so that reads see it. Only a SharedStore has any:
// with another store it does nothing unless an earlier write failed.
func (r *Registry) CatchUp(ctx context.Context) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	return r.catchUp(ctx)
}

// catchUp applies a shared store's new changes, replaying the whole store
// when it cannot tell them, or when a failed Append to another store may
// still have landed. The caller holds writeMu.
func (r *Registry) catchUp(ctx context.Context) error {
	if shared, ok := r.store.(SharedStore); ok {
		var changes []Change
		err := shared.CatchUp(ctx, func(c Change) error {
			changes = append(changes, c)
			return nil
		})
		if err == nil {
			r.mu.Lock()
			for _, c := range changes {
				r.st.apply(c)
			}
			r.mu.Unlock()
			r.stale = false
			return nil
		}
		if !errors.Is(err, ErrReplayNeeded) {
			return fmt.Errorf("catch up with schema registry store: %w", err)
		}
	} else if !r.stale {
		return nil
	}
	st, err := r.load(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.st = st
	r.mu.Unlock()
	r.stale = false
	return nil
}

// commit appends changes to the store and, once they are durable, applies
// them. The caller holds writeMu.
func (r *Registry) commit(ctx context.Context, changes ...Change) error {
	if err := r.store.Append(ctx, changes...); err != nil {
		r.stale = true
		return fmt.Errorf("write schema registry store: %w", err)
	}
	r.mu.Lock()
	for _, c := range changes {
		r.st.apply(c)
	}
	r.mu.Unlock()
	return nil
}

// Register adds schema to subject as its next version and returns the
// schema's global id. A schema the subject already has (live) returns its
// id and creates nothing; the same schema under another subject keeps its
// id. The errors to branch on are ErrInvalidSchema and ErrIncompatible.
func (r *Registry) Register(ctx context.Context, subject, schema string) (int, error) {
	if subject == "" {
		return 0, errors.New("register schema: empty subject")
	}
	canon, err := Canonical(schema)
	if err != nil {
		return 0, err
	}
	// Known schemas, the common case, cost no Avro parse: every registered
	// one was valid.
	r.mu.RLock()
	id, ok := r.st.liveID(subject, canon)
	r.mu.RUnlock()
	if ok {
		return id, nil
	}
	parsed, err := parseAvro(canon)
	if err != nil {
		return 0, err
	}

	if err := r.beginWrite(ctx); err != nil {
		return 0, err
	}
	defer r.writeMu.Unlock()
	st := r.st
	if id, ok := st.liveID(subject, canon); ok {
		return id, nil
	}
	level := r.level(st, subject)
	s := st.subjects[subject]
	if s != nil {
		msgs, err := level.check(parsed, checked(s.live()))
		if err != nil {
			return 0, fmt.Errorf("check compatibility of subject %q: %w", subject, err)
		}
		if len(msgs) > 0 {
			return 0, &IncompatibleError{Subject: subject, Level: level, Messages: msgs}
		}
	}

	id = st.maxID + 1
	if e, ok := st.byText[canon]; ok {
		id = e.id
	}
	next := 1
	var changes []Change
	if s != nil {
		if last, ok := s.latest(true); ok {
			next = last.version + 1
		}
		// Like Confluent, drop soft-deleted versions of this same schema: the
		// subject would otherwise list one id under two versions.
		for _, v := range s.versions {
			if v.deleted && v.entry.id == id {
				changes = append(changes, Change{Kind: ChangeVersion, Subject: subject, Version: v.version, Remove: true})
			}
		}
	}
	if len(changes) > 0 {
		changes = append([]Change{{Kind: ChangeMaxID, ID: st.maxID}}, changes...)
	}
	changes = append(changes, Change{Kind: ChangeVersion, Subject: subject, Version: next, ID: id, Schema: canon})
	if err := r.commit(ctx, changes...); err != nil {
		return 0, fmt.Errorf("register version %d of subject %q: %w", next, subject, err)
	}
	r.log.Info("schema registered", "subject", subject, "version", next, "id", id)
	return id, nil
}

func checked(vs []version) []checkedVersion {
	out := make([]checkedVersion, len(vs))
	for i, v := range vs {
		out[i] = checkedVersion{version: v.version, entry: v.entry}
	}
	return out
}

// liveID returns the id of the schema with canonical text canon if subject
// has it as a live version.
func (st *state) liveID(subject, canon string) (int, bool) {
	s, ok := st.subjects[subject]
	if !ok {
		return 0, false
	}
	for _, v := range s.versions {
		if !v.deleted && v.entry.text == canon {
			return v.entry.id, true
		}
	}
	return 0, false
}

// SchemaByID returns the text of the schema with id, soft-deleted or not.
func (r *Registry) SchemaByID(_ context.Context, id int) (string, error) {
	r.mu.RLock()
	e, ok := r.st.byID[id]
	r.mu.RUnlock()
	if !ok {
		return "", fmt.Errorf("%w: id %d", ErrSchemaNotFound, id)
	}
	return e.text, nil
}

// Latest returns the newest live version of subject.
func (r *Registry) Latest(_ context.Context, subject string) (Schema, error) {
	return r.Version(subject, LatestVersion, false)
}

// SchemaAt returns live version v of subject.
func (r *Registry) SchemaAt(_ context.Context, subject string, v int) (Schema, error) {
	return r.Version(subject, v, false)
}

// Version returns version v (or LatestVersion) of subject; soft-deleted
// versions only if deleted.
func (r *Registry) Version(subject string, v int, deleted bool) (Schema, error) {
	if v != LatestVersion && v < 1 {
		return Schema{}, fmt.Errorf("%w: %d", ErrInvalidVersion, v)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.st.subjects[subject]
	if !ok || !s.has(deleted) {
		return Schema{}, fmt.Errorf("%w: %q", ErrSubjectNotFound, subject)
	}
	var ver version
	if v == LatestVersion {
		ver, ok = s.latest(false)
		if !ok {
			ver, ok = s.latest(true)
		}
	} else {
		var i int
		if i, ok = s.find(v); ok {
			ver = s.versions[i]
			ok = deleted || !ver.deleted
		}
	}
	if !ok {
		return Schema{}, fmt.Errorf("%w: version %d of subject %q", ErrVersionNotFound, v, subject)
	}
	return toSchema(subject, ver), nil
}

func toSchema(subject string, v version) Schema {
	return Schema{Subject: subject, Version: v.version, ID: v.entry.id, Schema: v.entry.text, Deleted: v.deleted}
}

// Lookup returns the version of subject that has schema; soft-deleted
// versions only if deleted.
func (r *Registry) Lookup(subject, schema string, deleted bool) (Schema, error) {
	canon, _, err := parse(schema)
	if err != nil {
		return Schema{}, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.st.subjects[subject]
	if !ok || !s.has(deleted) {
		return Schema{}, fmt.Errorf("%w: %q", ErrSubjectNotFound, subject)
	}
	for i := len(s.versions) - 1; i >= 0; i-- {
		v := s.versions[i]
		if v.entry.text == canon && (deleted || !v.deleted) {
			return toSchema(subject, v), nil
		}
	}
	return Schema{}, fmt.Errorf("%w: under subject %q", ErrSchemaNotFound, subject)
}

// Subjects returns the subjects with a live version (or any version, if
// deleted), sorted.
func (r *Registry) Subjects(deleted bool) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := []string{}
	for name, s := range r.st.subjects {
		if s.has(deleted) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Versions returns subject's live version numbers (all of them, if
// deleted), ascending.
func (r *Registry) Versions(subject string, deleted bool) ([]int, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.st.subjects[subject]
	if !ok || !s.has(deleted) {
		return nil, fmt.Errorf("%w: %q", ErrSubjectNotFound, subject)
	}
	out := []int{}
	for _, v := range s.versions {
		if deleted || !v.deleted {
			out = append(out, v.version)
		}
	}
	return out, nil
}

// VersionsByID returns the subject versions that use schema id, live ones
// only unless deleted, ordered by subject then version.
func (r *Registry) VersionsByID(id int, deleted bool) ([]Schema, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []Schema
	if _, ok := r.st.byID[id]; ok {
		for name, s := range r.st.subjects {
			for _, v := range s.versions {
				if v.entry.id == id && (deleted || !v.deleted) {
					out = append(out, toSchema(name, v))
				}
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: id %d", ErrSchemaNotFound, id)
	}
	slices.SortFunc(out, func(a, b Schema) int {
		if a.Subject != b.Subject {
			if a.Subject < b.Subject {
				return -1
			}
			return 1
		}
		return a.Version - b.Version
	})
	return out, nil
}

// DeleteSubject soft-deletes subject's live versions or, if permanent,
// hard-deletes its versions, which must all be soft-deleted already, and its
// compatibility level. It returns the version numbers it deleted.
func (r *Registry) DeleteSubject(ctx context.Context, subject string, permanent bool) ([]int, error) {
	if err := r.beginWrite(ctx); err != nil {
		return nil, err
	}
	defer r.writeMu.Unlock()
	st := r.st
	s, ok := st.subjects[subject]
	if !ok || !s.has(true) {
		return nil, fmt.Errorf("%w: %q", ErrSubjectNotFound, subject)
	}
	live := s.live()
	var changes []Change
	var deleted []int
	switch {
	case !permanent && len(live) == 0:
		return nil, fmt.Errorf("%w: %q", ErrSubjectSoftDeleted, subject)
	case !permanent:
		for _, v := range live {
			changes = append(changes, Change{Kind: ChangeVersion, Subject: subject, Version: v.version, ID: v.entry.id, Schema: v.entry.text, Deleted: true})
			deleted = append(deleted, v.version)
		}
	case len(live) > 0:
		return nil, fmt.Errorf("%w: %q", ErrSubjectNotSoftDeleted, subject)
	default:
		changes = append(changes, Change{Kind: ChangeMaxID, ID: st.maxID})
		for i := len(s.versions) - 1; i >= 0; i-- {
			changes = append(changes, Change{Kind: ChangeVersion, Subject: subject, Version: s.versions[i].version, Remove: true})
		}
		for _, v := range s.versions {
			deleted = append(deleted, v.version)
		}
		if s.level != "" {
			changes = append(changes, Change{Kind: ChangeConfig, Subject: subject, Remove: true})
		}
	}
	if err := r.commit(ctx, changes...); err != nil {
		return nil, fmt.Errorf("delete subject %q: %w", subject, err)
	}
	r.log.Info("schema subject deleted", "subject", subject, "versions", deleted, "permanent", permanent)
	return deleted, nil
}

// DeleteVersion soft-deletes version v (or LatestVersion) of subject or, if
// permanent, hard-deletes it, which it must be soft-deleted already. It
// returns the version number it deleted.
func (r *Registry) DeleteVersion(ctx context.Context, subject string, v int, permanent bool) (int, error) {
	if v != LatestVersion && v < 1 {
		return 0, fmt.Errorf("%w: %d", ErrInvalidVersion, v)
	}
	if err := r.beginWrite(ctx); err != nil {
		return 0, err
	}
	defer r.writeMu.Unlock()
	st := r.st
	s, ok := st.subjects[subject]
	if !ok || !s.has(true) {
		return 0, fmt.Errorf("%w: %q", ErrSubjectNotFound, subject)
	}
	var ver version
	if v == LatestVersion {
		ver, ok = s.latest(false)
	} else {
		var i int
		if i, ok = s.find(v); ok {
			ver = s.versions[i]
		}
	}
	if !ok {
		return 0, fmt.Errorf("%w: version %d of subject %q", ErrVersionNotFound, v, subject)
	}
	var changes []Change
	switch {
	case !permanent && ver.deleted:
		return 0, fmt.Errorf("%w: version %d of subject %q", ErrVersionSoftDeleted, ver.version, subject)
	case !permanent:
		changes = append(changes, Change{Kind: ChangeVersion, Subject: subject, Version: ver.version, ID: ver.entry.id, Schema: ver.entry.text, Deleted: true})
	case !ver.deleted:
		return 0, fmt.Errorf("%w: version %d of subject %q", ErrVersionNotSoftDeleted, ver.version, subject)
	default:
		changes = append(changes,
			Change{Kind: ChangeMaxID, ID: st.maxID},
			Change{Kind: ChangeVersion, Subject: subject, Version: ver.version, Remove: true})
		if len(s.versions) == 1 && s.level != "" {
			changes = append(changes, Change{Kind: ChangeConfig, Subject: subject, Remove: true})
		}
	}
	if err := r.commit(ctx, changes...); err != nil {
		return 0, fmt.Errorf("delete version %d of subject %q: %w", ver.version, subject, err)
	}
	r.log.Info("schema version deleted", "subject", subject, "version", ver.version, "id", ver.entry.id, "permanent", permanent)
	return ver.version, nil
}

// Compatibility returns subject's own compatibility level
// (ErrCompatibilityNotConfigured if it has none), or for subject "" the
// global level.
func (r *Registry) Compatibility(subject string) (Compatibility, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if subject == "" {
		return r.level(r.st, ""), nil
	}
	if s, ok := r.st.subjects[subject]; ok && s.level != "" {
		return s.level, nil
	}
	return "", fmt.Errorf("%w: %q", ErrCompatibilityNotConfigured, subject)
}

// SetCompatibility sets subject's compatibility level, or for subject "" the
// global one. A subject needs no version to have a level.
func (r *Registry) SetCompatibility(ctx context.Context, subject string, level Compatibility) error {
	if !slices.Contains(levels, level) {
		return fmt.Errorf("%w: %q", ErrInvalidCompatibility, level)
	}
	if err := r.beginWrite(ctx); err != nil {
		return err
	}
	defer r.writeMu.Unlock()
	current := r.st.global
	if subject != "" {
		current = ""
		if s, ok := r.st.subjects[subject]; ok {
			current = s.level
		}
	}
	if current == level {
		return nil
	}
	if err := r.commit(ctx, Change{Kind: ChangeConfig, Subject: subject, Level: level}); err != nil {
		return fmt.Errorf("set compatibility of subject %q: %w", subject, err)
	}
	r.log.Info("schema compatibility set", "subject", subject, "level", level)
	return nil
}

// DeleteCompatibility drops subject's own compatibility level
// (ErrCompatibilityNotConfigured if it has none), or for subject "" the
// global one, which reverts to the default. It returns the level dropped.
func (r *Registry) DeleteCompatibility(ctx context.Context, subject string) (Compatibility, error) {
	if err := r.beginWrite(ctx); err != nil {
		return "", err
	}
	defer r.writeMu.Unlock()
	st := r.st
	previous := r.level(st, subject)
	if subject == "" {
		if st.global == "" {
			return previous, nil
		}
	} else if s, ok := st.subjects[subject]; !ok || s.level == "" {
		return "", fmt.Errorf("%w: %q", ErrCompatibilityNotConfigured, subject)
	}
	if err := r.commit(ctx, Change{Kind: ChangeConfig, Subject: subject, Remove: true}); err != nil {
		return "", fmt.Errorf("delete compatibility of subject %q: %w", subject, err)
	}
	r.log.Info("schema compatibility deleted", "subject", subject, "level", previous)
	return previous, nil
}

// CheckCompatibility returns why schema could not be registered under
// subject, or nothing if it could. With AllVersions it makes the check
// registration makes; with a version (or LatestVersion) it checks against
// that version only, in the direction(s) of the subject's level. A subject
// without versions accepts anything.
func (r *Registry) CheckCompatibility(subject, schema string, v int) ([]string, error) {
	if v != LatestVersion && v < AllVersions {
		return nil, fmt.Errorf("%w: %d", ErrInvalidVersion, v)
	}
	_, parsed, err := parse(schema)
	if err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	level := r.level(r.st, subject)
	var against []version
	if s, ok := r.st.subjects[subject]; ok {
		switch v {
		case AllVersions:
			against = s.live()
		case LatestVersion:
			if ver, ok := s.latest(false); ok {
				against = []version{ver}
			}
		default:
			if i, ok := s.find(v); ok && !s.versions[i].deleted {
				against = []version{s.versions[i]}
			}
		}
	}
	if v > 0 && len(against) == 0 {
		return nil, fmt.Errorf("%w: version %d of subject %q", ErrVersionNotFound, v, subject)
	}
	return level.check(parsed, checked(against))
}
