//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/e2e/internal/taskrecords"
	"github.com/mongorelay/mongorelay/registry"
	"github.com/mongorelay/mongorelay/registry/client"
)

// consumer keeps every record of the topics, undecoded: decoding needs the registry, which a
// paused node may hold up, so it waits until the faults are over.
type consumer struct {
	cl *kgo.Client

	mu   sync.Mutex
	recs []taskrecords.Record
}

func newConsumer(brokers string, topics []string) (*consumer, error) {
	cl, err := taskrecords.NewClient(strings.Split(brokers, ","), topics)
	if err != nil {
		return nil, err
	}
	return &consumer{cl: cl}, nil
}

// run consumes until ctx ends.
func (c *consumer) run(ctx context.Context) {
	taskrecords.Run(ctx, c.cl, func(batch []taskrecords.Record) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.recs = append(c.recs, batch...)
	})
}

// since returns the records consumed from index from on.
func (c *consumer) since(from int) []taskrecords.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.recs[from:])
}

// count is how many records have been consumed.
func (c *consumer) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.recs)
}

// tasksSeen counts the tasks (topic#shard) that have written a record.
func (c *consumer) tasksSeen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[string]bool{}
	for _, r := range c.recs {
		seen[r.Topic+"#"+r.Shard] = true
	}
	return len(seen)
}

// event is what the verifier reads from one change record.
type event struct {
	op    string // c, u, d
	v     int64  // the writer's operation number; 0 for deletes
	token string // source.resume_token (else ts_ms/ord): the same change replayed has the same one
	at    string // topic[partition]@offset, for messages
}

// decoder turns raw records into events of documents, through the cluster's registry.
type decoder struct {
	dec *registry.Decoder
}

func newDecoder(urls string) (*decoder, error) {
	reg, err := client.New(urls)
	if err != nil {
		return nil, err
	}
	return &decoder{dec: registry.NewDecoder(client.NewCached(reg))}, nil
}

// decode returns the document's _id and its event; ok is false for tombstones.
func (d *decoder) decode(ctx context.Context, r taskrecords.Record) (id string, ev event, ok bool, err error) {
	at := fmt.Sprintf("%s[%d]@%d", r.Topic, r.Partition, r.Offset)
	if r.Value == nil {
		return "", ev, false, nil
	}
	if id, err = d.id(ctx, r); err != nil {
		return "", ev, false, err
	}
	v, err := d.dec.Decode(ctx, r.Value)
	if err != nil {
		return "", ev, false, fmt.Errorf("decode value of %s: %w", at, err)
	}
	env, _ := v.(map[string]any)
	ev = event{at: at}
	ev.op, _ = env["op"].(string)
	src, _ := env["source"].(map[string]any)
	if tok, _ := src["resume_token"].(string); tok != "" {
		ev.token = tok
	} else {
		ev.token = fmt.Sprintf("%v/%v", src["ts_ms"], src["ord"])
	}
	// An update names its change in updatedFields (after is the document looked up later,
	// which may carry a later v); an insert or replace in after.
	if ud, _ := env["updateDescription"].(map[string]any); ud != nil {
		if fields, _ := ud["updatedFields"].(string); fields != "" {
			var m bson.M
			if err := bson.UnmarshalExtJSON([]byte(fields), true, &m); err != nil {
				return "", ev, false, fmt.Errorf("updatedFields of %s: %w", at, err)
			}
			if n, ok := asInt64(m["v"]); ok {
				ev.v = n
				return id, ev, true, nil
			}
		}
	}
	if after, _ := env["after"].(map[string]any); after != nil {
		ev.v, _ = asInt64(after["v"])
	}
	return id, ev, true, nil
}

// id returns the _id a record's key names (a string _id as the string itself).
func (d *decoder) id(ctx context.Context, r taskrecords.Record) (string, error) {
	k, err := d.dec.Decode(ctx, r.Key)
	if err != nil {
		return "", fmt.Errorf("decode key of %s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)
	}
	km, _ := k.(map[string]any)
	raw, _ := km["id"].(string)
	if id, err := strconv.Unquote(raw); err == nil {
		return id, nil
	}
	return raw, nil
}

func asInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int32:
		return int64(n), true
	case int:
		return int64(n), true
	case float64:
		return int64(n), true
	case map[string]any:
		// Typed Avro writes an int64 in the record mongorelay.bson.Int64 {value}.
		if len(n) == 1 {
			return asInt64(n["value"])
		}
	}
	return 0, false
}

// feed decodes records into events per topic and document, in the order consumed (the order
// of each partition, so of each document).
type feed struct {
	dec    *decoder
	events map[string]map[string][]event // topic → _id → events
	done   int                           // records decoded
	last   time.Time                     // when the last record was consumed
}

func (f *feed) add(ctx context.Context, recs []taskrecords.Record) error {
	for _, r := range recs {
		id, ev, ok, err := f.dec.decode(ctx, r)
		if err != nil {
			return err
		}
		f.done++
		f.last = r.At
		if !ok {
			continue
		}
		if f.events[r.Topic] == nil {
			f.events[r.Topic] = map[string][]event{}
		}
		f.events[r.Topic][id] = append(f.events[r.Topic][id], ev)
	}
	return nil
}

// tally is the verdict on one connector's output.
type tally struct {
	docs, events                            int
	lost, duplicated, reordered, unexpected int
	problems, repeats                       []string // up to 10 examples of each
}

