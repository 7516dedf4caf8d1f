package kafkastore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mongorelay/mongorelay/internal/testenv"
)

// TestRealKafka runs the restart check against the test environment's
// broker, on a topic of its own that it deletes afterwards.
func TestRealKafka(t *testing.T) {
	brokers := strings.Split(testenv.Kafka(t), ",")
	ctx := testContext(t)
	topic := fmt.Sprintf("mongorelay-schemas-test-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin(t, brokers).DeleteTopic(ctx, topic); err != nil {
			t.Logf("delete topic %s: %v", topic, err)
		}
	})

	r, store := open(t, ctx, brokers, topic)
	ids := history(t, ctx, r)
	checkHistory(t, ctx, r, ids)
	store.Close()

	r2, _ := open(t, ctx, brokers, topic)
	checkHistory(t, ctx, r2, ids)
	if id, err := r2.Register(ctx, "new-value", other); err != nil || id != ids[order]+1 {
		t.Fatalf("new id %d, %v; want %d", id, err, ids[order]+1)
	}
}
