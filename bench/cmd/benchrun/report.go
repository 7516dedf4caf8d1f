package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mongorelay/mongorelay/bench/internal/procstat"
)

// writeResults appends this run to bench/results/<date>.md and returns its path.
func (r *runner) writeResults(started time.Time) (string, error) {
	cfg := r.cfg
	path := filepath.Join(cfg.results, started.Format("2006-01-02")+".md")
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p("\n## Run of %s: %d events per workload\n\n", started.Format("2006-01-02 15:04 MST"), cfg.events)
	p("Total wall time of the harness: %.0f s (`make bench` adds the builds and downloads).\n\n", time.Since(started).Seconds())
	p("### Setup\n\n")
	for _, line := range r.setupLines() {
		p("- %s\n", line)
	}
	p("\n### Method\n\n")
	p("- Each workload is written to MongoDB once; every system then reads the same events, one system at a time, on the same broker and stand-in (private to the run: own ports, empty at start); the latency workload's inserts go to a stand-in of their own, whose oplog need hold only the run under way.\n")
	p("- Start point of the streaming workloads: a marker document is inserted just before the pre-load and its change event read. mongorelay gets a stream offset at the marker's resume token written into a fresh offsets topic (with tasks/offsets, as a task would commit it), Debezium the same token set through Connect's `PATCH /connectors/{name}/offsets` on a connector created STOPPED, the MongoDB Kafka Connector `startup.mode=timestamp` at the marker's cluster time + 1 increment, ceiling A `resumeAfter` the token. So all read exactly the pre-loaded events.\n")
	p("- The clock starts when the system is started (process exec for mongorelay and the ceilings, connector create/resume for the Connect peers on an already running worker; ceiling B once its replay records are loaded) and stops when the %s-th record is readable by a read_committed consumer (franz-go) that counts records; ceiling A stops when it has read the last event. \"first\" is the time to the first record.\n", "N")
	p("- events/s = events ÷ that time (start-up included); \"events/s after first\" = the rate from the first record to the last (start-up left out); MB/s = the bytes of the records' keys and values as consumed (each system's own format) ÷ time; CPU = utime+stime of the measured process (mongorelay, the ceiling process, or the Connect worker JVM) over the window, from /proc/<pid>/stat; peak RSS = VmHWM from /proc/<pid>/status (for the Connect worker, reset through clear_refs before each connector, so it includes the heap the JVM kept from the workloads before it). stand-in / broker CPU = the servers' CPU over the same window, for context.\n")
	p("- Ceiling A = the Go driver alone reading the change stream (batch 2048, fullDocument updateLookup, as a mongorelay task) or, for the copy, the collection in _id order; ceiling B = franz-go alone producing relay-1's records of the same workload (loaded from relay-1's topic first, same key and value bytes) with mongorelay's producer settings (tasks.ProducerOpts, tasks.TxnMaxAge and tasks.TxnMaxBatches: transactional, committed once 250 ms old or 8 × 2,048 records, alternating between two transactional ids as a task does, linger 5 ms, no compression, mongorelay's default). Ceiling = min(A, B) events/s; the CPU ceiling is A+B. Ceiling AB = both libraries at once in one process: each raw change event (or document) produced as it is read, keyed by its documentKey (_id), in the same transactions, which also commit as soon as a server batch comes back short (caught up), as a task's do, with no envelope, Avro, registry or offsets: on 2 cores shared with both servers, the least a pipeline can do, so relay-1 ÷ ceiling AB is mongorelay's own cost.\n")
	p("- Latency: each system is started streaming from now; a probe document is written every 200 ms until one arrives downstream; then %d documents are inserted at %d/s by 8 writers, each carrying its send time in a string field (`~LT<unix ns>~`, found in the record bytes whatever the format). Latency = consumer receive time − send time; the first %s of sends are left out (warm-up). Ceiling A measures driver send → change event received, ceiling B producer send → consumer receive, ceiling AB send → consumer receive through the raw pipe (the latency ceiling). writes/s is the rate the writers achieved, delivered/s the rate records reached the consumer: a system delivering less than is written falls behind, and its latency is then queueing.\n",
		cfg.latencyRate*cfg.latencySeconds, cfg.latencyRate, cfg.latencyWarmup)
	p("- Ratios: \"÷ relay-1\" = the system's figure divided by mongorelay 1 task's; \"÷ ceiling\" = divided by the ceiling's.\n")

	for _, wl := range []string{"insert", "mix", "copy", collsWorkload} {
		if !r.wants(wl) {
			continue
		}
		p("\n### Workload %s\n\n%s.\n\n", wl, r.workloadLine(wl))
		r.throughputTable(&b, wl)
	}
	if r.wants("sink") {
		p("\n### Workload sink (Kafka → MongoDB)\n\n%s. Each system writes every document into a collection of its own; the clock stops when the collection holds them all. Ceiling = ceiling-bulk, the Go driver alone writing the same documents (parsed beforehand) with replaceOne upserts by _id in ordered bulk writes of 1,000, majority write concern. mongorelay: `mongodb-sink`, its defaults (replace-one upserts, bulk writes of up to 1,000, each partition's offset committed in a Kafka transaction after its bulk write). MongoDB Kafka Connector: its sink with JsonConverter (schemas.enable=false), ProvidedInValueStrategy ids, replace-one upserts, w=majority, 1 task. MB/s counts the JSON values.\n\n", r.workloadLine("sink"))
		r.throughputTable(&b, "sink")
	}
	if r.wants("latency") {
		p("\n### Workload latency\n\n%s; percentiles over the sends after the warm-up.\n\n", r.loads["latency"].preloadNote)
		r.latencyTable(&b)
	}
	for _, v := range r.variants() {
		p("\n### %s\n\n", v.title)
		p("%s %s runs alternately with relay-1 (relay-1, %[2]s, relay-1, …, %[3]d runs each per throughput workload, with any other variant in turn), so drift in the machine weighs on both alike; the medians are over every completed run, the difference is (%s − %s) ÷ %[5]s. %s\n\n",
			v.about, v.system, cfg.repeat, v.subject, v.reference, v.rule)
		for _, line := range r.comparison(v) {
			p("- %s\n", line)
		}
	}
	p("\n### Acceptance\n\n")
	for _, line := range r.acceptance() {
		p("- %s\n", line)
	}
	p("\n### Peers\n\n")
	r.peerSection(&b)
	if r.prof != nil {
		p("\n### CPU profile of mongorelay (relay-1, insert)\n\n")
		r.profileSection(&b)
	}
	if r.micro != "" {
		p("\n### Hot-path micro-benchmarks\n\n`go test -run '^$' -bench . -benchmem -benchtime %s ./tasks/avroschema/ ./tasks/envelope/ ./tasks/`, run before the servers start:\n\n```\n%s\n```\n", cfg.microbenchTime, r.micro)
	}
	if len(r.notes) > 0 {
		p("\n### Notes\n\n")
		for _, n := range r.notes {
			p("- %s\n", n)
		}
	}

	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if st, _ := f.Stat(); st != nil && st.Size() == 0 {
		fmt.Fprintf(f, "# Benchmark results, %s\n\nWritten by `make bench` (bench/cmd/benchrun); each run is appended.\n", started.Format("2006-01-02"))
	}
	_, err = f.WriteString(b.String())
	return path, err
}

