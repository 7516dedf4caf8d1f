// Command benchrun is the harness behind `make bench` (DESIGN.md 11): on one private Kafka
// broker and one MongoDB stand-in it pre-loads each workload once, then lets every system read
// the same events, one system at a time, and writes the figures to bench/results/<date>.md.
//
// Systems: ceiling-a (the Go driver alone reading the change stream), ceiling-b (franz-go alone
// producing the same records), ceiling-ab (both at once: raw change events piped to Kafka),
// relay-1 and relay-4 (mongorelay standalone, 1 task and 4 shards), relay-1-alo (relay-1 with
// exactly.once=false), relay-1-tls (relay-1 through a SASL_SSL-only broker, SCRAM over TLS),
// mkc-json and mkc-schema (the MongoDB Kafka Connector, schema-less JSON and inferred schemas as
// JSON with schemas), dbz-json (Debezium's MongoDB connector), the last three on Apache Kafka
// Connect in distributed mode; ceiling-bulk (the Go driver alone writing the sink workload's
// documents). Workloads: insert, mix, copy, latency, and sink (Kafka → MongoDB: mongorelay's
// sink and the MongoDB Kafka Connector's). See bench/README.md.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mongorelay/mongorelay/internal/kafkaconn"
	"github.com/mongorelay/mongorelay/internal/proc"
	"github.com/mongorelay/mongorelay/internal/testservers"
)

type config struct {
	root, work, peersDir, results string
	// resultsPath, when set, names a file that receives the path of the results file written,
	// so that bench/run.sh appends the failover figures to the same file.
	resultsPath                   string
	relayBin, ceilingBin, profBin string
	// baseline is an older mongorelay binary run as baseSystem, alternated with relay-1; "" for
	// none.
	baseline string

	events         int
	copyEvents     int
	budget         time.Duration
	systems        []string
	workloads      []string
	latencyRate    int
	latencySeconds int
	latencyWarmup  time.Duration
	runTimeout     time.Duration
	repeat         int
	latencyRepeat  int
	seed           uint64

	kafkaHeap, standinHeap string
	oplogEntries           int

	microbench     bool
	microbenchTime string
	profile        bool
}

var allSystems = []string{"ceiling-a", "relay-1", aloSystem, tlsSystem, dbSystem, "relay-4", "ceiling-b", "ceiling-ab", "mkc-json", "mkc-schema", "dbz-json", "ceiling-bulk"}
var allWorkloads = []string{"insert", "mix", "copy", collsWorkload, "latency", "sink"}

// collsWorkload spreads inserts over collsCount collections of one database: it compares
// capture.scope=collection (relay-1, one task and stream per collection) with database
// (dbSystem, one of each), and only those two measure it.
const (
	collsWorkload = "colls"
	collsCount    = 50
)

// measures reports whether system sys measures workload wl: the sink workload only the
// sinkSystems, the colls workload only relay-1 and dbSystem, and ceiling-bulk nothing else.
func measures(sys, wl string) bool {
	switch {
	case wl == "sink":
		return slices.Contains(sinkSystems, sys)
	case sys == "ceiling-bulk":
		return false
	case wl == collsWorkload || sys == dbSystem:
		return wl == collsWorkload && (sys == "relay-1" || sys == dbSystem)
	}
	return true
}

// relay-1's variants: each runs exactly as relay-1 but for one difference, alternately with it
// when both run (see alternates), and is compared with it (see comparisons).
const (
	// baseSystem is relay-1 run with the -baseline binary. It is not chosen with -systems: it
	// comes with relay-1.
	baseSystem = "relay-1-base"
	// aloSystem is relay-1 with exactly.once=false (at-least-once) in its connector config.
	aloSystem = "relay-1-alo"
	// tlsSystem is relay-1 writing to the run's second broker, whose only listener is
	// SASL_SSL, as SCRAM-SHA-512 user over TLS.
	tlsSystem = "relay-1-tls"
	// dbSystem is relay-1 with capture.scope=database: one stream for the database's
	// collections. It measures collsWorkload only.
	dbSystem = "relay-1-db"
)

