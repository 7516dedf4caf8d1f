package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mongorelay/mongorelay/api/peer"
	"github.com/mongorelay/mongorelay/api/registryapi"
	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/internal/forward"
	"github.com/mongorelay/mongorelay/registry"
)

// registryNode is what the cluster's schema registry needs of the coordinator.
type registryNode interface {
	State() *coordinator.State
	RegistryStore() *coordinator.RegistryStore
	WaitIndex(ctx context.Context, index uint64) error
}

// registryWriteTimeout bounds a write that has to wait for a leader.
const registryWriteTimeout = 30 * time.Second

// clusterRegistry is a cluster node's schema registry (DESIGN.md 3): its state lives in Raft.
// Reads are served by a registry.Registry loaded from this node's copy of the state, loaded
// again whenever the state has moved on (and once more, after catching up with the leader,
// when an id is not found), so that an id or version the leader just wrote is found here too.
// Writes are applied on the leader: here when this node leads, else sent to the leader's
// POST /internal/registry. It serves both the tasks (tasks.SchemaRegistry) and the
// Confluent-compatible API on registry.listen (registryapi.SchemaRegistry).
type clusterRegistry struct {
	node  registryNode
	peers *peer.Client
	log   *slog.Logger

	mu    sync.Mutex // guards reg and index, and is held while loading
	reg   *registry.Registry
	index uint64 // the state index reg was loaded at
}

var (
	_ registryapi.SchemaRegistry = (*clusterRegistry)(nil)
	_ registry.Writer            = (*clusterRegistry)(nil)
)

// newClusterRegistry returns the registry of a node whose coordinator is not open yet: bind
// it before anything reads or writes it.
func newClusterRegistry(peers *peer.Client, log *slog.Logger) *clusterRegistry {
	return &clusterRegistry{peers: peers, log: log}
}

// bind makes r the registry of node's cluster state. The node's tasks use r and the node's
// coordinator lists their connectors' tasks (which needs no registry), so r exists before
// the coordinator does.
func (r *clusterRegistry) bind(node registryNode) { r.node = node }

// current returns the registry loaded at the current state, loading it if the state moved
// on since (or always, with force).
func (r *clusterRegistry) current(ctx context.Context, force bool) (*registry.Registry, error) {
	index := r.node.State().Index()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reg != nil && r.index == index && !force {
		return r.reg, nil
	}
	reg, err := registry.New(ctx, r.node.RegistryStore(), registry.Logger(r.log))
	if err != nil {
		if r.reg != nil {
			r.log.Warn("reloading the schema registry failed; answering from the last copy", "err", err)
			return r.reg, nil
		}
		return nil, fmt.Errorf("load the schema registry from the cluster state: %w", err)
	}
	r.reg, r.index = reg, index
	return reg, nil
}

// reader is current for the read methods that take no context.
func (r *clusterRegistry) reader() (*registry.Registry, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.current(ctx, false)
}

// applyLocal applies a write on this node's registry: it succeeds on the leader (and on any
// node when the write changes nothing) and returns a *coordinator.NotLeaderError elsewhere.
// A registry another writer changed since it was loaded is loaded again and the write tried
// again.
func (r *clusterRegistry) applyLocal(ctx context.Context, call registry.Call) (registry.Result, error) {
	for attempt := 0; ; attempt++ {
		reg, err := r.current(ctx, attempt > 0)
		if err != nil {
			return registry.Result{}, err
		}
		res, err := registry.Apply(ctx, reg, call)
		if !errors.Is(err, coordinator.ErrRegistryConflict) || attempt >= 4 {
			return res, err
		}
	}
}

// write applies a write where it can be: here on the leader, else on the leader through its
// node-to-node endpoint (forward.Do), waiting while no leader is known. A write the leader
// applied is read back from here once this node has applied it too.
func (r *clusterRegistry) write(ctx context.Context, call registry.Call) (registry.Result, error) {
	res, err := forward.Do(ctx, registryWriteTimeout,
		func(ctx context.Context) (registry.Result, error) { return r.applyLocal(ctx, call) },
		func(ctx context.Context, addr string) (registry.Result, bool, error) {
			res, err := r.peers.RegistryWrite(ctx, addr, call)
			if err != nil {
				if registry.IsAnswer(err) {
					return res, true, err
				}
				r.log.Debug("schema registry write on the leader failed; looking for the leader again", "leader_http", addr, "err", err)
				return res, false, nil
			}
			if err := r.node.WaitIndex(ctx, res.Index); err != nil {
				r.log.Warn("schema registry write applied on the leader, but this node has not caught up with it", "index", res.Index, "err", err)
			}
			_, _ = r.current(ctx, true)
			return res, true, nil
		})
	if _, noLeader := errors.AsType[*forward.NotLeaderError](err); noLeader {
		return res, fmt.Errorf("schema registry %s of %q: no leader reached: %w", call.Op, call.Subject, err)
	}
	return res, err
}

func (r *clusterRegistry) Register(ctx context.Context, subject, schema string) (int, error) {
	res, err := r.write(ctx, registry.Call{Op: registry.OpRegister, Subject: subject, Schema: schema})
	return res.ID, err
}

