//go:build e2e

package hosts

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongorelay/mongorelay/e2e/internal/taskrecords"
)

// writer inserts documents at a steady rate, round robin over the collections, and remembers
// the ids MongoDB acknowledged, in order.
type writer struct {
	colls []*mongo.Collection
	rate  int

	mu     sync.Mutex
	seq    int
	acked  []string
	failed int
}

func newWriter(colls []*mongo.Collection, rate int) *writer {
	return &writer{colls: colls, rate: rate}
}

// run inserts, every 10 ms, what keeps it at rate documents per second since it began (a slow
// insert is made up for), until ctx ends.
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
		w.mu.Lock()
		n := min(int(time.Since(start).Seconds()*float64(w.rate))-w.seq, w.rate/10)
		docs := make([]any, 0, max(n, 0))
		ids := make([]string, 0, max(n, 0))
		for range n {
			w.seq++
			id := fmt.Sprintf("w%09d", w.seq)
			ids = append(ids, id)
			docs = append(docs, bson.D{{Key: "_id", Value: id}, {Key: "n", Value: w.seq}})
		}
		w.mu.Unlock()
		if len(docs) == 0 {
			continue
		}
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := w.colls[i%len(w.colls)].InsertMany(ictx, docs)
		cancel()
		w.mu.Lock()
		if err != nil {
			w.failed += len(ids) // maybe inserted, maybe not: not counted
		} else {
			w.acked = append(w.acked, ids...)
		}
		w.mu.Unlock()
	}
}

// mark returns how many inserts were acknowledged so far.
func (w *writer) mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// since returns the ids acknowledged after mark.
func (w *writer) since(mark int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.acked[mark:]...)
}

func (w *writer) failures() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

// record is what the test keeps of a consumed record.
type record struct {
	task   string // topic#shard
	writer string // <node>/e<epoch>
	at     time.Time
}

// consumer reads every record of the topics from the start, read_committed.
type consumer struct {
	cl *kgo.Client

	mu      sync.Mutex
	records []record
	ids     map[string]int // document _id → times seen
}

func newConsumer(brokers, topics []string) (*consumer, error) {
	cl, err := taskrecords.NewClient(brokers, topics)
	if err != nil {
		return nil, err
	}
	return &consumer{cl: cl, ids: map[string]int{}}, nil
}

// run consumes until ctx ends.
func (c *consumer) run(ctx context.Context) {
	taskrecords.Run(ctx, c.cl, func(batch []taskrecords.Record) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, r := range batch {
			c.records = append(c.records, record{task: r.Topic + "#" + r.Shard, writer: r.Writer, at: r.At})
			if id, err := keyID(r.Key); err == nil {
				c.ids[id]++
			}
		}
	})
}

// keyID decodes a record key: the Confluent wire header, then an Avro record whose one string
// field is the canonical extended JSON of _id (a quoted string for the writer's ids).
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
func (c *consumer) missing(want []string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, id := range want {
		if c.ids[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

// duplicates counts the ids of want consumed more than once (at-least-once allows them).
func (c *consumer) duplicates(want []string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, id := range want {
		if c.ids[id] > 1 {
			n++
		}
	}
	return n
}

// tasksSeen returns the tasks (topic#shard) that have written a record.
func (c *consumer) tasksSeen() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]bool{}
	for _, r := range c.records {
		out[r.task] = true
	}
	return out
}

// firstAfter returns the first record consumed after t0 that matches.
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
