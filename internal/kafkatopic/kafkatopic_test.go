package kafkatopic

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/internal/testenv"
)

// TestDescribeConfigsWaitsForATopicBeingCreated describes a topic that another client
// creates a moment later, as a node that lost the race to create it does.
func TestDescribeConfigsWaitsForATopicBeingCreated(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	created := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "late")
		created <- err
	}()
	rc, err := DescribeConfigs(ctx, adm, "late")
	if err != nil {
		t.Fatalf("DescribeConfigs of a topic created 300 ms later: %v", err)
	}
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range rc.Configs {
		found = found || (c.Key == "cleanup.policy" && c.MaybeValue() == "compact")
	}
	if !found {
		t.Errorf("configs %v lack cleanup.policy=compact", rc.Configs)
	}

	// A topic nobody creates is still unknown once the wait is over; a cancelled context
	// ends the wait at once.
	short, stop := context.WithTimeout(ctx, 500*time.Millisecond)
	defer stop()
	if _, err := DescribeConfigs(short, adm, "never"); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("DescribeConfigs of a topic never created = %v, want the context's end", err)
	}
}

// A topic just created is served by its leaders once AwaitLeaders returns: a new client writes
// to every partition and reads each end offset without one retry. Its retry backoff is longer
// than the test's deadline, so a single UNKNOWN_TOPIC_OR_PARTITION or NOT_LEADER_OR_FOLLOWER
// answer fails the test. The creator looked the topic up first (as offsets.Open does), and its
// client keeps that answer longer than the test: AwaitLeaders must not read it.
func TestAwaitLeadersLeavesNoRetryToTheFirstClient(t *testing.T) {
	brokers := testenv.Kafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.MetadataMinAge(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	topic := fmt.Sprintf("await-leaders-%d", time.Now().UnixNano())
	if md, err := adm.Metadata(ctx, topic); err != nil || md.Topics[topic].Err == nil {
		t.Fatalf("look-up before the topic exists: %v, %+v", err, md.Topics[topic])
	}
	const partitions = 25 // as the offsets topic's
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), topic) })
	start := time.Now()
	if err := AwaitLeaders(ctx, admin, topic); err != nil {
		t.Fatal(err)
	}
	t.Logf("the leaders served %s after CreateTopics returned", time.Since(start))

	noRetry := 20 * time.Second
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RetryBackoffFn(func(int) time.Duration { return noRetry }), kgo.MetadataMinAge(noRetry))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	first, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	var rs []*kgo.Record
	for p := range int32(partitions) {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Value: []byte("v")})
	}
	if err := cl.ProduceSync(first, rs...).FirstErr(); err != nil {
		t.Fatalf("first write to each partition: %v", err)
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(first, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("first read of the end offsets: %v", err)
	}
}

// AwaitLeaders of a topic nobody creates ends with the context.
func TestAwaitLeadersOfAMissingTopicEndsWithTheContext(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := AwaitLeaders(ctx, cl, "never"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("AwaitLeaders of a topic never created = %v, want the context's end", err)
	}
}
