// Package mongosink is the Kafka → MongoDB sink connector kind (connector.class
// "mongodb-sink", with the MongoDB Kafka Connector's sink class as an alias; DESIGN.md 17):
// its tasks own topic partitions, read them directly (no consumer group) and write their
// records to MongoDB, change events as the operations they describe and anything else as
// documents, committing each partition's offset after the bulk write that covers it.
package mongosink

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/registry"
	"github.com/mongorelay/mongorelay/tasks/connector"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// Env is what the kind's tasks share with the rest of the process.
type Env struct {
	// Kafka is the process's client, for listing topics and creating the dead letter topic.
	Kafka *kgo.Client
	// KafkaOpts are the options every Kafka client of the process starts from (seed brokers,
	// TLS, SASL); each task's consumer and producers add their own.
	KafkaOpts []kgo.Opt
	// Offsets is the process's offsets store, where partitions' offsets are committed.
	Offsets *offsets.Store
	// Registry is the built-in schema registry, read unless a connector names another.
	Registry registry.SchemaSource
	// ClusterID prefixes every partition's transactional.id (taskid.TransactionalID).
	ClusterID string
	// TransactionTimeout is every partition producer's transaction.timeout.ms; 0 keeps
	// franz-go's.
	TransactionTimeout time.Duration
	Logger             *slog.Logger
}

// Kind is the sink kind.
type Kind struct {
	env Env
}

var _ connector.Kind = (*Kind)(nil)

// New returns the kind, whose tasks run with env. A kind that only validates needs no env.
func New(env Env) *Kind {
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	return &Kind{env: env}
}

// Plugin describes the kind.
func (k *Kind) Plugin() connector.Plugin {
	return connector.Plugin{Class: Class, Aliases: []string{ClassAlias}, Type: connector.Sink}
}

// ConfigDef lists the kind's config keys.
func (k *Kind) ConfigDef() []connector.ConfigKey { return configDef() }

// Validate parses the config and returns it as given. Kafka Connect has no field for warnings
// in its responses, so the MongoDB Kafka Connector's keys that do nothing here are logged.
func (k *Kind) Validate(name string, raw map[string]string) (map[string]string, error) {
	cfg, err := Parse(name, raw)
	if err != nil {
		return nil, err
	}
	for _, key := range cfg.Ignored {
		k.env.Logger.Warn("connector config key does nothing in mongorelay's sink", "connector", name, "key", key)
	}
	return maps.Clone(raw), nil
}

// Redact returns a stored config as it may be shown.
func (k *Kind) Redact(_ string, raw map[string]string) map[string]string { return redact(raw) }

// Check reaches the MongoDB deployment the connector writes to.
func (k *Kind) Check(ctx context.Context, name string, raw map[string]string) error {
	cfg, err := Parse(name, raw)
	if err != nil {
		return err
	}
	client, err := mongo.Connect(options.Client().ApplyURI(cfg.ConnectionString))
	if err != nil {
		return fmt.Errorf("connector %s: config %q: %w", name, "mongodb.connection.string", err)
	}
	defer func() { _ = client.Disconnect(context.WithoutCancel(ctx)) }()
	if err := client.Ping(ctx, nil); err != nil {
		return fmt.Errorf("connector %s: config %q: MongoDB does not answer: %w", name, "mongodb.connection.string", err)
	}
	return nil
}

// Expand lists a connector's tasks: one per partition of every topic it reads, by topic and
// partition. The leader calls it again every expand interval, so topics that topics.regex
// matches later and partitions added later become tasks. The runtime groups them when
// tasks.max is lower.
func (k *Kind) Expand(ctx context.Context, name string, raw map[string]string) ([]taskid.Spec, error) {
	cfg, err := Parse(name, raw)
	if err != nil {
		return nil, fmt.Errorf("connector %s: %w", name, err)
	}
	if k.env.Kafka == nil {
		return nil, fmt.Errorf("connector %s: no Kafka client to list topics with", name)
	}
	adm := kadm.NewClient(k.env.Kafka)
	var topics kadm.TopicDetails
	if cfg.TopicsRegex != nil {
		topics, err = adm.ListTopics(ctx)
	} else {
		topics, err = adm.ListTopics(ctx, cfg.Topics...)
	}
	if err != nil {
		return nil, fmt.Errorf("connector %s: list topics: %w", name, err)
	}
	var specs []taskid.Spec
	for _, topic := range topics.Sorted() {
		if topic.Err != nil || topic.IsInternal || !cfg.Reads(topic.Topic) || strings.HasPrefix(topic.Topic, "__") {
			continue
		}
		for _, p := range topic.Partitions.Sorted() {
			specs = append(specs, taskid.Spec{Topic: topic.Topic, Partition: p.Partition})
		}
	}
	slices.SortFunc(specs, func(a, b taskid.Spec) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
	return specs, nil
}

var _ connector.TopicNamer = (*Kind)(nil)

// Topics returns the topics a sink task reads: for a sink, GET /connectors/{name}/topics lists
// the topics it consumes, as Kafka Connect's does (its dead letter topic is not one).
func (k *Kind) Topics(_ string, _ map[string]string, spec taskid.Spec) ([]string, error) {
	var out []string
	for _, u := range spec.Units() {
		out = append(out, u.Topic)
	}
	return out, nil
}
