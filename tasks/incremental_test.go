package tasks

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/registry"
	"github.com/mongorelay/mongorelay/registry/registrytest"
	"github.com/mongorelay/mongorelay/tasks/connector"
	"github.com/mongorelay/mongorelay/tasks/envelope"
	"github.com/mongorelay/mongorelay/tasks/offsets"
)

func docWithID(id int32) bson.Raw {
	raw, err := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "n", Value: id}})
	if err != nil {
		panic(err)
	}
	return raw
}

// TestIncrementalSnapshotDeliversTheChunkAtTheHighWatermark: a request made while the task
// streams copies the collection in the stream: the row of a document changed inside the
// chunk's window is dropped, the others arrive after the window's changes and before the
// first change after its high watermark, and the offset records the request done.
func TestIncrementalSnapshotDeliversTheChunkAtTheHighWatermark(t *testing.T) {
	cfg := testConfig(t, map[string]string{"snapshot.mode": "never"})
	m := &fakeMongo{
		docs:      []bson.Raw{docWithID(1), docWithID(2), docWithID(3)},
		chunkHigh: bson.Timestamp{T: 105},
		batches: []fakeBatch{
			{events: []bson.Raw{changeInsert(103, 2)}, token: tokenAt(103, 1)},
			{events: []bson.Raw{changeInsert(106, 4)}, token: tokenAt(106, 1)},
		},
	}
	// The request appears once the task has started: one made before a shard first streams
	// is one its own snapshot covered.
	var asked atomic.Bool
	requests := func() []connector.SnapshotRequest {
		if !asked.Swap(true) {
			return nil
		}
		return []connector.SnapshotRequest{{ID: 9, Collections: []string{"db.other"}}, {ID: 10, Collections: []string{"db.coll"}}}
	}
	brokers, store := testKafka(t, cfg.Topic("db", "coll"))
	reg, err := registry.New(context.Background(), registrytest.NewStore())
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{Connector: cfg, DB: "db", Coll: "coll", Shard: 0, Shards: 1}
	task := newTask(spec, Deps{Offsets: store, Registry: reg, Logger: quietLogger(), SnapshotRequests: requests,
		Transactional: &Transactional{ID: "test-" + spec.Name(), ClientOpts: []kgo.Opt{kgo.SeedBrokers(brokers...)}},
	}, m)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- task.Run(runCtx) }()

	key := offsets.ShardKey(cfg.Name, "db", "coll", 0, 1)
	for ctx.Err() == nil {
		if v, err := store.Get(key); err == nil && v.Incremental != nil && v.Incremental.Handled == 10 {
			break
		}
		select {
		case err := <-ran: // ended before the request was handled
			t.Fatalf("Run ended before the request was handled: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	stop()
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if v, err := store.Get(key); err != nil || v.Incremental == nil || v.Incremental.Handled != 10 || v.Incremental.Request != 0 {
		t.Fatalf("offset %+v (%v), want the request handled", v, err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(cfg.Topic("db", "coll")),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	for len(got) < 4 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			v := decodeAvro(t, reg, r.Value)
			after := v["after"].(map[string]any)[cfg.Topic("db", "coll")+".Value"].(map[string]any) // the union's branch
			got = append(got, fmt.Sprintf("%s%v%s", v["op"], after["_id"], v["source"].(map[string]any)["snapshot"]))
		})
	}
	want := []string{`c2false`, `r1incremental`, `r3incremental`, `c4false`}
	if !slices.Equal(got, want) {
		t.Fatalf("records %v, want %v", got, want)
	}
}

func TestSnapshotSignalReadsDebeziumsSignal(t *testing.T) {
	insert := func(doc bson.D) *envelope.Event {
		full, err := bson.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		return &envelope.Event{Op: envelope.OpInsert, FullDocument: full}
	}
	signal := func(data bson.D) bson.D {
		return bson.D{{Key: "_id", Value: "ad-hoc-1"}, {Key: "type", Value: "execute-snapshot"}, {Key: "data", Value: data}}
	}
	tests := []struct {
		name    string
		ev      *envelope.Event
		want    []string
		wantOK  bool
		wantErr bool
	}{
		{name: "Debezium's incremental signal",
			ev:   insert(signal(bson.D{{Key: "data-collections", Value: bson.A{"shop.orders", "shop.people"}}, {Key: "type", Value: "incremental"}})),
			want: []string{"shop.orders", "shop.people"}, wantOK: true},
		{name: "data as a JSON string, as Debezium's signal tables hold it",
			ev:   insert(bson.D{{Key: "_id", Value: "ad-hoc-1"}, {Key: "type", Value: "execute-snapshot"}, {Key: "data", Value: `{"data-collections": ["shop.orders"], "type": "incremental"}`}}),
			want: []string{"shop.orders"}, wantOK: true},
		{name: "data that is no JSON object is an error",
			ev:     insert(bson.D{{Key: "_id", Value: "ad-hoc-1"}, {Key: "type", Value: "execute-snapshot"}, {Key: "data", Value: `shop.orders`}}),
			wantOK: true, wantErr: true},
		{name: "a signal without a type copies incrementally",
			ev:   insert(signal(bson.D{{Key: "data-collections", Value: bson.A{"shop.orders"}}})),
			want: []string{"shop.orders"}, wantOK: true},
		{name: "another signal type is no snapshot signal",
			ev: insert(bson.D{{Key: "_id", Value: 1}, {Key: "type", Value: "log"}, {Key: "data", Value: bson.D{}}})},
		{name: "an update of a signal document is no signal",
			ev: &envelope.Event{Op: envelope.OpUpdate}},
		{name: "a signal naming no collection is an error",
			ev: insert(signal(bson.D{{Key: "data-collections", Value: bson.A{}}})), wantOK: true, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, id, ok, err := snapshotSignal(tc.ev)
			if ok != tc.wantOK || (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
				t.Fatalf("snapshotSignal = %v, %q, %v, %v; want %v, ok %v, error %v", got, id, ok, err, tc.want, tc.wantOK, tc.wantErr)
			}
			if ok && id != `"ad-hoc-1"` {
				t.Fatalf("signal id %q, want the _id as extended JSON", id)
			}
		})
	}
}
