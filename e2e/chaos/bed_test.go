//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/e2e/internal/clusterapi"
	"github.com/mongorelay/mongorelay/internal/proc"
	"github.com/mongorelay/mongorelay/internal/testservers"
)

// The shape of every run: 2 connectors capture the same 3 collections of db, each in 4
// shards (24 tasks on 3 nodes), so every change is checked twice, on two independent sets of
// topics.
const (
	db          = "chaos"
	collections = 3
	shards      = 4
)

var connectors = []string{"chaos-a", "chaos-b"}

// prefix is a connector's topic prefix.
func prefix(connector string) string { return strings.ReplaceAll(connector, "-", "_") }

// bed is what a run stands on: its private servers, the captured collections, the cluster of
// 3 nodes with the connectors, and a consumer of every topic of theirs from the start.
type bed struct {
	t0    time.Time
	bin   string // the mongorelay binary
	work  string // the run's directory: data and logs, kept until the next run
	reg   *proc.Registry
	srv   *testservers.Servers
	colls []*mongo.Collection

	c        *cluster
	topicsOf map[string][]string // connector → its topics, one per collection
	tasks    int
	cons     *consumer
	stop     context.CancelFunc // stops the consumer
}

// newBed starts the private servers, with their logs and the nodes' in .cache/<name>, and
// creates the collections (they exist before the connectors list them).
func newBed(ctx context.Context, t *testing.T, name string, oplogEntries int) *bed {
	b := &bed{t0: time.Now()}
	var err error
	if b.bin, err = filepath.Abs(*binary); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.bin); err != nil {
		t.Fatalf("no mongorelay binary (make build): %v", err)
	}
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	b.work = filepath.Join(root, ".cache", name)
	if err := os.RemoveAll(b.work); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(b.work, "nodes"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("logs in %s", b.work)
	b.reg = proc.NewRegistry(filepath.Join(b.work, "pids"))
	t.Cleanup(func() { b.reg.StopAll(5 * time.Second) })
	b.srv, err = testservers.Start(ctx, testservers.Config{Root: root, Work: b.work,
		KafkaHeap: "1g", StandinHeap: "2g", OplogEntries: oplogEntries, Logf: t.Logf}, b.reg)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := mongo.Connect(options.Client().ApplyURI(b.srv.MongoURI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	for i := range collections {
		c := mc.Database(db).Collection(fmt.Sprintf("c%d", i))
		if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "seed"}}); err != nil {
			t.Fatalf("seed %s: %v", c.Name(), err)
		}
		b.colls = append(b.colls, c)
	}
	return b
}

