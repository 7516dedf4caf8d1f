package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/tasks"
	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/offsets"
)

// offsetsRefreshInterval is how often a node with tasks reads what other nodes committed to
// the offsets topic: tasks waiting for another shard's snapshot ranges poll the store.
const offsetsRefreshInterval = 500 * time.Millisecond

// transactionalID is a task's Kafka transactional.id (DESIGN.md 6): stable per task, never
// per node, so that whichever node runs the task next fences the one before.
func transactionalID(clusterID, connector, task string) string {
	return clusterID + "-" + connector + "-" + task
}

// writerID names who wrote a record (the mongorelay.writer header): the node and the epoch it
// owns the task at, so that a consumer can check that a task's writers only ever move on.
func writerID(node string, epoch uint64) string { return fmt.Sprintf("%s/e%d", node, epoch) }

// runTask runs one task assigned to this node until ctx ends or it fails (runTaskFunc). It
// catches up with the offsets other nodes committed first, so that a task moving here
// resumes where its last owner got to.
func (c *Cluster) runTask(ctx context.Context, a coordinator.Assignment) error {
	cfg, err := config.Parse(a.Connector, a.Config)
	if err != nil {
		return fmt.Errorf("connector %s: %w", a.Connector, err)
	}
	mc, release, err := c.mongo.acquire(ctx, cfg)
	if err != nil {
		return err
	}
	defer release()
	reg, err := registryFor(cfg, c.registry)
	if err != nil {
		return err
	}
	if err := c.offsets.Refresh(ctx); err != nil {
		return fmt.Errorf("read the offsets other nodes committed: %w", err)
	}
	return runUnits(ctx, a.Spec.Units(), func(ctx context.Context, u coordinator.TaskSpec) error {
		spec := tasks.Spec{Connector: cfg, DB: u.DB, Coll: u.Coll, Shard: u.Shard, Shards: u.Shards}
		maxBytes, err := createTopics(ctx, c.kafka, cfg, cfg.Topic(spec.DB, spec.Coll))
		if err != nil {
			return err
		}
		spec.TopicMaxBytes = maxBytes
		t := tasks.New(spec, tasks.Deps{
			Mongo:           mc,
			Offsets:         &fencedOffsets{Store: c.offsets},
			Registry:        reg,
			Logger:          c.log.With("epoch", a.Epoch),
			ShutdownTimeout: c.cfg.ShutdownTimeout,
			Evolutions:      c.evolutions,
			// Per collection shard, not per task: when tasks.max regroups the shards, the
			// next run of each shard still fences the one before, wherever it ran.
			Transactional: &tasks.Transactional{
				ID:          transactionalID(c.cfg.ClusterID, a.Connector, u.Name()),
				ClientOpts:  c.kafkaOpts(),
				Compression: c.cfg.Compression,
			},
			WriterID: writerID(c.id, a.Epoch),
		})
		return t.Run(ctx)
	})
}

// runUnits runs the collection shards of one task side by side until ctx ends or one fails;
// a failure stops the others (cleanly: they commit what they delivered) and is what the task
// returns, so the task as a whole is FAILED and restarted.
func runUnits(ctx context.Context, units []coordinator.TaskSpec, run func(context.Context, coordinator.TaskSpec) error) error {
	if len(units) == 1 {
		return run(ctx, units[0])
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	errs := make([]error, len(units))
	var wg sync.WaitGroup
	for i, u := range units {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = run(ctx, u); errs[i] != nil {
				errs[i] = fmt.Errorf("collection shard %s: %w", u.Name(), errs[i])
				stop()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// fencedOffsets is the offsets store as a task sees it: its first read catches up with the
// topic again. The task fences the task's previous owner (initialising its transactional id)
// before it reads its offsets, so this read sees every offset that owner committed.
type fencedOffsets struct {
	*offsets.Store
	once sync.Once
	err  error
}

// Get refreshes the store on its first call, then reads it.
func (f *fencedOffsets) Get(k offsets.Key) (*offsets.Value, error) {
	f.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := f.Store.Refresh(ctx); err != nil {
			f.err = fmt.Errorf("read the offsets other nodes committed: %w", err)
		}
	})
	if f.err != nil {
		return nil, f.err
	}
	return f.Store.Get(k)
}

// kafkaOpts are the options every Kafka client of the node starts from.
func (c *Cluster) kafkaOpts() []kgo.Opt {
	return []kgo.Opt{kgo.SeedBrokers(c.cfg.KafkaBrokers...)}
}

// refreshOffsets keeps the offsets store up to date with other nodes' commits while this node
// runs tasks, until ctx ends.
func (c *Cluster) refreshOffsets(ctx context.Context) {
	tick := time.NewTicker(offsetsRefreshInterval)
	defer tick.Stop()
	var warned time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if c.runner.Running() == 0 {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.offsets.Refresh(rctx)
		cancel()
		if err != nil && ctx.Err() == nil && time.Since(warned) > time.Minute {
			warned = time.Now()
			c.log.Warn("reading other nodes' offsets failed; retrying", "err", err)
		}
	}
}
