//go:build e2e

package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongorelay/mongorelay/e2e/internal/taskrecords"
)

// writer inserts documents into collections at a steady rate, round robin, and remembers
// which ids MongoDB acknowledged, with the topic each should reach.
type writer struct {
	colls  []*mongo.Collection
	topics []string
	rate   int // documents per second

	mu       sync.Mutex
	seq      int
	inserted map[string]string // _id → topic
	order    []string          // ids in insertion order
	failed   int
	elapsed  time.Duration // since the first insert, at the last one
}

func newWriter(colls []*mongo.Collection, topics []string, rate int) *writer {
	return &writer{colls: colls, topics: topics, rate: rate, inserted: map[string]string{}}
}

// run inserts every 10ms what it takes to stay at rate documents per second since it began
// (so that a slow insert is made up for), until ctx ends.
func (w *writer) run(ctx context.Context) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c := i % len(w.colls)
		w.mu.Lock()
		batch := min(int(time.Since(start).Seconds()*float64(w.rate))-w.seq, w.rate/10)
		if batch <= 0 {
			w.mu.Unlock()
			continue
		}
		docs := make([]any, batch)
		ids := make([]string, batch)
		for j := range docs {
			w.seq++
			ids[j] = fmt.Sprintf("w%09d", w.seq)
			docs[j] = bson.D{{Key: "_id", Value: ids[j]}, {Key: "n", Value: w.seq}, {Key: "at", Value: time.Now()}}
		}
		w.mu.Unlock()
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := w.colls[c].InsertMany(ictx, docs)
		cancel()
		w.mu.Lock()
		if err != nil {
			w.failed += batch // not counted: it may or may not have been inserted
		} else {
			for _, id := range ids {
				w.inserted[id] = w.topics[c]
				w.order = append(w.order, id)
			}
		}
		w.elapsed = time.Since(start)
		w.mu.Unlock()
	}
}

// achieved returns the rate the writer kept, in documents per second.
func (w *writer) achieved() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.elapsed <= 0 {
		return 0
	}
	return float64(w.seq) / w.elapsed.Seconds()
}

// mark returns how many documents were acknowledged so far.
func (w *writer) mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.order)
}

// since returns the ids acknowledged after mark, with their topics.
func (w *writer) since(mark int) map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]string, len(w.order)-mark)
	for _, id := range w.order[mark:] {
		out[id] = w.inserted[id]
	}
	return out
}

// record is what the test keeps of each record it consumed.
type record struct {
	topic     string
	partition int32
	offset    int64
	shard     string // mongorelay.shard header, i-of-n
	writer    string // mongorelay.writer header, <node>/e<epoch>
	id        string // the document's _id (a string id, without its JSON quotes)
	at        time.Time
}

// consumer reads every record of the topics, read_committed (records of aborted, fenced
// transactions never count), from the start.
type consumer struct {
	cl *kgo.Client

	mu      sync.Mutex
	records []record
	ids     map[string]int // _id → times seen
}

func newConsumer(t *testing.T, brokers []string, topics []string) *consumer {
	t.Helper()
	cl, err := taskrecords.NewClient(brokers, topics)
	if err != nil {
		t.Fatal(err)
	}
	return &consumer{cl: cl, ids: map[string]int{}}
}

func (c *consumer) run(ctx context.Context) {
	taskrecords.Run(ctx, c.cl, func(batch []taskrecords.Record) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, r := range batch {
			rec := record{topic: r.Topic, partition: r.Partition, offset: r.Offset, shard: r.Shard, writer: r.Writer, at: r.At}
			rec.id, _ = keyID(r.Key)
			c.records = append(c.records, rec)
			if rec.id != "" {
				c.ids[rec.id]++
			}
		}
	})
}

// keyID decodes a record key: the Confluent wire header, then an Avro record whose one string
// field is the canonical extended JSON of _id.
func keyID(key []byte) (string, error) {
	if len(key) < 6 || key[0] != 0 {
		return "", errors.New("not a Confluent wire-format key")
	}
	n, size := binary.Varint(key[5:])
	if size <= 0 || n < 0 || int(n) > len(key)-5-size {
		return "", errors.New("bad Avro string length")
	}
	s := string(key[5+size : 5+size+int(n)])
	if u, err := strconv.Unquote(s); err == nil {
		return u, nil
	}
	return s, nil
}

// missing returns the ids of want not consumed yet.
func (c *consumer) missing(want map[string]string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for id := range want {
		if c.ids[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

// duplicates counts ids of want consumed more than once (at-least-once allows them).
func (c *consumer) duplicates(want map[string]string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for id := range want {
		if c.ids[id] > 1 {
			n++
		}
	}
	return n
}

// tasksSeen returns the tasks (topic + "#" + shard) that have written at least one record.
func (c *consumer) tasksSeen() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]bool{}
	for _, r := range c.records {
		out[r.topic+"#"+r.shard] = true
	}
	return out
}

// firstAfter returns when the first record consumed after t0 that matches came, and it.
func (c *consumer) firstAfter(t0 time.Time, match func(record) bool) (record, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.records {
		if r.at.After(t0) && match(r) {
			return r, true
		}
	}
	return record{}, false
}

// epochOf reads the epoch of a writer id <node>/e<epoch>.
func epochOf(writer string) (uint64, bool) {
	i := strings.LastIndex(writer, "/e")
	if i < 0 {
		return 0, false
	}
	e, err := strconv.ParseUint(writer[i+2:], 10, 64)
	return e, err == nil
}

// writerOrder checks, per task and partition, that the writers of its records only ever move
// on to a newer epoch (A…AB…B, never back to A), and that every record names its writer. It
// returns the violations and how many writer changes it saw.
func (c *consumer) writerOrder() (violations []string, handovers int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	type key struct {
		topic     string
		partition int32
		shard     string
	}
	last := map[key]record{}
	lastEpoch := map[key]uint64{}
	for _, r := range c.records {
		k := key{r.topic, r.partition, r.shard}
		e, ok := epochOf(r.writer)
		if !ok {
			violations = append(violations, fmt.Sprintf("%s[%d]@%d: no %q header", r.topic, r.partition, r.offset, "mongorelay.writer"))
			continue
		}
		prev, seen := last[k]
		switch {
		case !seen:
		case e < lastEpoch[k]:
			violations = append(violations, fmt.Sprintf("task %s shard %s partition %d: %s wrote at offset %d after %s at offset %d",
				r.topic, r.shard, r.partition, r.writer, r.offset, prev.writer, prev.offset))
		case r.writer != prev.writer:
			handovers++
		}
		if !seen || e >= lastEpoch[k] {
			last[k], lastEpoch[k] = r, e
		}
	}
	return violations, handovers
}

// ends returns, per topic/partition, the offset after the last record consumed.
func (c *consumer) ends() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int64{}
	for _, r := range c.records {
		k := r.topic + "/" + fmt.Sprint(r.partition)
		out[k] = max(out[k], r.offset+1)
	}
	return out
}

func (c *consumer) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.records)
}
