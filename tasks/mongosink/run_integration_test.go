package mongosink

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/internal/testenv"
	"github.com/mongorelay/mongorelay/tasks/connector"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// started is a slog handler that reports every "sink task started" line on ch.
type started struct {
	slog.Handler
	ch chan string
}

func (s started) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "sink task started" {
		s.ch <- r.Message
	}
	return s.Handler.Handle(ctx, r)
}

func (s started) WithAttrs(as []slog.Attr) slog.Handler {
	return started{Handler: s.Handler.WithAttrs(as), ch: s.ch}
}

// TestANewOwnerFencesTheOldOneBeforeItWrites runs a partition's task, then a second run of the
// same task (a new owner, as after a failover) while the first still runs, as a paused node's
// would. Each writes to its own database, so what each wrote can be told apart: once the second
// has started, new records reach MongoDB through it alone, and the first stops, fenced, without
// writing them.
func TestANewOwnerFencesTheOldOneBeforeItWrites(t *testing.T) {
	brokers, mongoURI := testenv.Kafka(t), testenv.Mongo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := fmt.Sprintf("sinkit%d", time.Now().UnixNano()%1_000_000_000)
	topic := run + ".in"

	kafka, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer kafka.Close()
	adm := kadm.NewClient(kafka)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	store, err := offsets.Open(ctx, strings.Split(brokers, ","), run+"-offsets", offsets.Partitions(1), offsets.ReplicationFactor(1))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), topic, run+"-offsets") })

	mc, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mc.Disconnect(context.Background()) }()
	t.Cleanup(func() {
		_ = mc.Database(run + "_old").Drop(context.Background())
		_ = mc.Database(run + "_new").Drop(context.Background())
	})

	starts := make(chan string, 2)
	kind := New(Env{Kafka: kafka, KafkaOpts: []kgo.Opt{kgo.SeedBrokers(strings.Split(brokers, ",")...)}, Offsets: store,
		ClusterID: run, Logger: slog.New(started{Handler: slog.NewTextHandler(testWriter{t}, nil), ch: starts})})
	task := func(db string) connector.Task {
		return connector.Task{Connector: "sink", Spec: taskid.Spec{Topic: topic}, Config: map[string]string{
			"connector.class": Class, "mongodb.connection.string": mongoURI, "topics": topic, "database": db}}
	}
	produce := func(version int) {
		t.Helper()
		var recs []*kgo.Record
		for i := range 5 {
			recs = append(recs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, `{"_id": %d, "v": %d}`, i, version)})
		}
		if err := kafka.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	versions := func(db string) map[int32]int32 {
		t.Helper()
		cur, err := mc.Database(db).Collection(topic).Find(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		var docs []struct {
			ID int32 `bson:"_id"`
			V  int32 `bson:"v"`
		}
		if err := cur.All(ctx, &docs); err != nil {
			t.Fatal(err)
		}
		out := map[int32]int32{}
		for _, d := range docs {
			out[d.ID] = d.V
		}
		return out
	}
	waitFor := func(db string, version int32) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got := versions(db)
			all := len(got) == 5
			for _, v := range got {
				all = all && v == version
			}
			if all {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s holds %v, want 5 documents at version %d", db, got, version)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	oldCtx, stopOld := context.WithCancel(ctx)
	defer stopOld()
	oldDone := make(chan error, 1)
	wg.Go(func() { oldDone <- kind.Run(oldCtx, task(run+"_old")) })
	<-starts
	produce(1)
	waitFor(run+"_old", 1)

	newCtx, stopNew := context.WithCancel(ctx)
	defer stopNew()
	wg.Go(func() { _ = kind.Run(newCtx, task(run+"_new")) })
	<-starts
	produce(2)
	waitFor(run+"_new", 2)
	select {
	case err := <-oldDone:
		if !connector.IsFenced(err) {
			t.Fatalf("the old owner's run ended with %v, want it fenced", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the old owner still runs after the new one wrote")
	}
	for id, v := range versions(run + "_old") {
		if v != 1 {
			t.Errorf("the fenced owner wrote version %d of document %d", v, id)
		}
	}
	if _, ok := versions(run + "_new")[0]; !ok {
		t.Fatal("the new owner wrote nothing")
	}
	committed, err := store.Get(offsets.PartitionKey("sink", topic, 0))
	if err != nil || committed.KafkaOffset == nil || *committed.KafkaOffset != 10 {
		t.Errorf("committed offset = %+v (%v), want kafka_offset 10", committed, err)
	}
}

// testWriter sends a logger's lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
