// Package kafkatopic holds what the components that keep their state in a Kafka topic (the
// offsets store, the schemas store) need when they make sure that topic exists, is served and
// belongs to their cluster; a task waits with it for the topic it writes.
package kafkatopic

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// NewTopicWait bounds how long a topic just created may stay unknown to the broker asked
// about it: KRaft answers CreateTopics before every broker has applied the new topic, so a
// node that lost the race to create it (TopicAlreadyExists) may not see it yet either.
const NewTopicWait = 10 * time.Second

// AwaitLeaders waits until every partition of topic has a leader that serves it, for up to
// NewTopicWait. The creator of a topic calls it before anything writes to or reads from the
// topic: KRaft answers CreateTopics before the brokers have applied the topic, and a client
// that asks before then is told UNKNOWN_TOPIC_OR_PARTITION or NOT_LEADER_OR_FOLLOWER and
// waits out its retry backoff (franz-go's starts at 250 ms, and a new client pays it again),
// where this wait, asking every leaderPoll, ends as soon as the brokers are ready. A
// leader is asked directly (ListOffsets), without the client's retries: the metadata names
// it a moment before it serves the partition.
func AwaitLeaders(ctx context.Context, cl *kgo.Client, topic string) error {
	deadline := time.Now().Add(NewTopicWait)
	for {
		err := leadersServe(ctx, cl, topic)
		if err == nil {
			return nil
		}
		if !kerr.IsRetriable(err) || time.Now().After(deadline) {
			return fmt.Errorf("wait for the leaders of topic %s: %w", topic, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(leaderPoll):
		}
	}
}

// leaderPoll is how often AwaitLeaders asks again: the requests are cheap.
const leaderPoll = 5 * time.Millisecond

// leadersServe asks the leader of each partition of topic for its end offset once, and returns
// the first error: of the metadata, or of a partition. The metadata is asked anew: the client's
// cache (kadm's Metadata) may hold the answer from before the topic was created for up to
// kgo.MetadataMinAge.
func leadersServe(ctx context.Context, cl *kgo.Client, topic string) error {
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	mreq.Topics = append(mreq.Topics, mt)
	md, err := mreq.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if len(md.Topics) != 1 {
		return kerr.UnknownTopicOrPartition
	}
	td := md.Topics[0]
	if err := kerr.ErrorForCode(td.ErrorCode); err != nil {
		return err
	}
	if len(td.Partitions) == 0 {
		return kerr.LeaderNotAvailable
	}
	byLeader := map[int32][]int32{}
	for _, p := range td.Partitions {
		switch {
		case p.ErrorCode != 0:
			return kerr.ErrorForCode(p.ErrorCode)
		case p.Leader < 0:
			return kerr.LeaderNotAvailable
		}
		byLeader[p.Leader] = append(byLeader[p.Leader], p.Partition)
	}
	for leader, partitions := range byLeader {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		for _, p := range partitions {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = p, -1, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
		if err != nil {
			return err
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

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