func (r *runner) workloadLine(wl string) string {
	p := r.loads[wl]
	s := p.preloadNote
	if p.preload > 0 {
		s += fmt.Sprintf(", written in %.1f s", p.preload.Seconds())
	}
	if wl == "copy" {
		s += "; mongorelay snapshot.mode=initial, the MongoDB Kafka Connector startup.mode=copy_existing, Debezium snapshot.mode=initial, ceiling A a find() sorted by _id"
	}
	return s
}

func (r *runner) setupLines() []string {
	cfg := r.cfg
	var lines []string
	lines = append(lines, fmt.Sprintf("Machine: %d cores (%s), %s RAM, Linux %s; other work may have been running on it (see load below).",
		runtime.NumCPU(), cpuModel(), memTotal(), cmdOut("uname", "-r")))
	lines = append(lines, "Load average at the end: "+firstField(readFile("/proc/loadavg"), 3))
	lines = append(lines, "mongorelay: "+cmdOut(cfg.relayBin, "version"))
	if cfg.baseline != "" {
		lines = append(lines, fmt.Sprintf("mongorelay baseline (%s): %s", baseSystem, cmdOut(cfg.baseline, "version")))
	}
	lines = append(lines, "Go: "+cmdOut("go", "version")+"; Java: "+firstLine(cmdOut("java", "-version")))
	lines = append(lines, "Apache Kafka 4.1.1 (KRaft, one combined node, deploy/local's settings, heap "+cfg.kafkaHeap+"); Kafka Connect 4.1.1 distributed worker (heap 2G, connect-distributed.sh's JVM flags; config/offset/status topics RF 1).")
	lines = append(lines, fmt.Sprintf("MongoDB stand-in: mongo-java-server %s with the bounded oplog (%d entries), heap %s, jar sha256 %s%s; its peak RSS over the run %s.",
		pomProperty(filepath.Join(cfg.root, "deploy/local/mongo-standin/pom.xml"), "mongo-java-server.version"),
		cfg.oplogEntries, cfg.standinHeap, r.jarHash(), r.jarAge(), r.standinPeak()))
	for _, m := range moreStandins(cfg) {
		what := map[string]string{latencyStandin: "the latency workload's", sinkStandin: "the sink workload's target"}[m.Name]
		lines = append(lines, fmt.Sprintf("A stand-in of its own for %s: %s, the same jar, heap %s, oplog %d entries.", what, m.Name, m.Heap, m.OplogEntries))
	}
	peers := filepath.Join(cfg.root, "bench/peers/pom.xml")
	lines = append(lines, fmt.Sprintf("Peers (Maven Central): MongoDB Kafka Connector %s (mongo-kafka-connect, -all jar), Debezium MongoDB connector %s (plugin archive).",
		pomProperty(peers, "mongo-kafka.version"), pomProperty(peers, "debezium.version")))
	lines = append(lines, "mkc-json: output.format.value=json, StringConverter (schema-less JSON strings). mkc-schema: output.format.value=schema, output.schema.infer.value=true, JsonConverter with schemas.enable=true (Confluent's Avro converter is not on Maven Central; the schema travels in every record). dbz-json: JsonConverter, schemas.enable=false, capture.scope=collection (its default, deployment, watches everything through a $match), snapshot.fetch.size=2048. All: fullDocument updateLookup, 1 task, no tombstones; producer settings are each product's defaults.")
	lines = append(lines, "mongorelay: standalone, value.format=avro, document.mode=typed (inferred record schemas), built-in registry, max.batch.size=2048, tombstones.on.delete=false.")
	lines = append(lines, fmt.Sprintf("Counts: %d events per throughput workload for every system; latency %d inserts at %d/s.",
		cfg.events, cfg.latencyRate*cfg.latencySeconds, cfg.latencyRate))
	return lines
}

