package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongorelay/mongorelay/registry"
	"github.com/mongorelay/mongorelay/registry/kafkastore"
	"github.com/mongorelay/mongorelay/tasks"
	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/offsets"
)

// standaloneClusterID stands for cluster.id in a standalone process's transactional ids.
const standaloneClusterID = "mongorelay-standalone"

// collectionScanInterval is how often a running connector looks for collections created since
// it started. A new collection's task starts like any other: with snapshot.mode=initial it
// copies what the collection already holds, so nothing written before it was found is missed.
const collectionScanInterval = 10 * time.Second

// LoadConnectorFiles reads and validates connector files ({"name":..., "config":{...}}), all of
// them before anything starts, so a bad file changes nothing.
func LoadConnectorFiles(paths []string) ([]*config.Config, error) {
	var conns []*config.Config
	var errs []error
	names := map[string]string{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("read connector file: %w", err))
			continue
		}
		c, err := config.ParseJSON(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("connector file %s: %w", p, err))
			continue
		}
		if other, dup := names[c.Name]; dup {
			errs = append(errs, fmt.Errorf("connector file %s: connector %q is already defined in %s: give it another name", p, c.Name, other))
			continue
		}
		names[c.Name] = p
		conns = append(conns, c)
	}
	if len(paths) == 0 {
		errs = append(errs, errors.New("name at least one connector file"))
	}
	return conns, errors.Join(errs...)
}

// Standalone runs connectors in one process without a cluster, like Kafka Connect's standalone
// mode: offsets and schemas still live in Kafka, so a restart resumes where it stopped.
type Standalone struct {
	cfg   Config
	conns []*config.Config
	log   *slog.Logger

	kafka    *kgo.Client
	offsets  *offsets.Store
	registry *registry.Registry

	mu      sync.Mutex
	running map[string]bool // tasks started, by connector and task name
	failed  []error         // why tasks FAILED, each naming its connector and task
	wg      sync.WaitGroup
}

// NewStandalone returns a process that will run conns.
func NewStandalone(cfg Config, conns []*config.Config, log *slog.Logger) *Standalone {
	return &Standalone{cfg: cfg, conns: conns, log: log, running: map[string]bool{}}
}

// Run checks that every connector reaches its MongoDB deployment and that Kafka answers before
// it writes anything, then starts every connector's tasks and blocks until ctx is done. Then
// it stops them cleanly and returns nil, or, when a task had FAILED meanwhile (the others go
// on running, as in Kafka Connect), an error naming each failed task, so a supervisor sees
// the failure in the exit status and not only in the log.
func (s *Standalone) Run(ctx context.Context) error {
	mongos := make([]*mongo.Client, len(s.conns))
	defer func() {
		for _, mc := range mongos {
			if mc != nil {
				_ = mc.Disconnect(context.WithoutCancel(ctx))
			}
		}
	}()
	// Everything that can be checked without writing is checked first.
	for i, c := range s.conns {
		mc, err := connectMongo(ctx, c)
		if err != nil {
			return err
		}
		mongos[i] = mc
	}
	var err error
	if s.kafka, err = kgo.NewClient(kgo.SeedBrokers(s.cfg.KafkaBrokers...)); err != nil {
		return fmt.Errorf("kafka client for %v: %w", s.cfg.KafkaBrokers, err)
	}
	defer s.kafka.Close()
	pingCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = s.kafka.Ping(pingCtx)
	cancel()
	if err != nil {
		return fmt.Errorf("reach Kafka at %v (kafka.bootstrap.servers): %w", s.cfg.KafkaBrokers, err)
	}

	if s.offsets, err = offsets.Open(ctx, s.cfg.KafkaBrokers, s.cfg.OffsetsTopic,
		offsets.ReplicationFactor(int16(s.cfg.ReplicationFactor)), offsets.Logger(s.log)); err != nil {
		return fmt.Errorf("open offsets topic %s: %w", s.cfg.OffsetsTopic, err)
	}
	defer s.offsets.Close()
	store, err := kafkastore.Open(ctx, kafkastore.Topic(s.cfg.SchemasTopic),
		kafkastore.ReplicationFactor(int16(s.cfg.ReplicationFactor)),
		kafkastore.ClientOpts(kgo.SeedBrokers(s.cfg.KafkaBrokers...)), kafkastore.Logger(s.log))
	if err != nil {
		return fmt.Errorf("open schemas topic %s: %w", s.cfg.SchemasTopic, err)
	}
	defer store.Close()
	if s.registry, err = registry.New(ctx, store, registry.Logger(s.log)); err != nil {
		return fmt.Errorf("load the schema registry from %s: %w", s.cfg.SchemasTopic, err)
	}
	stopRegistry, err := serveRegistry(s.cfg.RegistryListen, s.registry, s.log)
	if err != nil {
		return err
	}
	defer stopRegistry()

	runCtx, stopTasks := context.WithCancel(ctx)
	defer stopTasks()
	for i, c := range s.conns {
		reg, err := registryFor(c, s.registry)
		if err != nil {
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.runConnector(runCtx, c, mongos[i], reg)
		}()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-ctx.Done():
		s.log.Info("stopping: flushing records and committing offsets")
		stopTasks()
		<-done
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.failed) > 0 {
			return fmt.Errorf("stopped with %d FAILED task(s); fix the cause and restart to resume them: %w",
				len(s.failed), errors.Join(s.failed...))
		}
		return nil
	case <-done:
		return errors.New("every connector has stopped")
	}
}

