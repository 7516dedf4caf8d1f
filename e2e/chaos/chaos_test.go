//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
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

// The shape of the run: 2 connectors capture the same 3 collections, each in 4 shards
// (24 tasks on 3 nodes), so every change is checked twice, on two independent sets of topics.
const (
	collections = 3
	shards      = 4
)

var connectors = []string{"chaos-a", "chaos-b"}

// TestChaos runs the whole harness: private servers, 3 nodes, 2 connectors, the seeded writer
// and fault schedule, then the verifier. It fails on any lost or reordered change, and on any
// duplicate with -exactly-once.
func TestChaos(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t0 := time.Now()
	bin, err := filepath.Abs(*binary)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no mongorelay binary (make build): %v", err)
	}
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	// Logs are kept after the run, one directory, replaced by the next run.
	work := filepath.Join(root, ".cache", "chaos")
	if err := os.RemoveAll(work); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(work, "nodes"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d: %d operations on %d ids over %s, exactly.once=%v; logs in %s", *seed, *opsFlag, *idsFlag, *duration, *exactlyOnce, work)
	reg := proc.NewRegistry(filepath.Join(work, "pids"))
	t.Cleanup(func() { reg.StopAll(5 * time.Second) })

	srv, err := testservers.Start(ctx, testservers.Config{Root: root, Work: work,
		KafkaHeap: "1g", StandinHeap: "2g", OplogEntries: 4 * *opsFlag,
		Logf: t.Logf}, reg)
	if err != nil {
		t.Fatal(err)
	}

	// MongoDB: the collections exist before the connectors list them.
	mc, err := mongo.Connect(options.Client().ApplyURI(srv.MongoURI))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Disconnect(context.Background())
	const db = "chaos"
	var colls []*mongo.Collection
	for i := range collections {
		c := mc.Database(db).Collection(fmt.Sprintf("c%d", i))
		if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "seed"}}); err != nil {
			t.Fatalf("seed %s: %v", c.Name(), err)
		}
		colls = append(colls, c)
	}

	c, err := newCluster(reg, bin, work, srv.KafkaAddr, "chaos")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		if err := c.start(n); err != nil {
			t.Fatal(err)
		}
	}
	var leader *node
	clusterapi.WaitFor(t, 60*time.Second, "a leader", func() (bool, string) {
		var err error
		leader, _, err = c.view()
		return err == nil, fmt.Sprint(err)
	})
	t.Logf("leader %s after %s", leader.id, time.Since(t0).Round(time.Millisecond))

	prefix := func(conn string) string { return strings.ReplaceAll(conn, "-", "_") }
	topicsOf := map[string][]string{}
	var topics []string
	for i, name := range connectors {
		config := clusterapi.ConnectorConfig(srv.MongoURI, db, prefix(name), shards)
		config["shard.filter"] = "client" // the stand-in lacks $toHashedIndexKey
		config["exactly.once"] = fmt.Sprint(*exactlyOnce)
		addr := leader.http
		if i == 1 {
			addr = c.nodes[(slices.Index(c.nodes, leader)+1)%len(c.nodes)].http // through a follower
		}
		if err := createConnector(ctx, addr, name, config); err != nil {
			t.Fatal(err)
		}
		for j := range collections {
			topicsOf[name] = append(topicsOf[name], fmt.Sprintf("%s.%s.c%d", prefix(name), db, j))
		}
		topics = append(topics, topicsOf[name]...)
	}
	tasks := len(connectors) * collections * shards
	if _, err := c.settled(ctx, connectors, tasks, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("all %d tasks RUNNING after %s", tasks, time.Since(t0).Round(time.Millisecond))

	cons, err := newConsumer(srv.KafkaAddr, topics)
	if err != nil {
		t.Fatal(err)
	}
	consCtx, stopConsuming := context.WithCancel(ctx)
	defer stopConsuming()
	go cons.run(consCtx)

	// Warm-up: documents outside the verified ids until every task has written a record, then
	// time for every task to commit an offset (heartbeat.interval.ms=1000): from here on no
	// change may be lost, whatever happens to the nodes.
	for i := 0; cons.tasksSeen() < tasks; i++ {
		if time.Since(t0) > 5*time.Minute {
			t.Fatalf("only %d of %d tasks wrote a record during the warm-up", cons.tasksSeen(), tasks)
		}
		for _, coll := range colls {
			if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("warm-%d", i)}}); err != nil {
				t.Fatalf("warm-up insert: %v", err)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	t.Logf("every task streaming after %s", time.Since(t0).Round(time.Millisecond))

	// The writer and the fault schedule, both from the seed.
	w := newWriter(colls, *idsFlag, *seed)
	sched := &schedule{c: c, rng: rand.New(rand.NewPCG(*seed, 0x6661756c74)), every: *killEvery,
		taskOf: func(conn, task string) string {
			ns, sh, _ := strings.Cut(task, "#")
			return prefix(conn) + "." + ns + "#" + sh
		}}
	writeStart := time.Now()
	written := make(chan struct{})
	var faults []fault
	var faultErr error
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		faults, faultErr = sched.run(ctx, writeStart, written)
	}()
	if err := w.run(ctx, *opsFlag, *duration); err != nil {
		t.Fatal(err)
	}
	close(written)
	writeTook := time.Since(writeStart)
	<-faultsDone
	if faultErr != nil {
		t.Fatalf("fault schedule: %v", faultErr)
	}
	t.Logf("writer: %d operations acknowledged in %s (%d insert, %d update, %d replace, %d delete), %d documents left unverified after a failed write",
		w.log.applied, writeTook.Round(time.Millisecond), w.log.perKind[opInsert], w.log.perKind[opUpdate], w.log.perKind[opReplace], w.log.perKind[opDelete], len(w.log.poisoned))
	if _, err := c.settled(ctx, connectors, tasks, 90*time.Second); err != nil {
		t.Fatalf("after the faults: %v", err)
	}

	// Drain: decode what arrives until every connector has every change, or nothing new has
	// come for 20 s.
	dec, err := newDecoder(c.registryURLs())
	if err != nil {
		t.Fatal(err)
	}
	f := &feed{dec: dec, events: map[string]map[string][]event{}, last: time.Now()}
	ignore := func(id string) bool { return id == "seed" || strings.HasPrefix(id, "warm-") }
	verdicts := map[string]tally{}
	drainStart := time.Now()
	for {
		if err := f.add(ctx, cons.since(f.done)); err != nil {
			t.Fatal(err)
		}
		complete := true
		for _, name := range connectors {
			verdicts[name] = verify(w.log, topicsOf[name], f.events, ignore)
			complete = complete && verdicts[name].lost == 0
		}
		if complete || time.Since(f.last) > 20*time.Second || time.Since(drainStart) > 3*time.Minute {
			break
		}
		time.Sleep(time.Second)
	}
	stopConsuming()
	t.Logf("drained in %s (%d records consumed)", time.Since(drainStart).Round(time.Millisecond), f.done)

	// The report.
	recs := cons.since(0)
	var took []time.Duration
	kills, pauses := 0, 0
	for i, fl := range faults {
		until := time.Now()
		if i+1 < len(faults) {
			until = faults[i+1].at
		}
		line, d, moved := describe(recs, fl, until, writeStart)
		t.Log("fault " + line)
		if fl.kind == "kill -9" {
			kills++
		} else {
			pauses++
		}
		if moved {
			took = append(took, d)
		}
	}
	t.Logf("faults: %d kill -9, %d SIGSTOP; failovers: %d, %s", kills, pauses, len(took), spread(took))
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
	t.Logf("run took %s", time.Since(t0).Round(time.Second))
}

// spread is min/median/max of durations.
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	slices.Sort(ds)
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("min %s, median %s, max %s", r(ds[0]), r(ds[len(ds)/2]), r(ds[len(ds)-1]))
}