// jarAge says when the stand-in jar was built, and warns when its sources are newer (the run
// does not rebuild it: other people's tests may be running from it).
func (r *runner) jarAge() string {
	jar, err := os.Stat(filepath.Join(r.cfg.root, ".cache/mongo-standin/mongo-standin.jar"))
	if err != nil {
		return ""
	}
	var newest time.Time
	_ = filepath.WalkDir(filepath.Join(r.cfg.root, "deploy/local/mongo-standin"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil && fi.ModTime().After(newest) {
				newest = fi.ModTime()
			}
		}
		return nil
	})
	s := ", built " + jar.ModTime().UTC().Format("2006-01-02 15:04 MST")
	if newest.After(jar.ModTime()) {
		s += " (its sources changed after that: deploy/local/env.sh rebuilds it when the environment is next started)"
	}
	return s
}

func (r *runner) standinPeak() string {
	if r.srv == nil || r.srv.Standin == nil {
		return "?"
	}
	s, err := procstat.Read(r.srv.Standin.Pid())
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%d MB", s.PeakRSS>>20)
}

func (r *runner) jarHash() string {
	if r.srv == nil {
		return "?"
	}
	b, err := os.ReadFile(r.srv.StandinJar)
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))[:12]
}

// ceilings returns the throughput ceiling (min of A and B events/s) and the CPU floor (A+B
// CPU-s per million) of a workload, 0 when unknown.
func (r *runner) ceilings(wl string) (eps, cpu float64) {
	if wl == "sink" {
		if c := r.find("ceiling-bulk", wl); c != nil && c.ok() {
			return c.eventsPerSec(), c.cpuPerMillion()
		}
		return 0, 0
	}
	a, b := r.find("ceiling-a", wl), r.find("ceiling-b", wl)
	if a == nil || b == nil || !a.ok() || !b.ok() {
		return 0, 0
	}
	return min(a.eventsPerSec(), b.eventsPerSec()), a.cpuPerMillion() + b.cpuPerMillion()
}