// runConnector starts a task per matching collection and keeps looking for new ones.
func (s *Standalone) runConnector(ctx context.Context, c *config.Config, mc *mongo.Client, reg tasks.SchemaRegistry) {
	log := s.log.With("connector", c.Name)
	ticker := time.NewTicker(collectionScanInterval)
	defer ticker.Stop()
	var tasksWG sync.WaitGroup
	defer tasksWG.Wait()
	evolutions := tasks.NewEvolutions()
	for {
		specs, err := s.scan(ctx, c, mc)
		if err != nil && ctx.Err() == nil {
			log.Warn("listing collections failed; retrying at the next scan", "err", err)
		}
		for _, spec := range specs {
			maxBytes, err := createTopics(ctx, s.kafka, c, c.Topic(spec.DB, spec.Coll))
			if err != nil {
				log.Error("task not started", "task", spec.Name(), "err", err)
				continue
			}
			spec.TopicMaxBytes = maxBytes
			t := tasks.New(spec, tasks.Deps{
				Mongo: mc, Offsets: s.offsets, Registry: reg,
				Logger: s.log, ShutdownTimeout: s.cfg.ShutdownTimeout, Evolutions: evolutions,
				// One writer per task even here (DESIGN.md 6): a second process started on the
				// same connector by mistake fences the first instead of interleaving with it.
				Transactional: &tasks.Transactional{
					ID:          standaloneClusterID + "-" + c.Name + "-" + spec.Name(),
					ClientOpts:  []kgo.Opt{kgo.SeedBrokers(s.cfg.KafkaBrokers...)},
					Compression: s.cfg.Compression,
				},
			})
			tasksWG.Add(1)
			go func() {
				defer tasksWG.Done()
				if err := t.Run(ctx); err != nil {
					log.Error("task FAILED", "task", spec.Name(), "err", err)
					s.mu.Lock()
					s.failed = append(s.failed, fmt.Errorf("connector %s task %s: %w", c.Name, spec.Name(), err))
					s.mu.Unlock()
				}
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// scan lists the connector's collections and returns those without a running task.
func (s *Standalone) scan(ctx context.Context, c *config.Config, mc *mongo.Client) ([]tasks.Spec, error) {
	nss, err := collectionsOf(ctx, mc, c)
	var specs []tasks.Spec
	for _, ns := range nss {
		for i := 0; i < c.Shards; i++ {
			spec := tasks.Spec{Connector: c, DB: ns.DB, Coll: ns.Coll, Shard: i, Shards: c.Shards}
			key := c.Name + "/" + spec.Name()
			s.mu.Lock()
			started := s.running[key]
			s.running[key] = true
			s.mu.Unlock()
			if !started {
				specs = append(specs, spec)
			}
		}
	}
	return specs, err
}