func note(examples *[]string, format string, args ...any) {
	if len(*examples) < 10 {
		*examples = append(*examples, fmt.Sprintf(format, args...))
	}
}

// verify checks, per document, that the events on topics (one per collection) are the
// operations of log, in order, each once. A change delivered again has the resume token of its
// first delivery: it counts as duplicated. The remaining events must name the document's
// operations in order (a delete, which carries no number, stands for the first delete after
// the operation before it): an operation no event names is lost, an event naming an operation
// before one already seen is reordered, an event naming none is unexpected.
func verify(log *opLog, topics []string, byTopic map[string]map[string][]event, ignore func(id string) bool) tally {
	var t tally
	log.mu.Lock()
	defer log.mu.Unlock()
	for coll, topic := range topics {
		events := byTopic[topic]
		for id := range events {
			k := docKey{coll, id}
			if _, ok := log.byDoc[k]; !ok && !log.poisoned[k] && !ignore(id) {
				t.unexpected += len(events[id])
				note(&t.problems, "%s: %d events for a document the writer never changed", k, len(events[id]))
			}
		}
	}
	for k, ops := range log.byDoc {
		if log.poisoned[k] {
			continue
		}
		t.docs++
		evs := byTopic[topics[k.coll]][k.id]
		t.events += len(evs)
		byV := make(map[int64]int, len(ops))
		for i, o := range ops {
			if o.kind != opDelete {
				byV[o.v] = i
			}
		}
		seen := map[string]bool{}
		matched := make([]bool, len(ops))
		last, highest := -1, -1
		for _, ev := range evs {
			if seen[ev.token] {
				t.duplicated++
				note(&t.repeats, "%s: %s %s delivered again (%s)", k, ev.op, ev.token, ev.at)
				continue
			}
			seen[ev.token] = true
			idx := -1
			if ev.op == "d" {
				for j := last + 1; j < len(ops); j++ {
					if ops[j].kind == opDelete && !matched[j] {
						idx = j
						break
					}
				}
			} else if j, ok := byV[ev.v]; ok && ops[j].kind.envelopeOp() == ev.op {
				idx = j
			}
			switch {
			case idx < 0:
				t.unexpected++
				note(&t.problems, "%s: event %s v=%d (%s) names no operation of %v", k, ev.op, ev.v, ev.at, ops)
				continue
			case matched[idx]:
				t.duplicated++
				note(&t.repeats, "%s: operation %d (%s v=%d) delivered twice with different tokens (%s)", k, idx, opNames[ops[idx].kind], ops[idx].v, ev.at)
				continue
			case idx < highest:
				t.reordered++
				note(&t.problems, "%s: operation %d (%s v=%d) came after operation %d (%s)", k, idx, opNames[ops[idx].kind], ops[idx].v, highest, ev.at)
			}
			matched[idx] = true
			last, highest = idx, max(highest, idx)
		}
		for i, m := range matched {
			if !m {
				t.lost++
				note(&t.problems, "%s: operation %d (%s v=%d) never arrived", k, i, opNames[ops[i].kind], ops[i].v)
			}
		}
	}
	return t
}

// TestVerifyCountsEachKindOfFault feeds the verifier one document's operations and hand-made
// event sequences: it must count exactly the fault each sequence has.
func TestVerifyCountsEachKindOfFault(t *testing.T) {
	key := docKey{0, "d00001"}
	log := &opLog{byDoc: map[docKey][]op{key: {{opInsert, 1}, {opUpdate, 2}, {opDelete, 5}, {opInsert, 7}}}, poisoned: map[docKey]bool{}}
	c1, u2, d5, c7 := event{op: "c", v: 1, token: "t1"}, event{op: "u", v: 2, token: "t2"}, event{op: "d", token: "t5"}, event{op: "c", v: 7, token: "t7"}
	for _, tc := range []struct {
		name                                    string
		events                                  []event
		lost, duplicated, reordered, unexpected int
	}{
		{"every change once, in order", []event{c1, u2, d5, c7}, 0, 0, 0, 0},
		{"a replay after a failover", []event{c1, u2, d5, u2, d5, c7}, 0, 2, 0, 0},
		{"an update lost", []event{c1, d5, c7}, 1, 0, 0, 0},
		{"a delete lost", []event{c1, u2, c7}, 1, 0, 0, 0},
		{"the tail lost", []event{c1}, 3, 0, 0, 0},
		{"two changes swapped", []event{u2, c1, d5, c7}, 0, 0, 1, 0},
		{"a change nobody made", []event{c1, u2, {op: "u", v: 3, token: "t3"}, d5, c7}, 0, 0, 0, 1},
		{"a change delivered twice under two tokens", []event{c1, u2, {op: "u", v: 2, token: "t2b"}, d5, c7}, 0, 1, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := verify(log, []string{"topic"}, map[string]map[string][]event{"topic": {key.id: tc.events}}, func(string) bool { return false })
			if got.lost != tc.lost || got.duplicated != tc.duplicated || got.reordered != tc.reordered || got.unexpected != tc.unexpected {
				t.Errorf("lost %d, duplicated %d, reordered %d, unexpected %d; want %d, %d, %d, %d (%v)",
					got.lost, got.duplicated, got.reordered, got.unexpected, tc.lost, tc.duplicated, tc.reordered, tc.unexpected, got.problems)
			}
		})
	}
}