var relayVariants = []string{baseSystem, aloSystem, tlsSystem, dbSystem}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchrun: %v\n", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func parseFlags() (*config, error) {
	c := &config{}
	wd, _ := os.Getwd()
	flag.StringVar(&c.root, "root", wd, "repository root")
	flag.StringVar(&c.work, "work", "", "work directory (default <root>/.cache/bench/run)")
	flag.StringVar(&c.peersDir, "peers", "", "Kafka Connect jars and plugins (default <root>/.cache/bench/peers)")
	flag.StringVar(&c.results, "results", "", "results directory (default <root>/bench/results)")
	flag.StringVar(&c.resultsPath, "results-path", "", "write the path of the results file written to this file")
	flag.StringVar(&c.relayBin, "mongorelay", "", "mongorelay binary (default <root>/bin/mongorelay)")
	flag.StringVar(&c.ceilingBin, "ceiling", "", "ceiling binary (default <root>/.cache/bench/bin/ceiling)")
	flag.StringVar(&c.profBin, "relayprof", "", "relayprof binary (default <root>/.cache/bench/bin/relayprof)")
	flag.StringVar(&c.baseline, "baseline", "", "an older mongorelay binary: run as "+baseSystem+", exactly as relay-1 and alternately with it, and compared with it (bench/README.md)")
	flag.IntVar(&c.events, "events", 200_000, "events per workload (the same count for every system)")
	flag.IntVar(&c.copyEvents, "copy-events", 0, "documents of the copy workload (default -events: the insert workload's collection)")
	flag.DurationVar(&c.budget, "budget", 45*time.Minute, "stop starting runs once the harness has run this long (what is left is reported as skipped)")
	systems := flag.String("systems", strings.Join(allSystems, ","), "systems to run, in this order")
	workloads := flag.String("workloads", strings.Join(allWorkloads, ","), "workloads to run")
	flag.IntVar(&c.latencyRate, "latency-rate", 5000, "latency workload: inserts per second")
	flag.IntVar(&c.latencySeconds, "latency-seconds", 10, "latency workload: seconds of paced inserts")
	flag.DurationVar(&c.latencyWarmup, "latency-warmup", 2*time.Second, "latency workload: leading time left out of the percentiles")
	flag.DurationVar(&c.runTimeout, "run-timeout", 0, "give up on one system's run after this long (default 60s + 1 ms per event)")
	flag.IntVar(&c.repeat, "repeat", 5, "runs of the ceilings and mongorelay per throughput workload (the median is kept; the peers run once)")
	flag.IntVar(&c.latencyRepeat, "latency-repeat", 5, "runs of the ceilings and mongorelay on the latency workload (the run of median p50 is kept; the peers run once)")
	seed := flag.Uint64("seed", 1, "workload seed")
	flag.StringVar(&c.kafkaHeap, "kafka-heap", "1g", "Kafka broker heap (deploy/local/env.sh uses 1g)")
	flag.StringVar(&c.standinHeap, "standin-heap", "8g", "MongoDB stand-in heap: every workload's documents and oplog stay in it")
	flag.IntVar(&c.oplogEntries, "oplog-entries", 5_000_000, "stand-in oplog bound (must hold every workload)")
	flag.BoolVar(&c.microbench, "microbench", true, "run the hot-path Go micro-benchmarks first")
	flag.StringVar(&c.microbenchTime, "microbench-time", "300ms", "-benchtime of the micro-benchmarks")
	flag.BoolVar(&c.profile, "profile", true, "profile mongorelay (in-process CPU profile) on the insert workload")
	flag.Parse()
	c.seed = *seed
	def := func(p *string, rel string) {
		if *p == "" {
			*p = filepath.Join(c.root, rel)
		}
	}
	def(&c.work, ".cache/bench/run")
	def(&c.peersDir, ".cache/bench/peers")
	def(&c.results, "bench/results")
	def(&c.relayBin, "bin/mongorelay")
	def(&c.ceilingBin, ".cache/bench/bin/ceiling")
	def(&c.profBin, ".cache/bench/bin/relayprof")
	c.systems = splitList(*systems)
	c.workloads = splitList(*workloads)
	for _, s := range c.systems {
		if !contains(allSystems, s) {
			return nil, fmt.Errorf("unknown system %q: choose from %s", s, strings.Join(allSystems, ","))
		}
	}
	for _, w := range c.workloads {
		if !contains(allWorkloads, w) {
			return nil, fmt.Errorf("unknown workload %q: choose from %s", w, strings.Join(allWorkloads, ","))
		}
	}
	if c.baseline != "" {
		i := slices.Index(c.systems, "relay-1")
		if i < 0 {
			return nil, errors.New("-baseline is compared with relay-1: add relay-1 to -systems")
		}
		if _, err := os.Stat(c.baseline); err != nil {
			return nil, fmt.Errorf("-baseline: %w", err)
		}
		c.systems = slices.Insert(c.systems, i+1, baseSystem)
	}
	if c.events < 1000 {
		return nil, errors.New("-events must be at least 1000")
	}
	if c.copyEvents == 0 {
		c.copyEvents = c.events
	}
	if c.runTimeout == 0 {
		c.runTimeout = 60*time.Second + time.Duration(c.events)*time.Millisecond
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// runner holds what every measurement shares.
type runner struct {
	cfg      *config
	deadline time.Time // of -budget
	reg      *proc.Registry
	srv      *testservers.Servers
	// main is the stand-in every source workload but latency reads: its oplog holds them all.
	main *standin
	// latency is the latency workload's, whose oplog need hold only the run under way; sinkTarget
	// the sink workload's target. Each is nil when its workload does not run.
	latency, sinkTarget *standin
	plain               *broker // the broker of every system but tlsSystem
	secure              *broker // tlsSystem's, SASL_SSL only; nil when it does not run
	loads               map[string]*prepared
	results             []*measurement // the median run of each system and workload
	runs                []*measurement // every run, in the order made
	notes               []string
	// relay4 is "" until relay-4 ran once; then "available" or why not.
	relay4 string
	micro  string
	prof   *profileResult
	// sinkBytes is the size of the sink workload's record values.
	sinkBytes int64
}

func run(ctx context.Context) error {
	started := time.Now()
	cfg, err := parseFlags()
	if err != nil {
		return err
	}
	if err := os.RemoveAll(cfg.work); err != nil {
		return err
	}
	for _, d := range []string{cfg.work, cfg.results} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	reg := proc.NewRegistry(filepath.Join(cfg.work, "pids"))
	defer reg.StopAll(20 * time.Second)
	r := &runner{cfg: cfg, reg: reg, loads: map[string]*prepared{}, deadline: started.Add(cfg.budget)}
	logf("%d events per workload; systems %s; workloads %s; %d cores",
		cfg.events, strings.Join(cfg.systems, ","), strings.Join(cfg.workloads, ","), runtime.NumCPU())

	// The micro-benchmarks run before any server starts: nothing else of ours competes.
	if cfg.microbench {
		r.micro = runMicrobench(ctx, cfg)
	}
	if r.srv, err = startServers(ctx, cfg, reg); err != nil {
		return err
	}
	if r.main, err = connectStandin(r.srv.Standin, r.srv.MongoURI); err != nil {
		return err
	}
	defer r.main.close(ctx)
	if s, ok := r.srv.More[latencyStandin]; ok {
		if r.latency, err = connectStandin(s.Proc, s.URI); err != nil {
			return err
		}
		defer r.latency.close(ctx)
	}
	if s, ok := r.srv.More[sinkStandin]; ok {
		if r.sinkTarget, err = connectStandin(s.Proc, s.URI); err != nil {
			return err
		}
		defer r.sinkTarget.close(ctx)
	}
	if r.plain, err = newBroker(r.srv.Kafka, r.srv.KafkaAddr, kafkaconn.Security{EndpointAlgorithm: "https"}); err != nil {
		return err
	}
	defer r.plain.close()
	if r.srv.Secure != nil {
		if r.secure, err = secureBroker(r.srv.Secure); err != nil {
			return err
		}
		defer r.secure.close()
	}

	err = r.measureAll(ctx)
	if err != nil {
		r.notes = append(r.notes, "The run stopped early: "+err.Error())
		logf("stopped early: %v", err)
	}
	path, werr := r.writeResults(started)
	if werr != nil {
		return errors.Join(err, werr)
	}
	if cfg.resultsPath != "" {
		if werr := os.WriteFile(cfg.resultsPath, []byte(path+"\n"), 0o644); werr != nil {
			return errors.Join(err, fmt.Errorf("recording the results path: %w", werr))
		}
	}
	for _, v := range r.variants() {
		for _, line := range r.comparison(v) {
			logf("%s", line)
		}
	}
	logf("results in %s (%.0f s in all)", path, time.Since(started).Seconds())
	return err
}

func (r *runner) wants(workload string) bool { return contains(r.cfg.workloads, workload) }

// measureAll pre-loads every workload, then runs each system through every workload.
func (r *runner) measureAll(ctx context.Context) error {
	cfg := r.cfg
	if r.wants("insert") || (r.wants("copy") && cfg.copyEvents == cfg.events) {
		logf("pre-loading the insert workload (%d documents)", cfg.events)
		p, err := preloadInserts(ctx, r.main.db, "ins", cfg.events, cfg.seed)
		if err != nil {
			return err
		}
		logf("  %.1f s (%.0f docs/s)", p.preload.Seconds(), float64(cfg.events)/p.preload.Seconds())
		r.loads["insert"] = p
		if r.wants("copy") && cfg.copyEvents == cfg.events {
			if r.loads["copy"], err = prepareCopy(ctx, r.main.db, p, "the insert workload's collection"); err != nil {
				return err
			}
		}
	}
	if r.wants("copy") && cfg.copyEvents != cfg.events {
		logf("pre-loading the copy workload (%d documents)", cfg.copyEvents)
		p, err := preloadInserts(ctx, r.main.db, "cp", cfg.copyEvents, cfg.seed+2000)
		if err != nil {
			return err
		}
		if r.loads["copy"], err = prepareCopy(ctx, r.main.db, p, fmt.Sprintf("a collection of %d inserted documents", cfg.copyEvents)); err != nil {
			return err
		}
	}
	if r.wants("mix") {
		logf("pre-loading the mix workload (%d operations)", cfg.events)
		p, err := preloadMix(ctx, r.main.db, cfg.events, cfg.seed+1000)
		if err != nil {
			return err
		}
		logf("  %.1f s (%.0f ops/s)", p.preload.Seconds(), float64(cfg.events)/p.preload.Seconds())
		r.loads["mix"] = p
	}
	if r.wants(collsWorkload) {
		logf("pre-loading the %s workload (%d documents over %d collections)", collsWorkload, cfg.events, collsCount)
		p, err := preloadCollections(ctx, r.main.db, collsCount, cfg.events, cfg.seed+3000)
		if err != nil {
			return err
		}
		logf("  %.1f s (%.0f docs/s)", p.preload.Seconds(), float64(cfg.events)/p.preload.Seconds())
		r.loads[collsWorkload] = p
	}
	if r.wants("latency") {
		n := int64(cfg.latencyRate * cfg.latencySeconds)
		r.loads["latency"] = &prepared{name: "latency", coll: "lat", expected: n,
			preloadNote: fmt.Sprintf("none: each system starts streaming from now, then %d inserts are written at %d/s", n, cfg.latencyRate)}
	}
	if r.wants("sink") {
		logf("pre-loading the sink workload (%d records)", cfg.events)
		p, err := r.preloadSink(ctx)
		if err != nil {
			return err
		}
		logf("  %.1f s", p.preload.Seconds())
		r.loads["sink"] = p
	}
	if err := r.warmUp(ctx); err != nil {
		return err
	}
	for _, sys := range cfg.systems {
		if slices.Contains(relayVariants, sys) && slices.Contains(cfg.systems, "relay-1") {
			continue // measured with relay-1, run by run
		}
		if err := r.measureSystem(ctx, sys); err != nil {
			return err
		}
	}
	if cfg.profile && r.wants("insert") {
		if time.Now().After(r.deadline) {
			r.notes = append(r.notes, "The CPU profile was skipped: the time budget (-budget) was used up.")
		} else {
			r.prof = r.profileRelay(ctx)
		}
	}
	return nil
}

// measureSystem runs one system, and those alternated with it, through the workloads. A system
// that fails is recorded and the run goes on; only a cancelled run stops here.
func (r *runner) measureSystem(ctx context.Context, sys string) error {
	var worker *connectWorker
	if (strings.HasPrefix(sys, "mkc-") || strings.HasPrefix(sys, "dbz-")) && time.Now().Before(r.deadline) {
		logf("%s: starting a Kafka Connect worker", sys)
		t0 := time.Now()
		w, err := startConnect(ctx, r.cfg, r.reg, sys, r.srv.KafkaAddr)
		if err != nil {
			for _, wl := range r.cfg.workloads {
				r.record(&measurement{system: sys, workload: wl, status: "worker did not start: " + err.Error()})
			}
			if w != nil {
				w.p.Stop(20 * time.Second)
			}
			return ctx.Err()
		}
		logf("%s: worker up in %.1f s", sys, time.Since(t0).Seconds())
		worker = w
		defer w.p.Stop(30 * time.Second)
	}
	for _, wl := range allWorkloads {
		if !r.wants(wl) {
			continue
		}
		// The quick systems run several times and keep the median: one run of a second or
		// two is at the mercy of whatever else the machine does at that moment.
		reps := 1
		if (wl == "sink" || sys == "ceiling-bulk") && !measures(sys, wl) {
			r.record(&measurement{system: sys, workload: wl, status: notApplicable + map[bool]string{
				true: "a sink workload", false: "a source workload"}[wl == "sink"]})
			continue
		}
		if !strings.HasPrefix(sys, "mkc-") && !strings.HasPrefix(sys, "dbz-") {
			reps = max(1, r.cfg.repeat)
			if wl == "latency" {
				reps = max(1, r.cfg.latencyRepeat)
			}
		}
		group := r.alternates(sys)
		runs := make([][]*measurement, len(group))
		for rep := range reps {
			for i, s := range group {
				if n := len(runs[i]); (n > 0 && runs[i][n-1].final()) || !measures(s, wl) {
					continue
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				runs[i] = append(runs[i], r.runOnce(ctx, s, wl, rep, reps, worker))
			}
		}
		for _, sr := range runs {
			if len(sr) == 0 {
				continue // the workload is not the system's
			}
			r.runs = append(r.runs, sr...)
			r.results = append(r.results, median(sr))
		}
	}
	return ctx.Err()
}

// alternates returns the systems measured together with sys, one run of each in turn: relay-1
// and those of its variants that run, so that whatever else the machine does during the runs
// weighs on all alike.
func (r *runner) alternates(sys string) []string {
	group := []string{sys}
	if sys == "relay-1" {
		for _, v := range relayVariants {
			if slices.Contains(r.cfg.systems, v) {
				group = append(group, v)
			}
		}
	}
	return group
}

// runOnce makes run rep (from 0) of reps of sys on wl, or records it as skipped once the
// budget is used up.
func (r *runner) runOnce(ctx context.Context, sys, wl string, rep, reps int, worker *connectWorker) *measurement {
	m := &measurement{system: sys, workload: wl, rep: rep, expected: r.loads[wl].expected}
	if time.Now().After(r.deadline) {
		m.status = fmt.Sprintf("skipped: the harness had used its time budget (-budget %s)", r.cfg.budget)
		logResult(m)
		return m
	}
	logf("%s / %s: %d events%s", sys, wl, m.expected, map[bool]string{true: fmt.Sprintf(" (run %d of %d)", rep+1, reps)}[reps > 1])
	r.measure(ctx, sys, wl, m, worker)
	logResult(m)
	return m
}

// median returns the run with the median events/s among those that completed, noting the
// others and any failed run; when none completed, the first failure.
func median(runs []*measurement) *measurement {
	var done []*measurement
	var failures []string
	for i, m := range runs {
		if m.ok() {
			done = append(done, m)
		} else {
			failures = append(failures, fmt.Sprintf("run %d: %s", i+1, firstLine(m.status)))
		}
	}
	if len(done) == 0 {
		return runs[0]
	}
	if len(runs) == 1 {
		return runs[0]
	}
	sorted := slices.Clone(done)
	var note string
	if done[0].lat != nil {
		// A latency run is ranked by its median latency: its events/s is the writers' pace.
		slices.SortFunc(sorted, func(a, b *measurement) int { return cmp.Compare(a.lat.p50, b.lat.p50) })
		var lats []string
		var p99s []float64
		for _, m := range done {
			lats = append(lats, fmt.Sprintf("%.1f/%.1f", ms(m.lat.p50), ms(m.lat.p99)))
			p99s = append(p99s, ms(m.lat.p99))
		}
		note = fmt.Sprintf("the run of median p50 of %d; the median p99 of the runs is %.1f ms (p50/p99 ms in run order: %s)",
			len(done), medianOf(p99s), strings.Join(lats, ", "))
	} else {
		slices.SortFunc(sorted, func(a, b *measurement) int { return cmp.Compare(a.eventsPerSec(), b.eventsPerSec()) })
		var rates []string
		for _, m := range done {
			rates = append(rates, fmt.Sprintf("%.0f", m.eventsPerSec()))
		}
		note = fmt.Sprintf("median of %d runs (events/s in run order: %s)", len(done), strings.Join(rates, ", "))
	}
	mid := sorted[len(sorted)/2]
	if len(failures) > 0 {
		note += "; " + strings.Join(failures, "; ")
	}
	if mid.note != "" {
		note += "; " + mid.note
	}
	mid.note = note
	return mid
}

// record keeps a measurement made outside the per-system loop.
func (r *runner) record(m *measurement) {
	r.results = append(r.results, m)
	logResult(m)
}

func logResult(m *measurement) {
	if m.status != "" {
		logf("  %s / %s: %s", m.system, m.workload, firstLine(m.status))
		return
	}
	if m.lat != nil {
		logf("  %s / %s: p50 %.1f ms, p99 %.1f ms (%d samples, %.0f writes/s)", m.system, m.workload,
			ms(m.lat.p50), ms(m.lat.p99), m.lat.n, m.lat.rate)
		return
	}
	logf("  %s / %s: %.0f events/s, %.1f MB/s, %.2f CPU-s, peak RSS %d MB", m.system, m.workload,
		m.eventsPerSec(), m.mbPerSec(), m.cpu.Seconds(), m.peakRSS>>20)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