// DeleteSubject deletes a subject, on the leader.
func (r *clusterRegistry) DeleteSubject(ctx context.Context, subject string, permanent bool) ([]int, error) {
	res, err := r.write(ctx, registry.Call{Op: registry.OpDeleteSubject, Subject: subject, Permanent: permanent})
	return res.Versions, err
}

// DeleteVersion deletes a subject's version, on the leader.
func (r *clusterRegistry) DeleteVersion(ctx context.Context, subject string, version int, permanent bool) (int, error) {
	res, err := r.write(ctx, registry.Call{Op: registry.OpDeleteVersion, Subject: subject, Version: version, Permanent: permanent})
	return res.Version, err
}

// SetCompatibility sets a compatibility level, on the leader.
func (r *clusterRegistry) SetCompatibility(ctx context.Context, subject string, level registry.Compatibility) error {
	_, err := r.write(ctx, registry.Call{Op: registry.OpSetCompatibility, Subject: subject, Level: string(level)})
	return err
}

// DeleteCompatibility drops a compatibility level, on the leader.
func (r *clusterRegistry) DeleteCompatibility(ctx context.Context, subject string) (registry.Compatibility, error) {
	res, err := r.write(ctx, registry.Call{Op: registry.OpDeleteCompatibility, Subject: subject})
	return registry.Compatibility(res.Level), err
}

// SchemaByID returns a schema by id; an id not found is looked for again after catching up
// with the leader, since it may have been allocated a moment ago.
func (r *clusterRegistry) SchemaByID(ctx context.Context, id int) (string, error) {
	return readCaughtUp(ctx, r, func(reg *registry.Registry) (string, error) {
		return reg.SchemaByID(ctx, id)
	}, registry.ErrSchemaNotFound)
}

// Latest returns a subject's newest version.
func (r *clusterRegistry) Latest(ctx context.Context, subject string) (registry.Schema, error) {
	reg, err := r.current(ctx, false)
	if err != nil {
		return registry.Schema{}, err
	}
	return reg.Latest(ctx, subject)
}

// SchemaAt returns version v of a subject, after catching up with the leader when it is not
// known here yet.
func (r *clusterRegistry) SchemaAt(ctx context.Context, subject string, v int) (registry.Schema, error) {
	return readCaughtUp(ctx, r, func(reg *registry.Registry) (registry.Schema, error) {
		return reg.SchemaAt(ctx, subject, v)
	}, registry.ErrVersionNotFound, registry.ErrSubjectNotFound)
}

// readCaughtUp reads from this node's copy of the registry and, when the read misses with one
// of the missing errors, reads once more after catching up with the cluster state: what it
// looks for may have been written on the leader a moment ago.
func readCaughtUp[T any](ctx context.Context, r *clusterRegistry, read func(*registry.Registry) (T, error), missing ...error) (T, error) {
	var zero T
	reg, err := r.current(ctx, false)
	if err != nil {
		return zero, err
	}
	v, err := read(reg)
	for _, m := range missing {
		if errors.Is(err, m) {
			if reg, err = r.current(ctx, true); err != nil {
				return zero, err
			}
			return read(reg)
		}
	}
	return v, err
}

// Lookup finds the version of subject that has schema.
func (r *clusterRegistry) Lookup(subject, schema string, deleted bool) (registry.Schema, error) {
	reg, err := r.reader()
	if err != nil {
		return registry.Schema{}, err
	}
	return reg.Lookup(subject, schema, deleted)
}

// Subjects lists the subjects.
func (r *clusterRegistry) Subjects(deleted bool) []string {
	reg, err := r.reader()
	if err != nil {
		r.log.Warn("list schema registry subjects", "err", err)
		return nil
	}
	return reg.Subjects(deleted)
}

// Versions lists a subject's versions.
func (r *clusterRegistry) Versions(subject string, deleted bool) ([]int, error) {
	reg, err := r.reader()
	if err != nil {
		return nil, err
	}
	return reg.Versions(subject, deleted)
}

// Version returns one version of a subject.
func (r *clusterRegistry) Version(subject string, version int, deleted bool) (registry.Schema, error) {
	reg, err := r.reader()
	if err != nil {
		return registry.Schema{}, err
	}
	return reg.Version(subject, version, deleted)
}

// VersionsByID lists the subject versions that use schema id.
func (r *clusterRegistry) VersionsByID(id int, deleted bool) ([]registry.Schema, error) {
	reg, err := r.reader()
	if err != nil {
		return nil, err
	}
	return reg.VersionsByID(id, deleted)
}

// Compatibility returns the compatibility level that applies to subject.
func (r *clusterRegistry) Compatibility(subject string) (registry.Compatibility, error) {
	reg, err := r.reader()
	if err != nil {
		return "", err
	}
	return reg.Compatibility(subject)
}

// CheckCompatibility tests schema against a subject's versions.
func (r *clusterRegistry) CheckCompatibility(subject, schema string, version int) ([]string, error) {
	reg, err := r.reader()
	if err != nil {
		return nil, err
	}
	return reg.CheckCompatibility(subject, schema, version)
}
