// Package mongosource is the MongoDB source connector kind (connector.class "mongodb", with
// Debezium's and the MongoDB Kafka Connector's class names as aliases): it validates a
// connector's config (tasks/config), lists its collection shards as tasks, and runs each task
// (package tasks) with a MongoDB client shared by the process's tasks.
package mongosource

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/tasks"
	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/connector"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// Env is what the kind's tasks share with the rest of the process.
type Env struct {
	// Kafka is the process's client, for topic creation and checks.
	Kafka *kgo.Client
	// KafkaOpts are the options every Kafka client of the process starts from (seed brokers,
	// TLS, SASL); each task's transactional producer adds its own.
	KafkaOpts []kgo.Opt
	// Compression is the codec of every task's record batches.
	Compression kgo.CompressionCodec
	// Offsets is the process's offsets store.
	Offsets *offsets.Store
	// Registry is the built-in schema registry, used unless a connector names another
	// (schema.registry.url).
	Registry tasks.SchemaRegistry
	// ClusterID prefixes every task's transactional.id (taskid.TransactionalID).
	ClusterID string
	// ShutdownTimeout bounds a task's flush and last commit when it stops.
	ShutdownTimeout time.Duration
	// TransactionTimeout is every task producer's transaction.timeout.ms; 0 keeps franz-go's.
	TransactionTimeout time.Duration
	Logger             *slog.Logger
}

// Kind is the MongoDB source kind. Create it with New and Close it once no task runs.
type Kind struct {
	env        Env
	mongo      *mongoPool
	evolutions *tasks.Evolutions // shared by the process's tasks
	listings   *listings         // the last listing of each connector's collections (Expand)
}

var _ connector.Kind = (*Kind)(nil)

// New returns the kind, whose tasks run with env. A kind that only validates needs no env,
// and no Close.
func New(env Env) *Kind {
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	return &Kind{env: env, mongo: newMongoPool(env.Logger), evolutions: tasks.NewEvolutions(), listings: newListings()}
}

// Close disconnects every MongoDB client.
func (k *Kind) Close() { k.mongo.close() }

// Plugin describes the kind.
func (k *Kind) Plugin() connector.Plugin {
	return connector.Plugin{
		Class:   config.ClassMongoRelay,
		Aliases: []string{config.ClassDebezium, config.ClassMongoKafka},
		Type:    connector.Source,
	}
}

// ConfigDef lists the kind's config keys (config.ConfigDef).
func (k *Kind) ConfigDef() []connector.ConfigKey { return config.ConfigDef() }

// Validate parses the config and returns its entries as given: foreign keys stay, and every
// Parse translates them again. Kafka Connect has no field for warnings in its responses, so
// the foreign keys that do nothing here are logged.
func (k *Kind) Validate(name string, raw map[string]string) (map[string]string, error) {
	c, err := config.Parse(name, raw)
	if err != nil {
		return nil, err
	}
	_, changes := c.Translation()
	for _, ch := range changes {
		if ch.Warning {
			k.env.Logger.Warn("connector config key does nothing in mongorelay", "connector", name, "key", ch.From, "why", ch.String())
		}
	}
	return c.Raw(), nil
}

var _ connector.TopicNamer = (*Kind)(nil)

// Topics returns the topics a task writes: the topic of each collection shard it runs
// (config.Config.Topic, where topic.namespace.map routes it), the topic the run creates and
// writes, and heartbeat.topic when set. A database's or the deployment's task
// (capture.scope) writes the topics of the collections its stream meets, known only while it
// runs: connector.ErrNoTopics.
func (k *Kind) Topics(name string, raw map[string]string, spec taskid.Spec) ([]string, error) {
	cfg, err := config.Parse(name, raw)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, u := range spec.Units() {
		if u.Coll == taskid.AllCollections {
			return nil, connector.ErrNoTopics
		}
		out = append(out, cfg.Topic(u.DB, u.Coll))
	}
	if cfg.HeartbeatTopic != "" {
		out = append(out, cfg.HeartbeatTopic)
	}
	return out, nil
}

// Redact returns a stored config as it may be shown (config.RedactRaw).
func (k *Kind) Redact(_ string, raw map[string]string) map[string]string {
	return config.RedactRaw(raw)
}

// Check connects to the connector's MongoDB deployment (and keeps the client for its tasks).
func (k *Kind) Check(ctx context.Context, name string, raw map[string]string) error {
	cfg, err := config.Parse(name, raw)
	if err != nil {
		return err
	}
	_, release, err := k.mongo.acquire(ctx, cfg)
	if err != nil {
		return err
	}
	release()
	return nil
}

// Expand lists a connector's tasks: one per shard of every collection its config selects (of
// every database that has one, with capture.scope=database; of the deployment, with
// deployment), in a stable order. (The runtime groups them when tasks.max is lower.)
func (k *Kind) Expand(ctx context.Context, name string, raw map[string]string) ([]taskid.Spec, error) {
	cfg, err := config.Parse(name, raw)
	if err != nil {
		return nil, fmt.Errorf("connector %s: %w", name, err)
	}
	conn, release, err := k.mongo.acquire(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer release()
	// The time is read before listing: a collection the listing misses was created after it.
	at, atErr := operationTime(ctx, conn.cl)
	nss, err := collectionsOf(ctx, conn.cl, cfg)
	if err != nil {
		return nil, fmt.Errorf("connector %s: %w", name, err)
	}
	// A scope task's unit is its database (or the deployment): a new one is streamed from the
	// last listing's time as a new collection is; its new collections arrive in its stream.
	units := scopeUnits(cfg.CaptureScope, nss)
	if k.env.Offsets != nil {
		fp := configFingerprint(raw)
		if prev, ok := k.listings.previous(name, fp); ok {
			if err := streamNewCollections(ctx, k.env.Offsets, name, cfg.Shards, prev, units, k.env.Logger); err != nil {
				return nil, fmt.Errorf("connector %s: %w", name, err)
			}
		}
		if atErr == nil {
			colls := make(map[namespace]bool, len(units))
			for _, ns := range units {
				colls[ns] = true
			}
			k.listings.record(name, listing{config: fp, at: at, colls: colls})
		} else {
			k.env.Logger.Warn("new collections are compared with the listing before this one", "connector", name, "err", atErr)
		}
	}
	specs := make([]taskid.Spec, 0, len(units)*cfg.Shards)
	for _, ns := range units {
		for i := range cfg.Shards {
			specs = append(specs, taskid.Spec{DB: ns.DB, Coll: ns.Coll, Shard: i, Shards: cfg.Shards})
		}
	}
	return specs, nil
}
