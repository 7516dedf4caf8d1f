package mongosource

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/internal/kafkatopic"
	"github.com/mongorelay/mongorelay/tasks/config"
)

// createTopics creates a task's topic (none when ""), and its connector's dead letter and
// heartbeat topics if it has them, when missing, and returns the topic's max.message.bytes
// (tasks.Spec.TopicMaxBytes).
func createTopics(ctx context.Context, kafka *kgo.Client, c *config.Config, topic string) (int, error) {
	var maxBytes int
	var err error
	if topic != "" {
		maxBytes, err = createTopic(ctx, kafka, c, topic)
	}
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

// createRoutedTopic creates a scope task's collection topic when missing, as createTopic does,
// and waits until the brokers' metadata has a leader for each of its partitions: the task
// produces to it at once, and a producer whose first metadata read misses a topic created
// a moment before fails the record (UNKNOWN_TOPIC_OR_PARTITION) after a few retries.
func createRoutedTopic(ctx context.Context, kafka *kgo.Client, c *config.Config, topic string) (int, error) {
	maxBytes, err := createTopic(ctx, kafka, c, topic)
	if err != nil {
		return 0, err
	}
	adm := kadm.NewClient(kafka)
	for {
		if ready, err := topicReady(ctx, adm, topic); err != nil || ready {
			return maxBytes, err
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("wait for topic %s in the brokers' metadata: %w", topic, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// topicReady reports whether the metadata has topic with a leader for every partition.
func topicReady(ctx context.Context, adm *kadm.Client, topic string) (bool, error) {
	topics, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return false, fmt.Errorf("read the metadata of topic %s: %w", topic, err)
	}
	d, ok := topics[topic]
	if !ok || d.Err != nil || len(d.Partitions) == 0 {
		return false, nil
	}
	for _, p := range d.Partitions {
		if p.Leader < 0 || p.Err != nil {
			return false, nil
		}
	}
	return true, nil
}
