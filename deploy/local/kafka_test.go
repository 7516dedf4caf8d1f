package local_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/internal/testenv"
)

// These tests prove the test Kafka is a real broker with the settings the project relies on:
// topic configs are kept, order holds within a partition, and transactions work on one node.

func newKafkaClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(testenv.Kafka(t))}, opts...)...)
	if err != nil {
		t.Fatalf("new kafka client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createTopic creates a uniquely named topic and deletes it when the test ends.
func createTopic(t *testing.T, ctx context.Context, adm *kadm.Client, configs map[string]*string) string {
	t.Helper()
	topic := fmt.Sprintf("envtest-%s-%d", t.Name(), time.Now().UnixNano())
	resp, err := adm.CreateTopic(ctx, 1, 1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, topic)
	})
	return topic
}

func TestKafkaCompactedTopicConfigIsKept(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(newKafkaClient(t))
	compact := "compact"
	topic := createTopic(t, ctx, adm, map[string]*string{"cleanup.policy": &compact})

	// The broker answers CreateTopics before every part of it has applied the new topic's
	// metadata, so the config is read until it shows (or the deadline passes).
	var got string
	for got != "compact" && ctx.Err() == nil {
		configs, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			t.Fatalf("describe topic configs: %v", err)
		}
		rc, err := configs.On(topic, nil)
		if err != nil {
			t.Fatalf("configs of %s: %v", topic, err)
		}
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" {
				got = c.MaybeValue()
			}
		}
		if got != "compact" {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if got != "compact" {
		t.Fatalf("cleanup.policy = %q, want compact", got)
	}
}

func TestKafkaBrokerDoesNotAutoCreateTopics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic := fmt.Sprintf("envtest-absent-%d", time.Now().UnixNano())
	cl := newKafkaClient(t, kgo.DefaultProduceTopic(topic), kgo.RecordDeliveryTimeout(3*time.Second))
	err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr()
	if err == nil {
		t.Fatalf("producing to missing topic %s succeeded: auto.create.topics.enable must be false", topic)
	}
}

func TestKafkaProduceConsumeInOrder(t *testing.T) {
	const n = 1000
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(newKafkaClient(t))
	topic := createTopic(t, ctx, adm, nil)

	producer := newKafkaClient(t, kgo.DefaultProduceTopic(topic))
	records := make([]*kgo.Record, n)
	for i := range records {
		records[i] = &kgo.Record{Key: []byte("k"), Value: []byte(strconv.Itoa(i))}
	}
	if err := producer.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("produce %d records: %v", n, err)
	}

	got := consumeAll(t, ctx, topic, n, kgo.ReadUncommitted())
	for i, v := range got {
		if v != strconv.Itoa(i) {
			t.Fatalf("record %d = %q, want %d (order lost)", i, v, i)
		}
	}
}

func TestKafkaTransactionsOnSingleBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(newKafkaClient(t))
	topic := createTopic(t, ctx, adm, nil)

	producer := newKafkaClient(t,
		kgo.DefaultProduceTopic(topic),
		kgo.TransactionalID(fmt.Sprintf("envtest-%d", time.Now().UnixNano())),
	)
	writeBatch := func(prefix string, commit kgo.TransactionEndTry) {
		t.Helper()
		if err := producer.BeginTransaction(); err != nil {
			t.Fatalf("begin transaction: %v", err)
		}
		for i := 0; i < 10; i++ {
			producer.Produce(ctx, &kgo.Record{Value: []byte(prefix + strconv.Itoa(i))}, nil)
		}
		if err := producer.Flush(ctx); err != nil {
			t.Fatalf("flush: %v", err)
		}
		if err := producer.EndTransaction(ctx, commit); err != nil {
			t.Fatalf("end transaction (%v): %v", commit, err)
		}
	}
	writeBatch("aborted-", kgo.TryAbort)
	writeBatch("committed-", kgo.TryCommit)

	// Both batches are in the log: a read_uncommitted consumer sees all 20 records, so the
	// read_committed one below really filters the aborted batch rather than never seeing it.
	if got := consumeAll(t, ctx, topic, 20, kgo.ReadUncommitted()); got[0] != "aborted-0" {
		t.Fatalf("read_uncommitted first record = %q, want aborted-0", got[0])
	}
	got := consumeAll(t, ctx, topic, 10, kgo.ReadCommitted())
	for i, v := range got {
		if want := "committed-" + strconv.Itoa(i); v != want {
			t.Fatalf("read_committed record %d = %q, want %q", i, v, want)
		}
	}
}

// consumeAll reads want records from the start of topic and returns their values.
func consumeAll(t *testing.T, ctx context.Context, topic string, want int, isolation kgo.IsolationLevel) []string {
	t.Helper()
	cl := newKafkaClient(t,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(isolation),
	)
	var got []string
	for len(got) < want {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records from %s before the deadline", len(got), want, topic)
		}
		fetches.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		fetches.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) != want {
		t.Fatalf("consumed %d records from %s, want exactly %d", len(got), topic, want)
	}
	return got
}
