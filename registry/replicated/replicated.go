// Package replicated is a cluster's schema registry (DESIGN.md 3): its state is the Raft log's,
// applied incrementally on every node, read locally, and written on the leader only.
//
// Every node holds a registry.Registry fed from its own copy of the cluster state: a read
// first applies the registry changes recorded since the last one it applied (nothing when no
// registry change came, whatever else moved), and a read that misses (an id, a version) waits
// until this node has applied what it knows the leader committed, then reads again: the
// leader may have written it a moment ago. A write is applied on the leader, here when this
// node leads, else sent to the leader through forward.Do, and read back here once this node
// has applied it.
package replicated

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mongorelay/mongorelay/internal/forward"
	"github.com/mongorelay/mongorelay/registry"
)

// Log is the cluster state the registry lives in; *coordinator.Node is one.
type Log interface {
	// AppendRegistry appends changes if the registry is still at sequence number expect and
	// returns the new one; else an error matching registry.ErrConflict. It returns a
	// *forward.NotLeaderError on a node that does not lead.
	AppendRegistry(ctx context.Context, expect uint64, changes []registry.Change) (uint64, error)
	// RegistryChanges returns the changes last written after sequence number after, oldest
	// first, and the sequence number they bring the reader to; complete is false when some
	// are no longer kept, and the reader must start again from 0.
	RegistryChanges(after uint64) (changes []registry.Change, seq uint64, complete bool)
	// WaitIndex returns once this node has applied the Raft log up to index.
	WaitIndex(ctx context.Context, index uint64) error
	// CommittedIndex is the index this node reaches once it has applied all it knows to
	// be committed.
	CommittedIndex() uint64
}

// Sender sends a write to the leader whose node-to-node API is at addr; *peer.Client is one.
// It answers a *forward.NotLeaderError when addr no longer leads, and the registry's own
// refusals as the registry's errors (registry.DecodeError).
type Sender interface {
	RegistryWrite(ctx context.Context, addr string, call registry.Call) (registry.Result, error)
}

// writeTimeout bounds a write that has to wait for a leader.
const writeTimeout = 30 * time.Second

// readTimeout bounds the catching up of the reads that take no context.
const readTimeout = 5 * time.Second

// conflictAttempts bounds how often a write is tried again after another writer changed the
// registry first; each try catches up before it allocates anything.
const conflictAttempts = 5

// Registry is a cluster node's schema registry. It serves the tasks (tasks.SchemaRegistry),
// the Confluent-compatible API (registryapi.SchemaRegistry) and the writes other nodes send
// the leader (ApplyCall).
type Registry struct {
	sender Sender
	log    *slog.Logger
	opts   []registry.Opt

	// store and reg are set once by Bind.
	store *store
	reg   *registry.Registry
}

// New returns the registry of a node whose Raft log is not open yet: Bind it before anything
// reads or writes it. opts configure the registry.Registry it holds.
func New(sender Sender, log *slog.Logger, opts ...registry.Opt) *Registry {
	return &Registry{sender: sender, log: log, opts: append([]registry.Opt{registry.Logger(log)}, opts...)}
}

// Bind loads the registry from l, whose changes it follows from then on.
func (r *Registry) Bind(ctx context.Context, l Log) error {
	s := &store{log: l}
	reg, err := registry.New(ctx, s, r.opts...)
	if err != nil {
		return fmt.Errorf("load the schema registry from the cluster state: %w", err)
	}
	r.store, r.reg = s, reg
	return nil
}

// current returns the registry with every change this node has applied.
func (r *Registry) current(ctx context.Context) (*registry.Registry, error) {
	if r.store.behind() {
		if err := r.reg.CatchUp(ctx); err != nil {
			return nil, err
		}
	}
	return r.reg, nil
}

// caughtUp returns the registry once this node has applied what it knows the leader
// committed.
func (r *Registry) caughtUp(ctx context.Context) (*registry.Registry, error) {
	if err := r.store.log.WaitIndex(ctx, r.store.log.CommittedIndex()); err != nil {
		return nil, fmt.Errorf("catch up with the cluster's schema registry: %w", err)
	}
	return r.current(ctx)
}

