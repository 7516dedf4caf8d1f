//go:build chaos

package chaos

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongorelay/mongorelay/e2e/internal/clusterapi"
	"github.com/mongorelay/mongorelay/e2e/internal/tcpproxy"
	"github.com/mongorelay/mongorelay/tasks/shard"
)

// recoveryBound is DESIGN.md 13's promise after an outage, the acceptance of issue 14: once
// the server is back, a new change of every task arrives within it, and every task is healthy
// within it, without anyone's help.
const recoveryBound = 30 * time.Second

// TestOutages takes, one after another, each server the tasks need away from the cluster
// while the seeded writer writes at a steady rate: the Kafka broker (stopped, restarted with
// its data), MongoDB (the nodes reach the stand-in only through a proxy the test cuts) and
// the external schema registry the connectors use (through a proxy too; meanwhile the writer
// adds a field, so every task must register a new schema version). After each outage it
// writes a probe document to every shard of every collection and measures, from the outage's
// end, the first and the last probe record downstream and the moment every task is RUNNING
// with neither trace nor degraded reason for good. No REST call changes anything once the
// connectors exist. It fails when a probe or the tasks' health takes longer than 30 s, and on
// what the verifier finds (as TestChaos).
func TestOutages(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	picked := strings.Split(*outageKeys, ",")
	for _, k := range picked {
		if !slices.Contains([]string{"kafka", "mongodb", "registry"}, k) {
			t.Fatalf("-outages: no outage %q (kafka, mongodb, registry)", k)
		}
	}
	t.Logf("seed %d: %.0f operations/s on %d ids, outages (%s) of %s, exactly.once=%v", *seed, *outageRate, *idsFlag, *outageKeys, *outageDown, *exactlyOnce)
	// The writer's operations over the longest run this schedule makes, 4 times over.
	b := newBed(ctx, t, "chaos-outages", int(4**outageRate*(outageCalm+3*(2**outageDown+recoveryBound)).Seconds()))

	mongoProxy := startProxy(t, b.srv.MongoAddr)
	rc, err := newCluster(b.reg, b.bin, b.work, b.srv.KafkaAddr, "chaos-registry", "r", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.start(rc.nodes[0]); err != nil {
		t.Fatal(err)
	}
	clusterapi.WaitFor(t, 60*time.Second, "the registry node leads", func() (bool, string) {
		_, _, err := rc.view()
		return err == nil, fmt.Sprint(err)
	})
	registryURL := "http://" + rc.nodes[0].registry // the test's own way in: never cut
	registryProxy := startProxy(t, rc.nodes[0].registry)
	b.startCluster(ctx, t, "mongodb://"+mongoProxy.Addr()+"/?directConnection=true",
		map[string]string{"schema.registry.url": "http://" + registryProxy.Addr()})
	dec, err := newDecoder(registryURL)
	if err != nil {
		t.Fatal(err)
	}

	w := newWriter(b.colls, *idsFlag, *seed)
	stopWriting := make(chan struct{})
	writerDone := make(chan error, 1)
	writeStart := time.Now()
	go func() {
		writerDone <- w.run(ctx, *outageRate, math.MaxInt, stopWriting)
	}()
	health := &healthLog{}
	sampling, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	go health.run(sampling, b.c, b.tasks)

	outages := []outage{
		{key: "kafka", name: "Kafka broker restart",
			begin: func(context.Context) error { b.srv.StopKafka(30 * time.Second); return nil },
			end:   b.srv.StartKafka},
		{key: "mongodb", name: "MongoDB connection cut",
			begin: func(context.Context) error { mongoProxy.Cut(); return nil },
			end:   func(context.Context) error { mongoProxy.Restore(); return nil }},
		{key: "registry", name: "registry unreachable",
			begin: func(context.Context) error { w.setField("x_registry_outage"); registryProxy.Cut(); return nil },
			end:   func(context.Context) error { registryProxy.Restore(); w.setField(""); return nil }},
	}
	outages = slices.DeleteFunc(outages, func(o outage) bool { return !slices.Contains(picked, o.key) })
	time.Sleep(outageCalm)
	var recs []recovery
	for i, o := range outages {
		r, err := o.inject(ctx, *outageDown)
		if err != nil {
			t.Fatalf("%s: %v", o.name, err)
		}
		t.Logf("%s at %s after the writer started: away after %s, brought back after %s, serving after %s", o.name,
			r.start.Sub(writeStart).Round(time.Millisecond), r.away.Sub(r.start).Round(time.Millisecond),
			r.back.Sub(r.start).Round(time.Millisecond), r.end.Sub(r.start).Round(time.Millisecond))
		if err := r.watchProbes(ctx, b, dec, i+1, recoveryBound); err != nil {
			t.Fatalf("%s: %v", o.name, err)
		}
		r.judgeHealth(health.between(r.start, time.Now()))
		recs = append(recs, r)
	}
	close(stopWriting)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	stopSampling()
	t.Logf("writer: %d operations acknowledged in %s (%d insert, %d update, %d replace, %d delete), %d documents left unverified after a failed write",
		w.log.applied, time.Since(writeStart).Round(time.Millisecond), w.log.perKind[opInsert], w.log.perKind[opUpdate], w.log.perKind[opReplace], w.log.perKind[opDelete], len(w.log.poisoned))
	if _, err := b.c.settled(ctx, connectors, b.tasks, 90*time.Second); err != nil {
		t.Errorf("after the outages: %v", err)
	}
	verdicts := b.verifyAll(ctx, t, w.log, registryURL)

	t.Logf("%-24s %7s  %-21s  %-21s  %s", "outage", "down", "→ first probe (a, b)", "→ all probes (a, b)", "→ all tasks healthy")
	for _, r := range recs {
		t.Log(r.row())
	}
	for _, r := range recs {
		if r.sick >= 0 {
			t.Logf("%s: last not all healthy %.1fs after its end: %s", r.name, r.sick.Seconds(), r.why)
		}
		t.Logf("%s: task states seen from its start to %s after its end (first seen, in how many task samples; numbers as N):", r.name, recoveryBound)
		for i, s := range r.seen {
			if i == maxSeen {
				t.Logf("  and %d more", len(r.seen)-maxSeen)
				break
			}
			t.Logf("  %s", s)
		}
		for _, p := range r.problems() {
			t.Errorf("%s: %s", r.name, p)
		}
	}
	judge(t, verdicts)
	t.Logf("run took %s", time.Since(b.t0).Round(time.Second))
}

// outageCalm is how long the writer runs before the first outage.
const outageCalm = 20 * time.Second

// startProxy starts a proxy to target that the test closes.
func startProxy(t *testing.T, target string) *tcpproxy.Proxy {
	p, err := tcpproxy.Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// outage is one server taken away from the nodes: begin takes it away, end brings it back and
// returns once it serves again.
type outage struct {
	key, name  string // key names it in -outages
	begin, end func(ctx context.Context) error
}

// inject takes the server away for down and brings it back.
func (o outage) inject(ctx context.Context, down time.Duration) (recovery, error) {
	r := recovery{name: o.name, start: time.Now()}
	if err := o.begin(ctx); err != nil {
		return r, fmt.Errorf("begin: %w", err)
	}
	r.away = time.Now()
	select {
	case <-ctx.Done():
		return r, ctx.Err()
	case <-time.After(down):
	}
	r.back = time.Now()
	if err := o.end(ctx); err != nil {
		return r, fmt.Errorf("end: %w", err)
	}
	r.end = time.Now()
	return r, nil
}

// recovery is what one outage did and how the cluster came back from it.
type recovery struct {
	name string
	// start is when begin was called, away when it returned, back when end was called, end
	// when it returned: when the server served again.
	start, away, back, end time.Time
	// probes are, per connector, each probe's first record's arrival after end, by topic and
	// _id: one per task (collection and shard), when none is missing by the end of the watch.
	probes map[string]map[string]time.Duration
	// healthy is when, after end, every task was RUNNING with neither trace nor degraded
	// reason from then to the end of the watch; negative when they were not at its end.
	healthy time.Duration
	// sick is when, after end, the tasks were last seen not all healthy, and why says why;
	// negative when they were healthy throughout.
	sick time.Duration
	why  string
	// seen are the task states other than healthy RUNNING seen from start to the end of the
	// watch, each with when it was first seen and in how many task samples.
	seen []string
}

// probeID is a probe's _id; the verifier ignores its documents.
func probeID(round, j int) string { return fmt.Sprintf("probe-%d-%d", round, j) }

// writeProbes inserts into each collection one document in each shard, and returns their ids
// by collection.
func writeProbes(ctx context.Context, colls []*mongo.Collection, round int) ([]map[string]bool, error) {
	ids := make([]map[string]bool, len(colls))
	for i, coll := range colls {
		ids[i] = map[string]bool{}
		covered := map[int]bool{}
		for j := 0; len(covered) < shards; j++ {
			id := probeID(round, j)
			typ, data, err := bson.MarshalValue(id)
			if err != nil {
				return nil, err
			}
			sh, err := shard.ForID(bson.RawValue{Type: typ, Value: data}, shards)
			if err != nil {
				return nil, err
			}
			if covered[sh] {
				continue
			}
			covered[sh] = true
			if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
				return nil, fmt.Errorf("probe %s in %s: %w", id, coll.Name(), err)
			}
			ids[i][id] = true
		}
	}
	return ids, nil
}

// watchProbes writes the probes of round after the outage's end and follows what arrives
// until bound after that end.
func (r *recovery) watchProbes(ctx context.Context, b *bed, dec *decoder, round int, bound time.Duration) error {
	from := b.cons.count()
	ids, err := writeProbes(ctx, b.colls, round)
	if err != nil {
		return err
	}
	r.probes = map[string]map[string]time.Duration{}
	collOf := map[string]int{} // topic → collection index
	connOf := map[string]string{}
	for _, name := range connectors {
		r.probes[name] = map[string]time.Duration{}
		for i, topic := range b.topicsOf[name] {
			collOf[topic], connOf[topic] = i, name
		}
	}
	for time.Now().Before(r.end.Add(bound)) {
		recs := b.cons.since(from)
		from += len(recs)
		for _, rec := range recs {
			if rec.Value == nil {
				continue
			}
			id, err := dec.id(ctx, rec)
			if err != nil {
				return err
			}
			arrived, k := r.probes[connOf[rec.Topic]], rec.Topic+"/"+id
			if _, again := arrived[k]; ids[collOf[rec.Topic]][id] && !again {
				arrived[k] = rec.At.Sub(r.end)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// judgeHealth reads the health samples from the outage's start to the end of its watch.
func (r *recovery) judgeHealth(samples []healthSample) {
	type note struct {
		first time.Duration
		n     int
	}
	notes := map[string]*note{}
	r.healthy, r.sick = -1, -1
	for _, s := range samples {
		for _, n := range s.notes {
			if notes[n] == nil {
				notes[n] = &note{first: s.at.Sub(r.start)}
			}
			notes[n].n++
		}
		switch {
		case s.at.Before(r.end):
		case s.why != "":
			r.healthy, r.sick, r.why = -1, s.at.Sub(r.end), s.why
		case r.healthy < 0:
			r.healthy = s.at.Sub(r.end)
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(notes), func(a, b string) int { return cmp.Compare(notes[a].first, notes[b].first) }) {
		r.seen = append(r.seen, fmt.Sprintf("+%5.1fs ×%-3d %s", notes[k].first.Seconds(), notes[k].n, k))
	}
	if len(r.seen) == 0 {
		r.seen = []string{"every task RUNNING without trace throughout"}
	}
}

// row is the outage's line of the table.
func (r *recovery) row() string {
	pair := func(pick func([]time.Duration) string) string {
		var out []string
		for _, name := range connectors {
			out = append(out, pick(slices.Collect(maps.Values(r.probes[name]))))
		}
		return strings.Join(out, ", ")
	}
	first := pair(func(ds []time.Duration) string {
		if len(ds) == 0 {
			return "none"
		}
		return fmt.Sprintf("%.1fs", slices.Min(ds).Seconds())
	})
	all := pair(func(ds []time.Duration) string {
		if len(ds) < collections*shards {
			return fmt.Sprintf("%d of %d", len(ds), collections*shards)
		}
		return fmt.Sprintf("%.1fs", slices.Max(ds).Seconds())
	})
	healthy := "not by the end"
	if r.healthy >= 0 {
		healthy = fmt.Sprintf("%.1fs", r.healthy.Seconds())
	}
	return fmt.Sprintf("%-24s %6.1fs  %-21s  %-21s  %s", r.name, r.end.Sub(r.start).Seconds(), first, all, healthy)
}

// problems are the ways the recovery missed recoveryBound.
func (r *recovery) problems() []string {
	var out []string
	for _, name := range connectors {
		ds := r.probes[name]
		if len(ds) < collections*shards {
			out = append(out, fmt.Sprintf("%s: %d of %d probes arrived within %s", name, len(ds), collections*shards, recoveryBound))
		}
	}
	if r.healthy < 0 || r.healthy > recoveryBound {
		out = append(out, fmt.Sprintf("tasks not all healthy within %s: %s", recoveryBound, r.why))
	}
	return out
}

// healthLog samples the tasks' health twice a second.
type healthLog struct {
	mu      sync.Mutex
	samples []healthSample
}

// healthSample is the tasks' health at one moment.
type healthSample struct {
	at time.Time
	// why is "" when every task is RUNNING with neither trace nor degraded reason, else the
	// first reason it is not so.
	why string
	// notes say what each task that is not so is: state, degraded reason, trace, with their
	// numbers as N, so that the samples of one condition read alike.
	notes []string
}

// run samples the health of c's tasks of every connector until ctx ends.
func (h *healthLog) run(ctx context.Context, c *cluster, tasks int) {
	for {
		s := healthSample{at: time.Now()}
		_, sts, err := c.statuses(connectors)
		if err != nil {
			s.why = err.Error()
			s.notes = []string{anyNumber.ReplaceAllString("status unknown: "+oneLine(err.Error()), "N")}
		} else {
			s.why, s.notes = healthOf(sts, tasks)
		}
		h.mu.Lock()
		h.samples = append(h.samples, s)
		h.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// between returns the samples taken from from to to.
func (h *healthLog) between(from, to time.Time) []healthSample {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []healthSample
	for _, s := range h.samples {
		if !s.at.Before(from) && !s.at.After(to) {
			out = append(out, s)
		}
	}
	return out
}

// healthOf judges the statuses of all tasks.
func healthOf(sts []clusterapi.ConnectorStatus, tasks int) (why string, notes []string) {
	n := 0
	for _, st := range sts {
		for _, task := range st.Tasks {
			n++
			if task.State == "RUNNING" && task.Trace == "" && task.Degraded == "" {
				continue
			}
			note := task.State
			if task.Degraded != "" {
				note += " degraded: " + oneLine(task.Degraded)
			}
			if task.Trace != "" {
				note += ": " + oneLine(task.Trace)
			}
			notes = append(notes, anyNumber.ReplaceAllString(note, "N"))
			if why == "" {
				why = fmt.Sprintf("%s task %d on %s is %s", st.Name, task.ID, task.WorkerID, note)
			}
		}
	}
	if why == "" && n != tasks {
		why = fmt.Sprintf("%d of %d tasks", n, tasks)
	}
	return why, notes
}

// anyNumber matches the numbers of a note: counts, durations, ports, attempts.
var anyNumber = regexp.MustCompile(`[0-9]+`)

// maxSeen bounds the task states listed per outage.
const maxSeen = 16

// oneLine is the first line of a trace or reason, at most 240 bytes.
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 240 {
		s = s[:240] + "…"
	}
	return s
}

// TestOutageRecoveryIsTimedFromTheLastHealthyStreak checks judgeHealth on hand-made samples:
// the tasks count as healthy from the first sample of the healthy streak that lasts to the
// end of the watch, and a blip after the end starts the streak again.
func TestOutageRecoveryIsTimedFromTheLastHealthyStreak(t *testing.T) {
	start := time.Now()
	end := start.Add(30 * time.Second)
	sample := func(after time.Duration, why string) healthSample {
		s := healthSample{at: end.Add(after), why: why}
		if why != "" {
			s.notes = []string{why}
		}
		return s
	}
	for _, tc := range []struct {
		name          string
		samples       []healthSample
		healthy, sick time.Duration // -1: none
	}{
		{"healthy throughout", []healthSample{sample(-10*time.Second, ""), sample(time.Second, ""), sample(2*time.Second, "")}, time.Second, -1},
		{"unhealthy during the outage only", []healthSample{sample(-time.Second, "down"), sample(time.Second, "")}, time.Second, -1},
		{"healthy some time after the end", []healthSample{sample(time.Second, "down"), sample(2*time.Second, "down"), sample(3*time.Second, "")}, 3 * time.Second, 2 * time.Second},
		{"a blip after the end", []healthSample{sample(time.Second, ""), sample(5*time.Second, "slow"), sample(6*time.Second, "")}, 6 * time.Second, 5 * time.Second},
		{"unhealthy at the end of the watch", []healthSample{sample(time.Second, ""), sample(29*time.Second, "down")}, -1, 29 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := recovery{start: start, end: end}
			r.judgeHealth(tc.samples)
			if r.healthy != tc.healthy || r.sick != tc.sick {
				t.Errorf("healthy %s, sick %s; want %s, %s", r.healthy, r.sick, tc.healthy, tc.sick)
			}
		})
	}
}
