// Package traffic is the steady load of the end-to-end suites: a writer inserting documents at
// a rate into MongoDB, and a consumer reading every record of the topics they reach, so a test
// can tell what was acknowledged from what arrived, lost, twice or by whom.
package traffic

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongorelay/mongorelay/e2e/internal/taskrecords"
)

// Writer inserts documents into collections at a steady rate, round robin, and remembers
// which ids MongoDB acknowledged, with the topic each should reach.
type Writer struct {
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

// NewWriter returns a writer of rate documents per second over colls; topics[i] is the topic
// the documents of colls[i] reach (nil when the test does not ask).
func NewWriter(colls []*mongo.Collection, topics []string, rate int) *Writer {
	return &Writer{colls: colls, topics: topics, rate: rate, inserted: map[string]string{}}
}

// Run inserts every 10ms what it takes to stay at rate documents per second since it began
// (so that a slow insert is made up for), until ctx ends.
func (w *Writer) Run(ctx context.Context) {
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
			topic := ""
			if c < len(w.topics) {
				topic = w.topics[c]
			}
			for _, id := range ids {
				w.inserted[id] = topic
				w.order = append(w.order, id)
			}
		}
		w.elapsed = time.Since(start)
		w.mu.Unlock()
	}
}

// Achieved returns the rate the writer kept, in documents per second.
func (w *Writer) Achieved() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.elapsed <= 0 {
		return 0
	}
	return float64(w.seq) / w.elapsed.Seconds()
}

// Mark returns how many documents were acknowledged so far.
func (w *Writer) Mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.order)
}

// Since returns the ids acknowledged after mark, with their topics.
func (w *Writer) Since(mark int) map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]string, len(w.order)-mark)
	for _, id := range w.order[mark:] {
		out[id] = w.inserted[id]
	}
	return out
}

// Failures returns how many inserts failed: each may or may not be in MongoDB, so none is
// expected downstream.
func (w *Writer) Failures() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

// Record is what a test keeps of each record consumed.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Shard     string // mongorelay.shard header, i-of-n
	Writer    string // mongorelay.writer header, <node>/e<epoch>
	ID        string // the document's _id (a string id, without its JSON quotes)
	At        time.Time
}

// Task names the task that wrote the record: topic#shard.
func (r Record) Task() string { return r.Topic + "#" + r.Shard }

// Consumer reads every record of the topics, read_committed (records of aborted, fenced
// transactions never count), from the start.
type Consumer struct {
	cl *kgo.Client

	mu      sync.Mutex
	records []Record
	ids     map[string]int // _id → times seen
}

// NewConsumer returns a consumer of topics; Run consumes.
func NewConsumer(brokers, topics []string) (*Consumer, error) {
	cl, err := taskrecords.NewClient(brokers, topics)
	if err != nil {
		return nil, err
	}
	return &Consumer{cl: cl, ids: map[string]int{}}, nil
}

// Run consumes until ctx ends.
func (c *Consumer) Run(ctx context.Context) {
	taskrecords.Run(ctx, c.cl, func(batch []taskrecords.Record) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, r := range batch {
			rec := Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Shard: r.Shard, Writer: r.Writer, At: r.At}
			rec.ID, _ = keyID(r.Key)
			c.records = append(c.records, rec)
			if rec.ID != "" {
				c.ids[rec.ID]++
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

// Missing returns the ids of want not consumed yet.
func (c *Consumer) Missing(want map[string]string) []string {
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

// Duplicates counts ids of want consumed more than once (at-least-once allows them).
func (c *Consumer) Duplicates(want map[string]string) int {
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

// Arrivals returns how many records of the given ids arrived, over all topics.
func (c *Consumer) Arrivals(ids map[string]string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for id := range ids {
		n += c.ids[id]
	}
	return n
}

// TopicsOf returns the topics where records of the given ids arrived.
func (c *Consumer) TopicsOf(ids map[string]string) map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]bool{}
	for _, r := range c.records {
		if _, ok := ids[r.ID]; ok {
			out[r.Topic] = true
		}
	}
	return out
}

// TasksSeen returns the tasks (Record.Task) that have written at least one record.
func (c *Consumer) TasksSeen() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]bool{}
	for _, r := range c.records {
		out[r.Task()] = true
	}
	return out
}

// FirstAfter returns the first record consumed after t0 that matches.
func (c *Consumer) FirstAfter(t0 time.Time, match func(Record) bool) (Record, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.records {
		if r.At.After(t0) && match(r) {
			return r, true
		}
	}
	return Record{}, false
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

// WriterOrder checks, per task and partition, that the writers of its records only ever move
// on to a newer epoch (A…AB…B, never back to A), and that every record names its writer. It
// returns the violations and how many writer changes it saw.
func (c *Consumer) WriterOrder() (violations []string, handovers int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	type key struct {
		topic     string
		partition int32
		shard     string
	}
	last := map[key]Record{}
	lastEpoch := map[key]uint64{}
	for _, r := range c.records {
		k := key{r.Topic, r.Partition, r.Shard}
		e, ok := epochOf(r.Writer)
		if !ok {
			violations = append(violations, fmt.Sprintf("%s[%d]@%d: no %q header", r.Topic, r.Partition, r.Offset, "mongorelay.writer"))
			continue
		}
		prev, seen := last[k]
		switch {
		case !seen:
		case e < lastEpoch[k]:
			violations = append(violations, fmt.Sprintf("task %s shard %s partition %d: %s wrote at offset %d after %s at offset %d",
				r.Topic, r.Shard, r.Partition, r.Writer, r.Offset, prev.Writer, prev.Offset))
		case r.Writer != prev.Writer:
			handovers++
		}
		if !seen || e >= lastEpoch[k] {
			last[k], lastEpoch[k] = r, e
		}
	}
	return violations, handovers
}

// Ends returns, per topic/partition, the offset after the last record consumed.
func (c *Consumer) Ends() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int64{}
	for _, r := range c.records {
		k := r.Topic + "/" + fmt.Sprint(r.Partition)
		out[k] = max(out[k], r.Offset+1)
	}
	return out
}

// Count returns how many records were consumed.
func (c *Consumer) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.records)
}