// pipeCeiling is ceiling AB's events/s on a workload, 0 when unknown.
func (r *runner) pipeCeiling(wl string) float64 {
	if ab := r.find("ceiling-ab", wl); ab != nil && ab.ok() {
		return ab.eventsPerSec()
	}
	return 0
}

func ratio(x, y float64) string {
	if x == 0 || y == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", x/y)
}

func (r *runner) throughputTable(b *strings.Builder, wl string) {
	fmt.Fprintln(b, "| system | events | s | events/s | MB/s | CPU-s / 1M events | peak RSS MB | first s | events/s after first | events/s ÷ relay-1 | events/s ÷ ceiling | events/s ÷ ceiling AB | CPU ÷ relay-1 | CPU ÷ ceiling A+B | RSS ÷ relay-1 | stand-in CPU-s | broker CPU-s | others' CPU-s |")
	fmt.Fprintln(b, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	relay := r.find("relay-1", wl)
	ceilEPS, ceilCPU := r.ceilings(wl)
	for _, sys := range r.cfg.systems {
		m := r.find(sys, wl)
		if m == nil || strings.HasPrefix(m.status, notApplicable) {
			continue
		}
		if !m.ok() {
			fmt.Fprintf(b, "| %s | %s |  |  |  |  |  |  |  |  |  |  |  |  |  |  |  |  |\n", sys, cell(m.status))
			continue
		}
		var rEPS, rCPU, rRSS float64
		if relay != nil && relay.ok() {
			rEPS, rCPU, rRSS = relay.eventsPerSec(), relay.cpuPerMillion(), float64(relay.peakRSS)
		}
		first, steady := "–", "–"
		if m.toFirst > 0 {
			first = fmt.Sprintf("%.2f", m.toFirst.Seconds())
			steady = fmt.Sprintf("%.0f", m.steadyPerSec())
		}
		fmt.Fprintf(b, "| %s | %d | %.1f | %.0f | %.1f | %.1f | %d | %s | %s | %s | %s | %s | %s | %s | %s | %.1f | %.1f | %.1f |\n",
			sys, m.events, m.elapsed.Seconds(), m.eventsPerSec(), m.mbPerSec(), m.cpuPerMillion(), m.peakRSS>>20, first, steady,
			ratio(m.eventsPerSec(), rEPS), ratio(m.eventsPerSec(), ceilEPS), ratio(m.eventsPerSec(), r.pipeCeiling(wl)), ratio(m.cpuPerMillion(), rCPU),
			ratio(m.cpuPerMillion(), ceilCPU), ratio(float64(m.peakRSS), rRSS), m.standinCPU.Seconds(), m.kafkaCPU.Seconds(),
			m.otherCPU.Seconds())
	}
	for _, sys := range r.cfg.systems {
		if m := r.find(sys, wl); m != nil && m.note != "" && m.ok() {
			fmt.Fprintf(b, "\n%s: %s.\n", sys, m.note)
		}
	}
	fmt.Fprintln(b)
}

func (r *runner) latencyTable(b *strings.Builder) {
	fmt.Fprintln(b, "| system | samples | writes/s | delivered/s | p50 ms | p99 ms | max ms | p50 ÷ relay-1 | p99 ÷ relay-1 | p50 ÷ ceiling AB | p99 ÷ ceiling AB | CPU-s / 1M events at this rate | peak RSS MB | stand-in CPU-s | broker CPU-s |")
	fmt.Fprintln(b, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	relay := r.find("relay-1", "latency")
	var c50, c99 float64
	if ab := r.find("ceiling-ab", "latency"); ab != nil && ab.ok() && ab.lat != nil {
		c50, c99 = ms(ab.lat.p50), ms(ab.lat.p99)
	}
	for _, sys := range r.cfg.systems {
		m := r.find(sys, "latency")
		if m == nil {
			continue
		}
		if !m.ok() || m.lat == nil {
			fmt.Fprintf(b, "| %s | %s |  |  |  |  |  |  |  |  |  |  |  |  |  |\n", sys, cell(m.status))
			continue
		}
		var r50, r99 float64
		if relay != nil && relay.lat != nil {
			r50, r99 = ms(relay.lat.p50), ms(relay.lat.p99)
		}
		fmt.Fprintf(b, "| %s | %d | %.0f | %.0f | %.1f | %.1f | %.1f | %s | %s | %s | %s | %.1f | %d | %.1f | %.1f |\n",
			sys, m.lat.n, m.lat.rate, m.lat.delivered, ms(m.lat.p50), ms(m.lat.p99), ms(m.lat.max),
			ratio(ms(m.lat.p50), r50), ratio(ms(m.lat.p99), r99), ratio(ms(m.lat.p50), c50), ratio(ms(m.lat.p99), c99),
			m.cpuPerMillion(), m.peakRSS>>20, m.standinCPU.Seconds(), m.kafkaCPU.Seconds())
	}
	for _, sys := range r.cfg.systems {
		if m := r.find(sys, "latency"); m != nil && m.note != "" && m.ok() {
			fmt.Fprintf(b, "\n%s: %s.\n", sys, m.note)
		}
	}
}

func (r *runner) acceptance() []string {
	var out []string
	for _, wl := range []string{"insert", "mix", "copy"} {
		relay := r.find("relay-1", wl)
		if relay == nil {
			continue
		}
		if !relay.ok() {
			out = append(out, fmt.Sprintf("%s: relay-1 has no figure (%s)", wl, firstLine(relay.status)))
			continue
		}
		ceil, _ := r.ceilings(wl)
		line := fmt.Sprintf("%s: relay-1 %.0f events/s", wl, relay.eventsPerSec())
		if ceil > 0 {
			verdict := "below the 80% target"
			if relay.eventsPerSec() >= 0.8*ceil {
				verdict = "meets the ≥ 80% target"
			}
			line += fmt.Sprintf(" = %.0f%% of min(ceiling A, ceiling B) = %.0f events/s (%s)", 100*relay.eventsPerSec()/ceil, ceil, verdict)
		}
		if ab := r.pipeCeiling(wl); ab > 0 {
			line += fmt.Sprintf("; %.0f%% of ceiling AB (%.0f events/s)", 100*relay.eventsPerSec()/ab, ab)
		}
		for _, peer := range []string{"mkc-json", "mkc-schema", "dbz-json"} {
			if m := r.find(peer, wl); m != nil && m.ok() {
				line += fmt.Sprintf("; %.2f× %s (%.0f events/s)", relay.eventsPerSec()/m.eventsPerSec(), peer, m.eventsPerSec())
			}
		}
		out = append(out, line)
	}
	if r.relay4 != "" && r.relay4 != "available" {
		out = append(out, "relay-4 (4 shards): "+r.relay4)
	}
	return out
}

// variant is one of relayVariants as the report compares it with relay-1.
type variant struct {
	system string
	title  string // of its results section
	about  string // what it is, for that section
	// The difference of a figure is (subject − reference) ÷ reference.
	subject, reference string
	rule               string // the rule of the verdict, for that section
	// meets says whether the differences of the events/s and CPU-s per million medians meet
	// the rule; the verdict is then pass, else fail. nil: no verdict.
	meets      func(dRate, dCPU float64) bool
	pass, fail string
}

// variants are relayVariants that run in this run, as the report compares them with relay-1.
func (r *runner) variants() []variant {
	var out []variant
	for _, sys := range relayVariants {
		if !slices.Contains(r.cfg.systems, sys) {
			continue
		}
		switch sys {
		case baseSystem:
			out = append(out, variant{system: sys, title: "Against the baseline",
				about:   fmt.Sprintf("%s runs `%s` (%s) exactly as relay-1.", sys, r.relPath(r.cfg.baseline), cmdOut(r.cfg.baseline, "version")),
				subject: "relay-1", reference: sys,
				rule:  "Rule (issues 11 and 12): the medians of relay-1 ÷ ceiling A (so of events/s), or of CPU-seconds per million events, differ by less than 10%.",
				meets: func(dRate, dCPU float64) bool { return math.Abs(dRate) < 0.10 || math.Abs(dCPU) < 0.10 },
				pass:  "within 10%", fail: "NOT within 10%"})
		case aloSystem:
			out = append(out, variant{system: sys, title: "At-least-once against exactly-once",
				about:   fmt.Sprintf("%s is relay-1 with `exactly.once=false` in its connector config; relay-1 runs the default, exactly-once, where each transaction carries the task's offset record too.", sys),
				subject: sys, reference: "relay-1",
				rule:  "Exactly-once stays the default while at-least-once is not 10% faster (issue 13).",
				meets: func(dRate, _ float64) bool { return dRate < 0.10 },
				pass:  "at-least-once is not 10% faster", fail: "at-least-once is 10% faster or more: reconsider the default"})
		case dbSystem:
			out = append(out, variant{system: sys, title: "capture.scope=database against collection (50 collections)",
				about:   fmt.Sprintf("%s is relay-1 with `capture.scope=database`: one task and one change stream (db.watch(), filtered to the captured collections) fanning out to the %d collections' topics, where relay-1 runs one task, stream and transactional producer per collection. Both read the %s workload only.", sys, collsCount, collsWorkload),
				subject: sys, reference: "relay-1",
				rule: "Issue 19 asks for the figures; no rule applies."})
		case tlsSystem:
			out = append(out, variant{system: sys, title: "TLS+SCRAM against plaintext",
				about:   fmt.Sprintf("%s is relay-1 writing to a second broker of the run, with the same JVM and broker settings, whose only listener (inter-broker too; the controller's is SSL) is SASL_SSL: it connects as a SCRAM-SHA-512 user over TLS (`MONGORELAY_KAFKA_SECURITY_PROTOCOL=SASL_SSL`, ..._SASL_MECHANISM, ..._SASL_USERNAME, ..._SASL_PASSWORD, ..._SSL_CA_LOCATION), and the harness's clients of that broker (offset seeding, the counting consumer) likewise; it reads the same MongoDB events. Its broker CPU column is that broker's; the idle other broker counts as others' CPU.", sys),
				subject: sys, reference: "relay-1",
				rule: "Issue 15 asks for the figures; no rule applies."})
		}
	}
	return out
}

// comparison compares v.subject with v.reference on each throughput workload: the medians of
// events/s (and of the ratio to ceiling A when it ran) and of CPU-seconds per million events,
// their differences and v's verdict.
func (r *runner) comparison(v variant) []string {
	var out []string
	for _, wl := range []string{"insert", "mix", "copy", collsWorkload} {
		if !r.wants(wl) || !measures(v.subject, wl) || !measures(v.reference, wl) {
			continue
		}
		subEPS, subCPU, nSub := r.medians(v.subject, wl)
		refEPS, refCPU, nRef := r.medians(v.reference, wl)
		if nSub == 0 || nRef == 0 {
			out = append(out, fmt.Sprintf("%s: no comparison: %d %s and %d %s runs completed", wl, nSub, v.subject, nRef, v.reference))
			continue
		}
		dRate, dCPU := subEPS/refEPS-1, subCPU/refCPU-1
		rate := fmt.Sprintf("events/s %.0f vs %.0f (%+.1f%%)", subEPS, refEPS, 100*dRate)
		// Both share ceiling A's figure, so the ratios differ exactly as the rates do.
		if a, _, n := r.medians("ceiling-a", wl); n > 0 {
			rate += fmt.Sprintf(", relay ÷ ceiling A %.3f vs %.3f", subEPS/a, refEPS/a)
		}
		line := fmt.Sprintf("%s, %s vs %s (%d + %d runs): %s; CPU-s / 1M events %.2f vs %.2f (%+.1f%%)",
			wl, v.subject, v.reference, nSub, nRef, rate, subCPU, refCPU, 100*dCPU)
		switch {
		case v.meets == nil:
		case v.meets(dRate, dCPU):
			line += ": " + v.pass
		default:
			line += ": " + v.fail
		}
		out = append(out, line)
	}
	return out
}

// medians returns the median events/s and CPU-seconds per million events over the completed
// runs of sys on wl, and how many there were.
func (r *runner) medians(sys, wl string) (eps, cpu float64, n int) {
	var rates, cpus []float64
	for _, m := range r.runs {
		if m.system == sys && m.workload == wl && m.ok() {
			rates = append(rates, m.eventsPerSec())
			cpus = append(cpus, m.cpuPerMillion())
		}
	}
	return medianOf(rates), medianOf(cpus), len(rates)
}

// medianOf returns the median of v (the mean of the middle two for an even count), 0 for none.
func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func (r *runner) peerSection(b *strings.Builder) {
	for _, sys := range []string{"mkc-json", "mkc-schema", "dbz-json"} {
		if !contains(r.cfg.systems, sys) {
			continue
		}
		var okWl, failed []string
		var firstErr string
		for _, wl := range allWorkloads {
			m := r.find(sys, wl)
			if m == nil {
				continue
			}
			if m.ok() {
				okWl = append(okWl, wl)
			} else {
				failed = append(failed, wl)
				if firstErr == "" {
					firstErr = m.status
				}
			}
		}
		switch {
		case len(failed) == 0:
			fmt.Fprintf(b, "- %s: started and completed %s.\n", sys, strings.Join(okWl, ", "))
		default:
			fmt.Fprintf(b, "- %s: completed %s; did not complete %s. First error (stack frames left out):\n\n```\n%s\n```\n\n",
				sys, listOrNone(okWl), strings.Join(failed, ", "), truncateLines(trimTrace(firstErr), 20))
		}
	}
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "nothing"
	}
	return strings.Join(l, ", ")
}

var pprofLine = regexp.MustCompile(`^\s*([\d.]+\w*)\s+([\d.]+)%\s+([\d.]+)%\s+([\d.]+\w*)\s+([\d.]+)%\s+(.+)$`)

func (r *runner) profileSection(b *strings.Builder) {
	pr := r.prof
	if pr.err != "" {
		fmt.Fprintf(b, "No profile: %s\n", truncateLines(pr.err, 20))
		return
	}
	path := r.relPath(pr.path)
	fmt.Fprintf(b, "relayprof (worker.Standalone in-process, runtime/pprof) on the insert workload: %.0f events/s under the profiler, %.2f CPU-s. Profile: `%s` (kept until the next run).\n\n",
		pr.m.eventsPerSec(), pr.m.cpu.Seconds(), path)
	// Flat time by package, from the flat listing.
	byPkg := map[string]float64{}
	flat := strings.SplitN(pr.top, "\n\n", 2)[0]
	for _, line := range strings.Split(flat, "\n") {
		mm := pprofLine.FindStringSubmatch(line)
		if mm == nil {
			continue
		}
		if pct, _ := strconv.ParseFloat(mm[2], 64); pct > 0 {
			byPkg[pkgOf(mm[6])] += pct
		}
	}
	type kv struct {
		k string
		v float64
	}
	var pkgs []kv
	for k, v := range byPkg {
		pkgs = append(pkgs, kv{k, v})
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].v > pkgs[j].v })
	fmt.Fprintf(b, "Flat CPU of the top 30 functions, by package: ")
	for i, p := range pkgs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(b, "%s %.1f%%", p.k, p.v)
	}
	fmt.Fprintf(b, ".\n\n```\n%s\n```\n", pr.top)
}

