package mongosource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mongorelay/mongorelay/internal/kafkaconn"
	"github.com/mongorelay/mongorelay/registry/client"
	"github.com/mongorelay/mongorelay/tasks"
	"github.com/mongorelay/mongorelay/tasks/changestream"
	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/connector"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// Run runs one task until ctx ends or it fails. Its first offsets read catches up with what
// other processes committed (fencedOffsets), so that a task moving here resumes where its last
// owner got to. What a restart cannot fix is Permanent (DESIGN.md 13; markPermanent).
func (k *Kind) Run(ctx context.Context, t connector.Task) error {
	cfg, err := config.Parse(t.Connector, t.Config)
	if err != nil {
		return connector.Permanent(fmt.Errorf("connector %s: %w", t.Connector, err))
	}
	mc, release, err := k.mongo.acquire(ctx, cfg)
	if err != nil {
		return err
	}
	defer release()
	reg, err := k.registryFor(cfg)
	if err != nil {
		return connector.Permanent(err)
	}
	err = runUnits(ctx, t.Spec.Units(), func(ctx context.Context, u taskid.Spec) error {
		spec := tasks.Spec{Connector: cfg, DB: u.DB, Coll: u.Coll, Shard: u.Shard, Shards: u.Shards}
		maxBytes, err := createTopics(ctx, k.env.Kafka, cfg, cfg.Topic(spec.DB, spec.Coll))
		if err != nil {
			return err
		}
		spec.TopicMaxBytes = maxBytes
		task := tasks.New(spec, tasks.Deps{
			Mongo:           mc,
			Offsets:         k.fencedOffsets(cfg),
			Registry:        reg,
			Logger:          k.env.Logger,
			ShutdownTimeout: k.env.ShutdownTimeout,
			Evolutions:      k.evolutions,
			// Per collection shard, not per task: when tasks.max regroups the shards, the
			// next run of each shard still fences the one before, wherever it ran.
			Transactional: &tasks.Transactional{
				ID:          taskid.TransactionalID(k.env.ClusterID, t.Connector, u.Name()),
				ClientOpts:  k.env.KafkaOpts,
				Compression: k.env.Compression,
				Timeout:     k.env.TransactionTimeout,
				RetiredID: func(shard string) string {
					return taskid.TransactionalID(k.env.ClusterID, t.Connector, shard)
				},
			},
			WriterID: t.WriterID,
		})
		return task.Run(ctx)
	})
	return markPermanent(err)
}

// markPermanent marks the task failures a restart cannot fix, among them Kafka refusing the
// process's credentials or certificate (named by the setting to fix).
func markPermanent(err error) error {
	if _, lost := errors.AsType[*changestream.HistoryLostError](err); lost || errors.Is(err, tasks.ErrRecordTooLarge) {
		return connector.Permanent(err)
	}
	if kafkaconn.IsRefused(err) {
		return connector.Permanent(kafkaconn.Explain(err))
	}
	return err
}

// registryFor returns the schema registry a connector's tasks use: the built-in one, unless
// the connector names an external one (schema.registry.url).
func (k *Kind) registryFor(c *config.Config) (tasks.SchemaRegistry, error) {
	if len(c.SchemaRegistryURLs) == 0 {
		return k.env.Registry, nil
	}
	urls := make([]string, len(c.SchemaRegistryURLs))
	for i, u := range c.SchemaRegistryURLs {
		urls[i] = u.Reveal()
	}
	cl, err := client.New(strings.Join(urls, ","))
	if err != nil {
		return nil, fmt.Errorf("connector %s: config %q: %w", c.Name, "schema.registry.url", err)
	}
	return client.NewCached(cl), nil
}

// runUnits runs the collection shards of one task side by side until ctx ends or one fails;
// a failure stops the others (cleanly: they commit what they delivered) and is what the task
// returns, so the task as a whole is FAILED and restarted.
func runUnits(ctx context.Context, units []taskid.Spec, run func(context.Context, taskid.Spec) error) error {
	if len(units) == 1 {
		return run(ctx, units[0])
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	errs := make([]error, len(units))
	var wg sync.WaitGroup
	for i, u := range units {
		wg.Go(func() {
			if errs[i] = run(ctx, u); errs[i] != nil {
				errs[i] = fmt.Errorf("collection shard %s: %w", u.Name(), errs[i])
				stop()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// fencedOffsets is the offsets store as a task sees it: its first read, whichever it is,
// catches up with the topic again. The task fences the task's previous owner (initialising
// its transactional id) before it reads its offsets, so this read sees every offset that
// owner committed. With
// exactly.once it reads to the topic's end, waiting for the transactions open then
// (offsets.Store.CatchUp), since the owner's last offset may lie past another task's open
// transaction; at-least-once it reads to the last stable offset.
type fencedOffsets struct {
	*offsets.Store
	toEnd   bool
	timeout time.Duration
	once    sync.Once
	err     error
}

// fencedOffsets returns the store as a task of connector cfg sees it. Reading to the end may
// wait for a transaction left open by a crashed task until the brokers abort it, so its
// bound is transaction.timeout.ms longer.
func (k *Kind) fencedOffsets(cfg *config.Config) *fencedOffsets {
	f := &fencedOffsets{Store: k.env.Offsets, toEnd: cfg.ExactlyOnce, timeout: 30 * time.Second}
	if f.toEnd {
		txnTimeout := k.env.TransactionTimeout
		if txnTimeout <= 0 {
			txnTimeout = 40 * time.Second // franz-go's default
		}
		f.timeout += txnTimeout
	}
	return f
}

// refresh reads the topic again on the first call.
func (f *fencedOffsets) refresh() error {
	f.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
		defer cancel()
		read := f.Store.Refresh
		if f.toEnd {
			read = f.Store.CatchUp
		}
		if err := read(ctx); err != nil {
			f.err = fmt.Errorf("read the offsets other nodes committed: %w", err)
		}
	})
	return f.err
}

// Get reads one offset, after the first refresh.
func (f *fencedOffsets) Get(k offsets.Key) (*offsets.Value, error) {
	if err := f.refresh(); err != nil {
		return nil, err
	}
	return f.Store.Get(k)
}

// SnapshotRanges reads a collection's snapshot ranges, after the first refresh. After a failed
// refresh it reads nothing: the task's first read is a Get (tasks' resume planner), which
// has failed the task with the refresh's error.
func (f *fencedOffsets) SnapshotRanges(connector, db, coll string) []offsets.Entry {
	if f.refresh() != nil {
		return nil
	}
	return f.Store.SnapshotRanges(connector, db, coll)
}

// ShardOffsets reads a collection's shard offsets, after the first refresh (as SnapshotRanges).
func (f *fencedOffsets) ShardOffsets(connector, db, coll string) []offsets.Entry {
	if f.refresh() != nil {
		return nil
	}
	return f.Store.ShardOffsets(connector, db, coll)
}