// ApplyCall applies a write on this node's registry: it succeeds on the leader (and on any
// node when the write changes nothing) and returns a *forward.NotLeaderError elsewhere. The
// result carries the index a node reading it back waits for.
func (r *Registry) ApplyCall(ctx context.Context, call registry.Call) (registry.Result, error) {
	var res registry.Result
	var err error
	for range conflictAttempts {
		if res, err = registry.Apply(ctx, r.reg, call); !errors.Is(err, registry.ErrConflict) {
			break
		}
	}
	res.Index = r.store.log.CommittedIndex()
	return res, err
}

// write applies a write where it can be: here on the leader, else on the leader at the
// address forward.Do names. A write the leader applied is read back from here once this
// node has applied it too.
func (r *Registry) write(ctx context.Context, call registry.Call) (registry.Result, error) {
	res, err := forward.Do(ctx, writeTimeout, func(ctx context.Context) (registry.Result, error) {
		return r.ApplyCall(ctx, call)
	}, func(ctx context.Context, addr string) (registry.Result, bool, error) {
		res, err := r.sender.RegistryWrite(ctx, addr, call)
		if err != nil {
			if registry.IsAnswer(err) {
				return res, true, err
			}
			r.log.Debug("schema registry write on the leader failed; looking for the leader again", "leader_http", addr, "err", err)
			return res, false, nil
		}
		if err := r.store.log.WaitIndex(ctx, res.Index); err != nil {
			r.log.Warn("schema registry write applied on the leader, but this node has not caught up with it", "index", res.Index, "err", err)
		}
		return res, true, nil
	})
	if _, noLeader := errors.AsType[*forward.NotLeaderError](err); noLeader {
		return res, fmt.Errorf("schema registry %s of %q: no leader reached: %w", call.Op, call.Subject, err)
	}
	return res, err
}

// Register registers a schema under subject, on the leader, and returns its id. A schema the
// subject has already is answered here, without the leader (registry.Registry.Register
// changes nothing then).
func (r *Registry) Register(ctx context.Context, subject, schema string) (int, error) {
	res, err := r.write(ctx, registry.Call{Op: registry.OpRegister, Subject: subject, Schema: schema})
	return res.ID, err
}

// DeleteSubject deletes a subject, on the leader.
func (r *Registry) DeleteSubject(ctx context.Context, subject string, permanent bool) ([]int, error) {
	res, err := r.write(ctx, registry.Call{Op: registry.OpDeleteSubject, Subject: subject, Permanent: permanent})
	return res.Versions, err
}

// DeleteVersion deletes a subject's version, on the leader.
func (r *Registry) DeleteVersion(ctx context.Context, subject string, version int, permanent bool) (int, error) {
	res, err := r.write(ctx, registry.Call{Op: registry.OpDeleteVersion, Subject: subject, Version: version, Permanent: permanent})
	return res.Version, err
}

// SetCompatibility sets a compatibility level, on the leader.
func (r *Registry) SetCompatibility(ctx context.Context, subject string, level registry.Compatibility) error {
	_, err := r.write(ctx, registry.Call{Op: registry.OpSetCompatibility, Subject: subject, Level: string(level)})
	return err
}

// DeleteCompatibility drops a compatibility level, on the leader.
func (r *Registry) DeleteCompatibility(ctx context.Context, subject string) (registry.Compatibility, error) {
	res, err := r.write(ctx, registry.Call{Op: registry.OpDeleteCompatibility, Subject: subject})
	return registry.Compatibility(res.Level), err
}

// SchemaByID returns a schema by id, after catching up with the leader when the id is not
// known here yet.
func (r *Registry) SchemaByID(ctx context.Context, id int) (string, error) {
	return readCaughtUp(ctx, r, func(reg *registry.Registry) (string, error) {
		return reg.SchemaByID(ctx, id)
	}, registry.ErrSchemaNotFound)
}

// Latest returns a subject's newest version.
func (r *Registry) Latest(ctx context.Context, subject string) (registry.Schema, error) {
	return read(ctx, r, func(reg *registry.Registry) (registry.Schema, error) { return reg.Latest(ctx, subject) })
}

// SchemaAt returns version v of a subject, after catching up with the leader when it is not
// known here yet.
func (r *Registry) SchemaAt(ctx context.Context, subject string, v int) (registry.Schema, error) {
	return readCaughtUp(ctx, r, func(reg *registry.Registry) (registry.Schema, error) {
		return reg.SchemaAt(ctx, subject, v)
	}, registry.ErrVersionNotFound, registry.ErrSubjectNotFound)
}

