package mongosource

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mongorelay/mongorelay/registry/client"
	"github.com/mongorelay/mongorelay/tasks"
	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/connector"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// Run runs one task until ctx ends or it fails. Its first offsets read catches up with what
// other processes committed (fencedOffsets), so that a task moving here resumes where its last
// owner got to. What a restart cannot fix is Permanent (DESIGN.md 13; markPermanent). A wait
// on Kafka, MongoDB or the registry that lasts is reported through t.Degraded.
func (k *Kind) Run(ctx context.Context, t connector.Task) error {
	cfg, err := config.Parse(t.Connector, t.Config)
	if err != nil {
		return connector.Permanent(fmt.Errorf("connector %s: %w", t.Connector, err))
	}
	connected := reportSlow(t.ReportDegraded, tasks.StallAfter, "MongoDB to answer (connecting to the deployment)")
	conn, release, err := k.mongo.acquire(ctx, cfg)
	connected()
	if err != nil {
		return markPermanent(err)
	}
	defer release()
	reg, err := k.registryFor(cfg)
	if err != nil {
		return connector.Permanent(err)
	}
	units := t.Spec.Units()
	degraded := newUnitReasons(t.ReportDegraded, len(units))
	err = runUnits(ctx, units, func(ctx context.Context, u taskid.Spec) error {
		spec := tasks.Spec{Connector: cfg, DB: u.DB, Coll: u.Coll, Shard: u.Shard, Shards: u.Shards}
		report := degraded.unit(u.Name())
		// A scope task's topics are its collections', made as their first records come.
		scoped := u.Coll == taskid.AllCollections
		topic := cfg.Topic(spec.DB, spec.Coll)
		if scoped {
			topic = ""
		}
		created := reportSlow(report, tasks.StallAfter, "Kafka to create the task's topics")
		maxBytes, err := createTopics(ctx, k.env.Kafka, cfg, topic)
		created()
		if err != nil {
			return err
		}
		spec.TopicMaxBytes = maxBytes
		var createRouted func(context.Context, string) (int, error)
		if scoped {
			createRouted = func(ctx context.Context, topic string) (int, error) {
				created := reportSlow(report, tasks.StallAfter, "Kafka to create the topic "+topic)
				defer created()
				return createRoutedTopic(ctx, k.env.Kafka, cfg, topic)
			}
		}
		id := taskid.TransactionalID(k.env.ClusterID, t.Connector, u.Name())
		task := tasks.New(spec, tasks.Deps{
			Mongo:            conn.cl,
			SplitLargeEvents: conn.splitLargeEvents,
			Offsets:          k.fencedOffsets(cfg),
			Registry:         reg,
			Logger:           k.env.Logger,
			ShutdownTimeout:  k.env.ShutdownTimeout,
			Evolutions:       k.evolutions,
			// Per collection shard, not per task: when tasks.max regroups the shards, the
			// next run of each shard still fences the one before, wherever it ran.
			Transactional: &tasks.Transactional{
				ID:          id,
				ClientOpts:  k.env.KafkaOpts,
				Compression: k.env.Compression,
				Timeout:     k.env.TransactionTimeout,
				RetiredID: func(shard string) string {
					return taskid.TransactionalID(k.env.ClusterID, t.Connector, shard)
				},
				Instrument: t.KafkaClient,
			},
			WriterID:         t.WriterID,
			Degraded:         report,
			MongoErrors:      conn.errs,
			Metrics:          t.Metrics.Unit(u.Name()),
			SnapshotRequests: t.SnapshotRequests,
			SnapshotSignal:   t.SnapshotSignal,
			CreateTopic:      createRouted,
		})
		return task.Run(ctx)
	})
	return markPermanent(err)
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
// returns, so the task as a whole is FAILED and restarted. A panic of one is its failure.
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
			defer func() {
				if errs[i] != nil {
					errs[i] = fmt.Errorf("collection shard %s: %w", u.Name(), errs[i])
					stop()
				}
			}()
			defer connector.Recover(&errs[i])
			errs[i] = run(ctx, u)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// unitReasons joins the degraded reasons of a task's collection shards into the task's one,
// each named by its shard when the task runs several.
type unitReasons struct {
	report func(string)
	named  bool

	mu      sync.Mutex
	reasons map[string]string // by collection shard, those degraded
}

func newUnitReasons(report func(string), units int) *unitReasons {
	return &unitReasons{report: report, named: units > 1, reasons: map[string]string{}}
}

// unit returns how the collection shard name reports its reason ("" clears it).
func (u *unitReasons) unit(name string) func(string) {
	return func(reason string) {
		u.mu.Lock()
		defer u.mu.Unlock()
		if reason == "" {
			delete(u.reasons, name)
		} else {
			u.reasons[name] = reason
		}
		var parts []string
		for _, n := range slices.Sorted(maps.Keys(u.reasons)) {
			if u.named {
				parts = append(parts, n+": "+u.reasons[n])
			} else {
				parts = append(parts, u.reasons[n])
			}
		}
		u.report(strings.Join(parts, "; "))
	}
}

// reportSlow reports, once what has taken after (tasks.StallAfter), that the task is waiting
// for it, and clears the report when the returned done is called.
func reportSlow(report func(string), after time.Duration, what string) (done func()) {
	var mu sync.Mutex
	var reported, over bool
	timer := time.AfterFunc(after, func() {
		mu.Lock()
		defer mu.Unlock()
		if !over {
			reported = true
			report(fmt.Sprintf("waiting more than %s for %s", after, what))
		}
	})
	return func() {
		timer.Stop()
		mu.Lock()
		defer mu.Unlock()
		over = true
		if reported {
			report("")
		}
	}
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
