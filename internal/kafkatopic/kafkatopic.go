// Package kafkatopic holds what the components that keep their state in a Kafka topic (the
// offsets store, the schemas store) need when they make sure that topic exists and belongs to
// their cluster.
package kafkatopic

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// NewTopicWait bounds how long a topic just created may stay unknown to the broker asked
// about it: KRaft answers CreateTopics before every broker has applied the new topic, so a
// node that lost the race to create it (TopicAlreadyExists) may not see it yet either.
const NewTopicWait = 10 * time.Second

// DescribeConfigs reads a topic's configs, retrying for up to NewTopicWait while the broker
// does not know the topic yet.
func DescribeConfigs(ctx context.Context, adm *kadm.Client, topic string) (kadm.ResourceConfig, error) {
	deadline := time.Now().Add(NewTopicWait)
	for {
		rcs, err := adm.DescribeTopicConfigs(ctx, topic)
		var rc kadm.ResourceConfig
		if err == nil {
			rc, err = rcs.On(topic, nil)
		}
		if err == nil {
			err = rc.Err
		}
		if !errors.Is(err, kerr.UnknownTopicOrPartition) || time.Now().After(deadline) {
			return rc, err
		}
		select {
		case <-ctx.Done():
			return rc, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