// read reads from the registry with every change this node has applied.
func read[T any](ctx context.Context, r *Registry, f func(*registry.Registry) (T, error)) (T, error) {
	reg, err := r.current(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	return f(reg)
}

// readCaughtUp reads and, when the read misses with one of the missing errors, reads once
// more after catching up with the leader: what it looks for may have been written there a
// moment ago.
func readCaughtUp[T any](ctx context.Context, r *Registry, f func(*registry.Registry) (T, error), missing ...error) (T, error) {
	v, err := read(ctx, r, f)
	for _, m := range missing {
		if errors.Is(err, m) {
			reg, err := r.caughtUp(ctx)
			if err != nil {
				return v, err
			}
			return f(reg)
		}
	}
	return v, err
}

// readNow is read for the reads that take no context.
func readNow[T any](r *Registry, f func(*registry.Registry) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	return read(ctx, r, f)
}

// Lookup finds the version of subject that has schema.
func (r *Registry) Lookup(subject, schema string, deleted bool) (registry.Schema, error) {
	return readNow(r, func(reg *registry.Registry) (registry.Schema, error) { return reg.Lookup(subject, schema, deleted) })
}

// Subjects lists the subjects.
func (r *Registry) Subjects(deleted bool) []string {
	out, err := readNow(r, func(reg *registry.Registry) ([]string, error) { return reg.Subjects(deleted), nil })
	if err != nil {
		r.log.Warn("list schema registry subjects", "err", err)
	}
	return out
}

// Versions lists a subject's versions.
func (r *Registry) Versions(subject string, deleted bool) ([]int, error) {
	return readNow(r, func(reg *registry.Registry) ([]int, error) { return reg.Versions(subject, deleted) })
}

// Version returns one version of a subject.
func (r *Registry) Version(subject string, version int, deleted bool) (registry.Schema, error) {
	return readNow(r, func(reg *registry.Registry) (registry.Schema, error) { return reg.Version(subject, version, deleted) })
}

// VersionsByID lists the subject versions that use schema id.
func (r *Registry) VersionsByID(id int, deleted bool) ([]registry.Schema, error) {
	return readNow(r, func(reg *registry.Registry) ([]registry.Schema, error) { return reg.VersionsByID(id, deleted) })
}

// Compatibility returns the compatibility level that applies to subject.
func (r *Registry) Compatibility(subject string) (registry.Compatibility, error) {
	return readNow(r, func(reg *registry.Registry) (registry.Compatibility, error) { return reg.Compatibility(subject) })
}

// CheckCompatibility tests schema against a subject's versions.
func (r *Registry) CheckCompatibility(subject, schema string, version int) ([]string, error) {
	return readNow(r, func(reg *registry.Registry) ([]string, error) {
		return reg.CheckCompatibility(subject, schema, version)
	})
}

// store is the registry.SharedStore over a Log. Its registry serialises the calls to
// Append, Replay and CatchUp; behind may be called at any time.
type store struct {
	log  Log
	mu   sync.Mutex
	seen uint64 // the sequence number of the last change the registry applied
}

var _ registry.SharedStore = (*store)(nil)

func (s *store) Append(ctx context.Context, changes ...registry.Change) error {
	if len(changes) == 0 {
		return nil
	}
	seq, err := s.log.AppendRegistry(ctx, s.read(), changes)
	if err != nil {
		return err
	}
	s.set(seq)
	return nil
}

func (s *store) Replay(_ context.Context, apply func(registry.Change) error) error {
	changes, seq, _ := s.log.RegistryChanges(0)
	return s.applyAll(changes, seq, apply)
}

func (s *store) CatchUp(_ context.Context, apply func(registry.Change) error) error {
	changes, seq, complete := s.log.RegistryChanges(s.read())
	if !complete {
		return registry.ErrReplayNeeded
	}
	return s.applyAll(changes, seq, apply)
}

func (s *store) applyAll(changes []registry.Change, seq uint64, apply func(registry.Change) error) error {
	for _, c := range changes {
		if err := apply(c); err != nil {
			return err
		}
	}
	s.set(seq)
	return nil
}

// behind reports whether the Log has registry changes the registry has not applied.
func (s *store) behind() bool {
	_, seq, _ := s.log.RegistryChanges(s.read())
	return seq != s.read()
}

func (s *store) read() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen
}

func (s *store) set(seq uint64) {
	s.mu.Lock()
	s.seen = seq
	s.mu.Unlock()
}