// relPath returns path relative to the repository when it is inside it: results files are
// committed, and must not carry a machine's directories.
func (r *runner) relPath(path string) string {
	if rel, err := filepath.Rel(r.cfg.root, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}

// pkgOf returns the package path of a pprof function name.
func pkgOf(fn string) string {
	fn = strings.TrimSpace(fn)
	slash := strings.LastIndex(fn, "/")
	dot := strings.Index(fn[slash+1:], ".")
	if dot < 0 {
		return fn
	}
	return fn[:slash+1+dot]
}

func cell(s string) string {
	s = firstLine(s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return strings.ReplaceAll(s, "|", "\\|")
}

func truncateLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], fmt.Sprintf("... (%d more lines)", len(lines)-n))
	}
	return strings.Join(lines, "\n")
}

func cmdOut(name string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return "? (" + err.Error() + ")"
	}
	return strings.TrimSpace(string(out))
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func firstField(s string, n int) string {
	f := strings.Fields(s)
	if len(f) > n {
		f = f[:n]
	}
	return strings.Join(f, " ")
}

func cpuModel() string {
	for _, line := range strings.Split(readFile("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown model"
}

func memTotal() string {
	for _, line := range strings.Split(readFile("/proc/meminfo"), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == "MemTotal" {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return fmt.Sprintf("%.0f GB", float64(kb)/(1<<20))
		}
	}
	return "?"
}

func pomProperty(pom, name string) string {
	m := regexp.MustCompile("<" + regexp.QuoteMeta(name) + ">([^<]+)<").FindStringSubmatch(readFile(pom))
	if m == nil {
		return "?"
	}
	return m[1]
}

// trimTrace drops a Java stack trace's frames, keeping the exception and "Caused by" lines.
func trimTrace(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "at ") || (strings.HasPrefix(t, "... ") && strings.HasSuffix(t, " more")) {
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}