// startCluster starts n1..n3, creates the connectors (the first through the leader, the
// second through a follower), reading MongoDB at mongoURI, with extra added to their config,
// and waits until every task runs. Then it consumes their topics and warms up: documents
// outside the verified ids until every task has written a record, then time for every task
// to commit an offset (heartbeat.interval.ms=1000): from there on no change may be lost,
// whatever happens.
func (b *bed) startCluster(ctx context.Context, t *testing.T, mongoURI string, extra map[string]string) {
	var err error
	if b.c, err = newCluster(b.reg, b.bin, b.work, b.srv.KafkaAddr, "chaos", "n", 3); err != nil {
		t.Fatal(err)
	}
	for _, n := range b.c.nodes {
		if err := b.c.start(n); err != nil {
			t.Fatal(err)
		}
	}
	var leader *node
	clusterapi.WaitFor(t, 60*time.Second, "a leader", func() (bool, string) {
		var err error
		leader, _, err = b.c.view()
		return err == nil, fmt.Sprint(err)
	})
	t.Logf("leader %s after %s", leader.id, b.since())

	b.topicsOf = map[string][]string{}
	var topics []string
	for i, name := range connectors {
		config := clusterapi.ConnectorConfig(mongoURI, db, prefix(name), shards)
		config["shard.filter"] = "client" // the stand-in lacks $toHashedIndexKey
		config["exactly.once"] = fmt.Sprint(*exactlyOnce)
		maps.Copy(config, extra)
		addr := leader.http
		if i == 1 {
			addr = b.c.nodes[(slices.Index(b.c.nodes, leader)+1)%len(b.c.nodes)].http
		}
		if err := createConnector(ctx, addr, name, config); err != nil {
			t.Fatal(err)
		}
		for j := range collections {
			b.topicsOf[name] = append(b.topicsOf[name], fmt.Sprintf("%s.%s.c%d", prefix(name), db, j))
		}
		topics = append(topics, b.topicsOf[name]...)
	}
	b.tasks = len(connectors) * collections * shards
	if _, err := b.c.settled(ctx, connectors, b.tasks, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("all %d tasks RUNNING after %s", b.tasks, b.since())

	if b.cons, err = newConsumer(b.srv.KafkaAddr, topics); err != nil {
		t.Fatal(err)
	}
	consCtx, stop := context.WithCancel(ctx)
	b.stop = stop
	t.Cleanup(stop)
	go b.cons.run(consCtx)
	for i := 0; b.cons.tasksSeen() < b.tasks; i++ {
		if time.Since(b.t0) > 5*time.Minute {
			t.Fatalf("only %d of %d tasks wrote a record during the warm-up", b.cons.tasksSeen(), b.tasks)
		}
		for _, coll := range b.colls {
			if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("warm-%d", i)}}); err != nil {
				t.Fatalf("warm-up insert: %v", err)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	t.Logf("every task streaming after %s", b.since())
}

// since is the time since the run began, for progress lines.
func (b *bed) since() time.Duration { return time.Since(b.t0).Round(time.Millisecond) }

// verifyAll decodes what arrives, through the schema registry at registryURLs, until every
// connector has every change of log, or nothing new has come for 20 s; then it stops the
// consumer and returns each connector's verdict. The warm-up's documents, the seeds and the
// probes ("probe-...") are no operation of the writer's.
func (b *bed) verifyAll(ctx context.Context, t *testing.T, log *opLog, registryURLs string) map[string]tally {
	dec, err := newDecoder(registryURLs)
	if err != nil {
		t.Fatal(err)
	}
	f := &feed{dec: dec, events: map[string]map[string][]event{}, last: time.Now()}
	ignore := func(id string) bool {
		return id == "seed" || strings.HasPrefix(id, "warm-") || strings.HasPrefix(id, "probe-")
	}
	verdicts := map[string]tally{}
	drainStart := time.Now()
	for {
		if err := f.add(ctx, b.cons.since(f.done)); err != nil {
			t.Fatal(err)
		}
		complete := true
		for _, name := range connectors {
			verdicts[name] = verify(log, b.topicsOf[name], f.events, ignore)
			complete = complete && verdicts[name].lost == 0
		}
		if complete || time.Since(f.last) > 20*time.Second || time.Since(drainStart) > 3*time.Minute {
			break
		}
		time.Sleep(time.Second)
	}
	b.stop()
	t.Logf("drained in %s (%d records consumed)", time.Since(drainStart).Round(time.Millisecond), f.done)
	return verdicts
}

// judge reports each connector's verdict and fails the test on any lost, reordered or
// unexpected change, and on any duplicate with -exactly-once.
func judge(t *testing.T, verdicts map[string]tally) {
	for _, name := range connectors {
		v := verdicts[name]
		t.Logf("%s: %d documents, %d events: lost %d, duplicated %d, reordered %d, unexpected %d",
			name, v.docs, v.events, v.lost, v.duplicated, v.reordered, v.unexpected)
		examples := v.problems
		if *exactlyOnce {
			examples = append(examples, v.repeats...)
		}
		for _, e := range examples {
			t.Logf("  %s", e)
		}
		if v.lost > 0 || v.reordered > 0 || v.unexpected > 0 {
			t.Errorf("%s: lost %d, reordered %d, unexpected %d", name, v.lost, v.reordered, v.unexpected)
		}
		if *exactlyOnce && v.duplicated > 0 {
			t.Errorf("%s: %d duplicated with exactly.once=true", name, v.duplicated)
		}
	}
}
