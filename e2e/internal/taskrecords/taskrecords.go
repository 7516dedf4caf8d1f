// Package taskrecords reads what tasks wrote, as the end-to-end suites' checkers do: every
// record of the topics from the start, read_committed (the records of an aborted or fenced
// transaction never count), with when it arrived and the task and writer it names.
package taskrecords

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/tasks"
	"github.com/mongorelay/mongorelay/tasks/shard"
)

// Record is a consumed record with its arrival time and task headers.
type Record struct {
	*kgo.Record
	Shard  string    // mongorelay.shard header: i-of-n
	Writer string    // mongorelay.writer header: <node>/e<epoch>
	At     time.Time // when the consumer got it
}

// NewClient returns a client of topics from their start, read_committed, polling often
// enough for failover times to the 100 ms.
func NewClient(brokers, topics []string) (*kgo.Client, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.MetadataMinAge(time.Second),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka consumer: %w", err)
	}
	return cl, nil
}

// Run polls cl until ctx ends, handing keep each fetch's records, and closes cl.
func Run(ctx context.Context, cl *kgo.Client, keep func([]Record)) {
	defer cl.Close()
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		var batch []Record
		fetches.EachRecord(func(r *kgo.Record) {
			rec := Record{Record: r, At: now}
			for _, h := range r.Headers {
				switch h.Key {
				case shard.HeaderKey:
					rec.Shard = string(h.Value)
				case tasks.WriterHeader:
					rec.Writer = string(h.Value)
				}
			}
			batch = append(batch, rec)
		})
		keep(batch)
	}
}
