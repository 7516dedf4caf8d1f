package offsets

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mongorelay/mongorelay/internal/testenv"
)

// TestStoreAgainstKafka runs the store against the real broker of
// `make env-up`, on a topic of its own that it deletes afterwards.
func TestStoreAgainstKafka(t *testing.T) {
	brokers := strings.Split(testenv.Kafka(t), ",")
	topic := fmt.Sprintf("mongorelay-offsets-test-%d", time.Now().UnixNano())
	ctx := testCtx(t)
	adm := adminFor(t, brokers)
	t.Cleanup(func() {
		if _, err := adm.DeleteTopics(testCtx(t), topic); err != nil {
			t.Logf("delete topic %s: %v", topic, err)
		}
	})

	s, err := Open(ctx, brokers, topic, quiet, Partitions(3), ReplicationFactor(1))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()

	configs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := configs.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	var policy string
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" {
			policy = c.MaybeValue()
		}
	}
	if policy != "compact" {
		t.Errorf("cleanup.policy = %q, want compact", policy)
	}

	k := ShardKey("cdc", "shop", "orders", 0, 1)
	gone := ShardKey("cdc", "shop", "users", 0, 1)
	for _, tok := range []string{tokInsert, tokUpdate} {
		if err := s.Commit(ctx, k, at(t, tok)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit(ctx, gone, at(t, tokPBRT)); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, gone, nil); err != nil {
		t.Fatal(err)
	}

	re, err := Open(ctx, brokers, topic, quiet)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer re.Close()
	if got := mustGet(t, re, k).ResumeToken.Data; got != tokUpdate {
		t.Errorf("reopened offset = %s, want the latest commit", got)
	}
	if entries := re.List("cdc"); len(entries) != 1 {
		t.Errorf("List after a tombstone = %d entries, want 1", len(entries))
	}
}
