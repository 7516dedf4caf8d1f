package mongosource

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/internal/kafkatopic"
	"github.com/mongorelay/mongorelay/tasks/config"
)

// createTopics creates a task's topic, and its connector's dead letter and heartbeat topics if
// it has them, when missing, and returns the topic's max.message.bytes
// (tasks.Spec.TopicMaxBytes).
func createTopics(ctx context.Context, kafka *kgo.Client, c *config.Config, topic string) (int, error) {
	maxBytes, err := createTopic(ctx, kafka, c, topic)
	for _, other := range []string{c.DeadLetterTopic, c.HeartbeatTopic} {
		if err == nil && other != "" {
			_, err = createTopic(ctx, kafka, c, other)
		}
	}
	return maxBytes, err
}

// createTopic creates a topic with the connector's partitions and replication factor when it
// is missing (brokers may not auto-create) and returns its max.message.bytes (0 when the
// broker does not say).
func createTopic(ctx context.Context, kafka *kgo.Client, c *config.Config, topic string) (int, error) {
	adm := kadm.NewClient(kafka)
	resp, err := adm.CreateTopic(ctx, c.TopicPartitions, c.TopicReplicationFactor, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return 0, fmt.Errorf("create topic %s: %w", topic, err)
	}
	// The topic may be a moment old, created by this call or by another process (a task of
	// another node, the operator's script): its leaders serve it before the task's producer
	// writes to it. A topic served long since costs one round trip per leader.
	if err := kafkatopic.AwaitLeaders(ctx, kafka, topic); err != nil {
		return 0, err
	}
	configs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	rc, err := configs.On(topic, nil)
	if err != nil {
		return 0, nil // just created and not yet described: Kafka's default applies
	}
	for _, cfg := range rc.Configs {
		if cfg.Key == "max.message.bytes" {
			n, _ := strconv.Atoi(cfg.MaybeValue())
			return n, nil
		}
	}
	return 0, nil
}
