//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestChaos runs the whole harness: private servers, 3 nodes, 2 connectors, the seeded writer
// and fault schedule, then the verifier. It fails on any lost or reordered change, and on any
// duplicate with -exactly-once.
func TestChaos(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t.Logf("seed %d: %d operations on %d ids over %s, exactly.once=%v", *seed, *opsFlag, *idsFlag, *duration, *exactlyOnce)
	b := newBed(ctx, t, "chaos", 4**opsFlag)
	b.startCluster(ctx, t, b.srv.MongoURI, nil)

	// The writer and the fault schedule, both from the seed.
	w := newWriter(b.colls, *idsFlag, *seed)
	sched := &schedule{c: b.c, rng: rand.New(rand.NewPCG(*seed, 0x6661756c74)), every: *killEvery,
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
	if err := w.run(ctx, float64(*opsFlag)/duration.Seconds(), *opsFlag, nil); err != nil {
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
	if _, err := b.c.settled(ctx, connectors, b.tasks, 90*time.Second); err != nil {
		t.Fatalf("after the faults: %v", err)
	}
	verdicts := b.verifyAll(ctx, t, w.log, b.c.registryURLs())

	// The report.
	recs := b.cons.since(0)
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
	judge(t, verdicts)
	t.Logf("run took %s", time.Since(b.t0).Round(time.Second))
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
