package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/bench/internal/procstat"
	"github.com/mongorelay/mongorelay/internal/proc"
	"github.com/mongorelay/mongorelay/tasks/offsets"
)

// measurement is one system's figures on one workload.
type measurement struct {
	system, workload string
	rep              int    // repetition, from 0
	topic            string // where the system wrote
	// status is "" for a complete measurement, else what went wrong or why it did not run.
	status string

	expected, events, bytes int64
	elapsed                 time.Duration // start → expected-th record readable (or ceiling done)
	toFirst                 time.Duration // start → first record readable (0: not known)
	cpu                     time.Duration // the measured process's utime+stime over the window
	peakRSS                 int64         // its VmHWM at the end
	standinCPU, kafkaCPU    time.Duration // the servers' CPU over the window, for context
	// otherCPU is the CPU every other process of the machine used over the window (neither
	// the measured process, the servers nor this harness): other people's work competing.
	otherCPU time.Duration
	lat      *latencyResult
	note     string
}

type latencyResult struct {
	p50, p99, max time.Duration
	n             int
	rate          float64 // writes (or records) per second achieved
	delivered     float64 // records per second delivered downstream, first to last
}

func (m *measurement) ok() bool { return m.status == "" }

// final says whether m ends its system's runs on its workload: skipped for the budget, or not
// available in this build.
func (m *measurement) final() bool {
	return strings.HasPrefix(m.status, "skipped") || strings.HasPrefix(m.status, "not yet available") ||
		strings.HasPrefix(m.status, notApplicable)
}

func (m *measurement) eventsPerSec() float64 {
	if m.elapsed <= 0 {
		return 0
	}
	return float64(m.events) / m.elapsed.Seconds()
}

// steadyPerSec is the rate from the first record to the last: without the start-up.
func (m *measurement) steadyPerSec() float64 {
	d := m.elapsed - m.toFirst
	if m.toFirst <= 0 || d <= 0 || m.events < 2 {
		return 0
	}
	return float64(m.events-1) / d.Seconds()
}

func (m *measurement) mbPerSec() float64 {
	if m.elapsed <= 0 {
		return 0
	}
	return float64(m.bytes) / 1e6 / m.elapsed.Seconds()
}

func (m *measurement) cpuPerMillion() float64 {
	if m.events == 0 {
		return 0
	}
	return m.cpu.Seconds() * 1e6 / float64(m.events)
}

// window is the interval a measurement covers, with the CPU counters at its start.
type window struct {
	t0               time.Time
	pid              int
	cpu0             time.Duration
	standin0, kafka0 time.Duration
	busy0, self0     time.Duration
	kafka            *proc.Proc // the broker the measured system writes to
	standin          *proc.Proc // the stand-in it reads or writes
}

func cpuOf(pid int) time.Duration {
	s, err := procstat.Read(pid)
	if err != nil {
		return 0
	}
	return s.CPU
}

// begin opens a window of a system on workload wl, on the run's plaintext broker and the
// workload's stand-in (standinOf); pid 0 means the measured process starts right after (its
// CPU is 0).
func (r *runner) begin(wl string, pid int) *window {
	return r.beginOn(r.plain, r.standinOf(wl).proc, pid)
}

// beginOn opens a window of a system writing to b, and reading or writing standin.
func (r *runner) beginOn(b *broker, standin *proc.Proc, pid int) *window {
	w := &window{pid: pid, kafka: b.proc, standin: standin, standin0: cpuOf(standin.Pid()), kafka0: cpuOf(b.proc.Pid()),
		self0: cpuOf(os.Getpid())}
	w.busy0, _ = procstat.Busy()
	if pid != 0 {
		w.cpu0 = cpuOf(pid)
	}
	w.t0 = time.Now()
	return w
}

// startCeiling starts the ceiling binary with args for m, inside a measuring window opened
// just before it and then bound to its process.
func (r *runner) startCeiling(m *measurement, args []string) (*proc.Proc, *window, error) {
	w := r.begin(m.workload, 0)
	pr, err := r.reg.Start(m.prefix(), filepath.Join(r.cfg.work, m.prefix()+".log"),
		proc.Options{Lines: true, Stdin: true}, append([]string{r.cfg.ceilingBin}, args...)...)
	if err != nil {
		return nil, nil, err
	}
	w.pid = pr.Pid()
	return pr, w, nil
}

// end samples the measured process and the servers into m.
func (r *runner) end(w *window, m *measurement) {
	if s, err := procstat.Read(w.pid); err == nil {
		m.cpu = s.CPU - w.cpu0
		m.peakRSS = s.PeakRSS
	} else if m.status == "" {
		m.status = "could not read /proc of the measured process: " + err.Error()
	}
	m.standinCPU = cpuOf(w.standin.Pid()) - w.standin0
	m.kafkaCPU = cpuOf(w.kafka.Pid()) - w.kafka0
	if busy, err := procstat.Busy(); err == nil && w.busy0 > 0 {
		self := cpuOf(os.Getpid()) - w.self0
		m.otherCPU = max(0, busy-w.busy0-m.cpu-m.standinCPU-m.kafkaCPU-self)
	}
}

func topicOf(prefix, coll string) string { return prefix + "." + benchDB + "." + coll }

// prefix names a run's topics, files and connector: <system>-<workload>[-r<rep>], or
// <system>-<workload>-warm-up for the warm-up's run (rep < 0).
func (m *measurement) prefix() string {
	if m.rep < 0 {
		return m.system + "-" + m.workload + "-warm-up"
	}
	if m.rep == 0 {
		return m.system + "-" + m.workload
	}
	return fmt.Sprintf("%s-%s-r%d", m.system, m.workload, m.rep)
}

// awaitCount waits until c has counted its expected records, failed() reports a failure, or
// the run times out; it fills m's counts and times from w.t0.
func (r *runner) awaitCount(ctx context.Context, w *window, c *counter, m *measurement, failed func() string) {
	limit := max(30*time.Second, min(r.cfg.runTimeout, time.Until(r.deadline)))
	timeout := time.NewTimer(limit)
	defer timeout.Stop()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-c.reached:
			done = true
		case <-tick.C:
			if why := failed(); why != "" {
				m.status = "failed: " + why
				done = true
			}
		case <-timeout.C:
			n, _, _, _ := c.snapshot()
			m.status = fmt.Sprintf("timed out after %s with %d of %d records", limit.Round(time.Second), n, m.expected)
			done = true
		case <-ctx.Done():
			m.status = "cancelled"
			done = true
		}
	}
	n, b, first, last := c.snapshot()
	m.events, m.bytes = n, b
	if !first.IsZero() {
		m.toFirst = first.Sub(w.t0)
	}
	if m.ok() {
		m.elapsed = last.Sub(w.t0)
	}
}

// measure runs system sys on workload wl into m.
func (r *runner) measure(ctx context.Context, sys, wl string, m *measurement, worker *connectWorker) {
	if wl == "latency" {
		// Each latency run writes documents of its own that no later run reads, and the
		// stand-in keeps them in its heap.
		defer func() {
			if err := r.standinOf(wl).db.Collection(r.loads[wl].coll).Drop(context.WithoutCancel(ctx)); err != nil {
				logf("  dropping the latency run's documents: %v", err)
			}
		}()
	}
	if wl == "sink" {
		r.sink(ctx, sys, m, worker)
		return
	}
	switch sys {
	case "ceiling-a":
		r.ceilingA(ctx, wl, m)
	case "ceiling-b":
		r.ceilingB(ctx, wl, m)
	case "ceiling-ab":
		r.ceilingAB(ctx, wl, m)
	case "relay-1", aloSystem, tlsSystem, dbSystem:
		r.relay(ctx, wl, m, 1)
	case baseSystem:
		r.relayRun(ctx, wl, m, 1, r.cfg.baseline, nil)
	case "relay-4":
		if r.relay4 != "" && r.relay4 != "available" {
			m.status = r.relay4
			return
		}
		r.relay(ctx, wl, m, 4)
	default:
		r.peer(ctx, sys, wl, m, worker)
	}
}

// ----------------------------------------------------------------------------------- ceilings

var doneRE = regexp.MustCompile(`^DONE events=(\d+) bytes=(\d+)`)

// ceilingA runs the Go driver alone: the change stream from the marker (insert, mix), a
// collection scan (copy), or the stream from now under paced inserts (latency).
func (r *runner) ceilingA(ctx context.Context, wl string, m *measurement) {
	p := r.loads[wl]
	base := []string{"-mongo", r.standinOf(wl).uri, "-db", benchDB, "-coll", p.coll, "-count", fmt.Sprint(p.expected)}
	var args []string
	latFile := filepath.Join(r.cfg.work, m.prefix()+".txt")
	switch wl {
	case "insert", "mix":
		args = append([]string{"read", "-resume-after", p.token}, base...)
	case "copy":
		args = append([]string{"copy"}, base...)
	case "latency":
		args = append([]string{"read", "-latency", latFile}, base...)
	}
	pr, w, err := r.startCeiling(m, args)
	if err != nil {
		m.status = err.Error()
		return
	}
	defer pr.Stop(10 * time.Second)
	if wl == "latency" {
		if _, err := pr.WaitLine(ctx, "READY", time.Minute); err != nil {
			m.status = err.Error()
			return
		}
		var rate float64
		if w, rate, err = r.pacedWindow(ctx, pr.Pid(), r.standinOf(wl).db.Collection(p.coll), p.expected); err != nil {
			m.status = err.Error()
			return
		}
		if _, err := pr.WaitLine(ctx, "DONE", time.Minute); err != nil {
			m.status = err.Error()
			return
		}
		r.end(w, m)
		samples, err := readLatencyFile(latFile)
		if err != nil {
			m.status = err.Error()
			return
		}
		m.events = int64(len(samples))
		m.lat = r.percentiles("ceiling-a", samples, w.t0, rate)
		return
	}
	line, err := pr.WaitLine(ctx, "DONE", r.cfg.runTimeout)
	if err != nil {
		m.status = err.Error()
		return
	}
	m.elapsed = time.Since(w.t0)
	r.end(w, m)
	mm := doneRE.FindStringSubmatch(line)
	m.events, _ = strconv.ParseInt(mm[1], 10, 64)
	m.bytes, _ = strconv.ParseInt(mm[2], 10, 64)
	m.note = "bytes: BSON change events (or documents) as read from the server"
}

func readLatencyFile(path string) ([]latencySample, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []latencySample
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var sent, recv int64
		if _, err := fmt.Sscan(sc.Text(), &sent, &recv); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, latencySample{time.Unix(0, sent), time.Unix(0, recv)})
	}
	return out, sc.Err()
}

// ceilingB runs franz-go alone: it replays relay-1's records of the same workload (same sizes,
// same bytes, so the same lz4 ratio) to its own topic, or produces paced records of relay-1's
// average size (latency).
func (r *runner) ceilingB(ctx context.Context, wl string, m *measurement) {
	p := r.loads[wl]
	prefix := m.prefix()
	topic := topicOf(prefix, p.coll)
	m.topic = topic
	if err := r.plain.createTopic(ctx, topic); err != nil {
		m.status = err.Error()
		return
	}
	var args []string
	txn := []string{"-transactional-id", "bench-" + prefix}
	if wl == "latency" {
		size := 1000
		if ins := r.find("relay-1", "insert"); ins != nil && ins.ok() && ins.events > 0 {
			size = int(ins.bytes / ins.events)
		}
		args = []string{"produce", "-brokers", r.srv.KafkaAddr, "-to-topic", topic, "-count", fmt.Sprint(p.expected),
			"-rate", fmt.Sprint(r.cfg.latencyRate), "-value-size", fmt.Sprint(size)}
	} else {
		src := r.find("relay-1", wl)
		if src == nil || !src.ok() {
			m.status = "not run: ceiling B replays relay-1's records of this workload, and relay-1 has none"
			return
		}
		args = []string{"produce", "-brokers", r.srv.KafkaAddr, "-from-topic", src.topic,
			"-to-topic", topic, "-count", fmt.Sprint(p.expected)}
	}
	args = append(args, txn...)
	c, err := newCounter(r.plain, topic, p.expected, wl == "latency")
	if err != nil {
		m.status = err.Error()
		return
	}
	defer c.close()
	pr, err := r.reg.Start(prefix, filepath.Join(r.cfg.work, prefix+".log"),
		proc.Options{Lines: true, Stdin: true}, append([]string{r.cfg.ceilingBin}, args...)...)
	if err != nil {
		m.status = err.Error()
		return
	}
	defer pr.Stop(10 * time.Second)
	// The clock starts once the records to replay are in memory.
	if _, err := pr.WaitLine(ctx, "READY", 3*time.Minute); err != nil {
		m.status = err.Error()
		return
	}
	w := r.begin(wl, pr.Pid())
	failed := func() string {
		if pr.Exited() {
			return "ceiling exited: " + pr.Tail(1)
		}
		return ""
	}
	r.awaitCount(ctx, w, c, m, failed)
	r.end(w, m)
	if wl == "latency" && m.ok() {
		m.lat = r.percentiles("ceiling-b", c.latencies(), w.t0, float64(r.cfg.latencyRate))
		m.elapsed = 0
		return
	}
	m.note = "peak RSS includes the replayed records, held in memory"
}

// ceilingAB runs the two libraries at once: raw change events (or documents) piped from the
// driver to franz-go, nothing else.
func (r *runner) ceilingAB(ctx context.Context, wl string, m *measurement) {
	p := r.loads[wl]
	topic := topicOf(m.prefix(), p.coll)
	m.topic = topic
	if err := r.plain.createTopic(ctx, topic); err != nil {
		m.status = err.Error()
		return
	}
	args := []string{"pipe", "-mongo", r.standinOf(wl).uri, "-db", benchDB, "-coll", p.coll, "-count", fmt.Sprint(p.expected),
		"-brokers", r.srv.KafkaAddr, "-to-topic", topic, "-transactional-id", "bench-" + m.prefix()}
	switch wl {
	case "insert", "mix":
		args = append(args, "-resume-after", p.token)
	case "copy":
		args = append(args, "-copy")
	}
	c, err := newCounter(r.plain, topic, p.expected, wl == "latency")
	if err != nil {
		m.status = err.Error()
		return
	}
	defer c.close()
	pr, w, err := r.startCeiling(m, args)
	if err != nil {
		m.status = err.Error()
		return
	}
	defer pr.Stop(10 * time.Second)
	failed := func() string {
		if pr.Exited() {
			return "ceiling exited: " + pr.Tail(1)
		}
		return ""
	}
	if wl == "latency" {
		// READY comes once the stream is open: every insert after it is in the stream.
		if _, err := pr.WaitLine(ctx, "READY", time.Minute); err != nil {
			m.status = err.Error()
			return
		}
		var rate float64
		if w, rate, err = r.pacedWindow(ctx, pr.Pid(), r.standinOf(wl).db.Collection(p.coll), p.expected); err != nil {
			m.status = err.Error()
			return
		}
		r.awaitCount(ctx, w, c, m, failed)
		r.end(w, m)
		if m.ok() {
			m.elapsed = 0
			m.lat = r.percentiles(m.system, c.latencies(), w.t0, rate)
		}
		return
	}
	r.awaitCount(ctx, w, c, m, failed)
	r.end(w, m)
	m.note = "bytes: raw BSON change events (or documents) and their keys"
}

func (r *runner) find(sys, wl string) *measurement {
	for _, m := range r.results {
		if m.system == sys && m.workload == wl {
			return m
		}
	}
	return nil
}

// ---------------------------------------------------------------------------------- mongorelay

var taskRE = regexp.MustCompile(`task=\S+#\d+-of-(\d+)`)

// relayConnector writes sys's standalone connector file for workload p and returns its path.
func (r *runner) relayConnector(sys, prefix string, p *prepared, snapshotMode string, shards int) (string, error) {
	include := regexp.QuoteMeta(benchDB + "." + p.coll)
	if p.colls > 0 {
		include = regexp.QuoteMeta(benchDB+".") + `sc[0-9]+`
	}
	conf := map[string]string{
		"connector.class":           "mongodb",
		"mongodb.connection.string": r.standinOf(p.name).uri,
		"database.include.list":     benchDB,
		"collection.include.list":   include,
		"topic.prefix":              prefix,
		"snapshot.mode":             snapshotMode,
		"max.batch.size":            "2048",
		// One record per event, as the peers write (the MongoDB Kafka Connector has no
		// tombstones; Debezium's are turned off too).
		"tombstones.on.delete": "false",
	}
	// Only aloSystem names the key: relay-1 and an older -baseline binary run their default.
	if sys == aloSystem {
		conf["exactly.once"] = "false"
	}
	if sys == dbSystem {
		conf["capture.scope"] = "database"
	}
	if shards > 1 {
		conf["shards"] = fmt.Sprint(shards)
		// The stand-in lacks $toHashedIndexKey: each shard filters on the client.
		conf["shard.filter"] = "client"
	}
	b, err := json.MarshalIndent(map[string]any{"name": "bench", "config": conf}, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(r.cfg.work, prefix+".json")
	return path, os.WriteFile(path, b, 0o644)
}

// seedOffsets writes, into a fresh offsets topic on b, a stream offset at the marker for each
// shard: the task resumes after the marker, as if it had committed it. This is the project's own
// offsets.Store, so the record is exactly what a task would have written. For the colls
// workload, each collection's task (scope: a database task with its "*" key) starts at the
// cluster time right after the marker instead: the marker's token is another collection's.
func (r *runner) seedOffsets(ctx context.Context, b *broker, topic string, p *prepared, shards int, scope bool) error {
	st, err := offsets.Open(ctx, []string{b.addr}, topic, offsets.ClientOptions(b.opts...),
		offsets.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		return err
	}
	defer st.Close()
	v, err := offsets.ResumeAt(p.token)
	if err != nil {
		return err
	}
	if p.colls > 0 {
		start := p.streamStart()
		at := &offsets.Value{Version: offsets.FormatVersion, ClusterTime: &offsets.ClusterTime{T: start.T, I: start.I}}
		colls := []string{"*"}
		if !scope {
			colls = colls[:0]
			for i := range p.colls {
				colls = append(colls, collName(i))
			}
		}
		for _, coll := range colls {
			at.UpdatedMs = time.Now().UnixMilli()
			if err := st.Commit(ctx, offsets.ShardKey("bench", benchDB, coll, 0, 1), at); err != nil {
				return err
			}
		}
		return nil
	}
	for i := range shards {
		v.UpdatedMs = time.Now().UnixMilli()
		if err := st.Commit(ctx, offsets.ShardKey("bench", benchDB, p.coll, i, shards), v); err != nil {
			return err
		}
	}
	return nil
}

// relay runs mongorelay standalone with shards shards per collection.
func (r *runner) relay(ctx context.Context, wl string, m *measurement, shards int) {
	r.relayRun(ctx, wl, m, shards, r.cfg.relayBin, nil)
}

// relayRun runs bin (mongorelay standalone, or relayprof with extra flags) as m.system and
// measures it.
func (r *runner) relayRun(ctx context.Context, wl string, m *measurement, shards int, bin string, extra []string) {
	p := r.loads[wl]
	prefix := m.prefix()
	topic := topicOf(prefix, p.coll)
	m.topic = topic
	b := r.brokerOf(m.system)
	topics := []string{topic}
	consume := kgo.ConsumeTopics(topic)
	if p.colls > 0 {
		topics = topics[:0]
		for i := range p.colls {
			topics = append(topics, topicOf(prefix, collName(i)))
		}
		consume = kgo.ConsumeTopics(topics...)
	}
	for _, t := range topics {
		if err := b.createTopic(ctx, t); err != nil {
			m.status = err.Error()
			return
		}
	}
	offsetsTopic, schemasTopic := "bench-offsets-"+prefix, "bench-schemas-"+prefix
	snapshotMode := "never"
	switch wl {
	case "insert", "mix", collsWorkload:
		if err := r.seedOffsets(ctx, b, offsetsTopic, p, shards, m.system == dbSystem); err != nil {
			m.status = "seed offsets: " + err.Error()
			return
		}
	case "copy":
		snapshotMode = "initial"
	}
	file, err := r.relayConnector(m.system, prefix, p, snapshotMode, shards)
	if err != nil {
		m.status = err.Error()
		return
	}
	c, err := newCounterOf(b, p.expected, wl == "latency", consume)
	if err != nil {
		m.status = err.Error()
		return
	}
	defer c.close()
	argv := append([]string{bin}, extra...)
	if len(extra) == 0 {
		argv = append(argv, "standalone")
	}
	argv = append(argv, file)
	// The worker settings go in as MONGORELAY_* variables: they are stable where the flag
	// spelling has changed (--offsets.topic became --offsets-topic), and a binary reads only
	// those of the keys it knows, so the -baseline binary gets the same environment. The REST
	// API a newer standalone serves (http.listen, default 127.0.0.1:8083) goes to a free port:
	// 8083 may be taken on a shared machine. The broker's settings come first.
	env := append(slices.Clip(b.env),
		"MONGORELAY_REGISTRY_LISTEN=127.0.0.1:0",
		"MONGORELAY_HTTP_LISTEN=127.0.0.1:0",
		"MONGORELAY_OFFSETS_TOPIC="+offsetsTopic,
		"MONGORELAY_SCHEMAS_TOPIC="+schemasTopic,
	)
	w := r.beginOn(b, r.standinOf(wl).proc, 0)
	pr, err := r.reg.Start(prefix, filepath.Join(r.cfg.work, prefix+".log"), proc.Options{Env: env}, argv...)
	if err != nil {
		m.status = err.Error()
		return
	}
	defer pr.Stop(30 * time.Second)
	w.pid = pr.Pid()
	failed := func() string {
		if pr.Exited() {
			return "mongorelay exited: " + pr.Tail(1)
		}
		if b, _ := os.ReadFile(pr.Log); strings.Contains(string(b), "task FAILED") {
			return "task FAILED: " + grepLine(string(b), "task FAILED")
		}
		return ""
	}
	if shards > 1 && r.relay4 == "" {
		if why := r.detectShards(ctx, pr, shards); why != "" {
			r.relay4 = why
			m.status = why
			return
		}
		r.relay4 = "available"
	}
	if wl == "latency" {
		r.latencyRun(ctx, w, c, m, failed)
		return
	}
	r.awaitCount(ctx, w, c, m, failed)
	r.end(w, m)
}

// detectShards waits for the first task to start and reports "" when the connector runs shards
// tasks, or why the measurement cannot be made.
func (r *runner) detectShards(ctx context.Context, pr *proc.Proc, shards int) string {
	if err := pr.WaitLog(ctx, "task=", time.Minute); err != nil {
		return "failed: " + err.Error()
	}
	time.Sleep(time.Second) // let every task log its start
	b, _ := os.ReadFile(pr.Log)
	var seen []string
	for _, mm := range taskRE.FindAllStringSubmatch(string(b), -1) {
		if !slices.Contains(seen, mm[1]) {
			seen = append(seen, mm[1])
		}
	}
	if slices.Contains(seen, fmt.Sprint(shards)) {
		return ""
	}
	return fmt.Sprintf("not yet available: with shards=%d the standalone runs its tasks as %s",
		shards, strings.Join(taskNames(string(b)), ", "))
}

func taskNames(log string) []string {
	var out []string
	for _, mm := range regexp.MustCompile(`task=(\S+#\d+-of-\d+)`).FindAllStringSubmatch(log, -1) {
		if !slices.Contains(out, mm[1]) {
			out = append(out, mm[1])
		}
	}
	return out
}

func grepLine(s, substr string) string {
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, substr) {
			return line
		}
	}
	return ""
}

// ---------------------------------------------------------------------------------------- peers

// peerConfig is the connector config of a peer on a workload.
func (r *runner) peerConfig(sys, wl string, p *prepared, prefix string) map[string]string {
	const (
		stringConv = "org.apache.kafka.connect.storage.StringConverter"
		jsonConv   = "org.apache.kafka.connect.json.JsonConverter"
	)
	if strings.HasPrefix(sys, "mkc-") {
		c := map[string]string{
			"connector.class": "com.mongodb.kafka.connect.MongoSourceConnector",
			"tasks.max":       "1",
			"connection.uri":  r.standinOf(wl).uri,
			"database":        benchDB,
			"collection":      p.coll,
			"topic.prefix":    prefix,
			// Full documents on updates, as mongorelay (capture.mode default) and Debezium.
			"change.stream.full.document": "updateLookup",
			"output.format.key":           "json",
			"key.converter":               stringConv,
		}
		switch sys {
		case "mkc-json":
			c["output.format.value"] = "json"
			c["value.converter"] = stringConv
		case "mkc-schema":
			c["output.format.value"] = "schema"
			c["output.schema.infer.value"] = "true"
			c["value.converter"] = jsonConv
			c["value.converter.schemas.enable"] = "true"
		}
		switch wl {
		case "insert", "mix":
			at := p.streamStart()
			c["startup.mode"] = "timestamp"
			c["startup.mode.timestamp.start.at.operation.time"] = fmt.Sprintf(`{"$timestamp": {"t": %d, "i": %d}}`, at.T, at.I)
		case "copy":
			c["startup.mode"] = "copy_existing"
		case "latency":
			c["startup.mode"] = "latest"
		}
		return c
	}
	c := map[string]string{
		"connector.class": "io.debezium.connector.mongodb.MongoDbConnector",
		"tasks.max":       "1",
		// Debezium refuses a replica set connection string without the set's name; the
		// stand-in is the primary of "rs0".
		"mongodb.connection.string": strings.Replace(r.standinOf(wl).uri, "directConnection=true", "replicaSet=rs0", 1),
		"topic.prefix":              prefix,
		"database.include.list":     benchDB,
		"collection.include.list":   benchDB + "." + p.coll,
		// Watch the collection, as mongorelay and the MongoDB Kafka Connector do, rather than
		// the whole deployment filtered by a $match (Debezium's default scope).
		"capture.scope":                  "collection",
		"capture.target":                 benchDB + "." + p.coll,
		"capture.mode":                   "change_streams_update_full",
		"tombstones.on.delete":           "false",
		"key.converter":                  jsonConv,
		"key.converter.schemas.enable":   "false",
		"value.converter":                jsonConv,
		"value.converter.schemas.enable": "false",
		"snapshot.mode":                  "no_data",
		// Its snapshot query's batch size, as mongorelay's max.batch.size. Left at its
		// default (0: the server's), the stand-in answers with every document in one reply,
		// beyond the driver's 48 MB message limit (real servers cap a batch at 16 MiB).
		"snapshot.fetch.size": "2048",
	}
	if wl == "copy" {
		c["snapshot.mode"] = "initial"
	}
	return c
}

// peer runs a Kafka Connect connector on worker and measures the worker.
func (r *runner) peer(ctx context.Context, sys, wl string, m *measurement, worker *connectWorker) {
	p := r.loads[wl]
	prefix := m.prefix()
	topic := topicOf(prefix, p.coll)
	m.topic = topic
	if err := r.plain.createTopic(ctx, topic); err != nil {
		m.status = err.Error()
		return
	}
	c, err := newCounter(r.plain, topic, p.expected, wl == "latency")
	if err != nil {
		m.status = err.Error()
		return
	}
	defer c.close()
	name := prefix
	conf := r.peerConfig(sys, wl, p, prefix)
	pid := worker.p.Pid()
	if err := procstat.ResetPeak(pid); err != nil {
		m.note = err.Error()
	}
	defer func() {
		if err := worker.remove(context.WithoutCancel(ctx), name); err != nil && m.note == "" {
			m.note = err.Error()
		}
	}()
	var w *window
	if strings.HasPrefix(sys, "dbz-") && (wl == "insert" || wl == "mix") {
		// Debezium has no start-at-time option: its offset is set to the marker (partition and
		// offset as its MongoDbPartition and MongoDbOffsetContext write them), then it runs.
		if err := worker.create(ctx, name, conf, true); err != nil {
			m.status = err.Error()
			return
		}
		err := worker.setOffsets(ctx, name, map[string]any{"server_id": prefix},
			map[string]any{"sec": p.at.T, "ord": p.at.I, "resume_token": p.token})
		if err != nil {
			m.status = err.Error()
			return
		}
		w = r.begin(wl, pid)
		if err := worker.resume(ctx, name); err != nil {
			m.status = err.Error()
			return
		}
	} else {
		w = r.begin(wl, pid)
		if err := worker.create(ctx, name, conf, false); err != nil {
			m.status = err.Error()
			return
		}
	}
	logFrom := worker.logSize()
	failed := func() string {
		if worker.p.Exited() {
			return "the Connect worker exited: " + worker.p.Tail(1)
		}
		if trace := worker.failure(ctx, name); trace != "" {
			return trace
		}
		// Some failures leave the task RUNNING (Debezium logs a failed snapshot and waits):
		// an ERROR in the worker's log since this connector started counts as one.
		return worker.errorSince(logFrom)
	}
	if wl == "latency" {
		r.latencyRun(ctx, w, c, m, failed)
		return
	}
	r.awaitCount(ctx, w, c, m, failed)
	r.end(w, m)
}

// ------------------------------------------------------------------------------------- latency

// latencyRun waits until the system delivers a probe (it is streaming), then writes the paced
// inserts and collects each record's latency: consumer receive time − the writer's send time.
func (r *runner) latencyRun(ctx context.Context, w *window, c *counter, m *measurement, failed func() string) {
	coll := r.standinOf("latency").db.Collection(r.loads["latency"].coll)
	stop := make(chan struct{})
	probeErr := make(chan error, 1)
	go func() { probeErr <- probe(ctx, coll, stop) }()
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case <-c.probed:
			break wait
		case <-tick.C:
			if why := failed(); why != "" {
				m.status = "failed: " + why
			}
		case <-deadline.C:
			m.status = "no probe record arrived within 2 minutes of the start"
		case <-ctx.Done():
			m.status = "cancelled"
		}
		if m.status != "" {
			break
		}
	}
	close(stop)
	if err := <-probeErr; err != nil && m.status == "" {
		m.status = err.Error()
	}
	if m.status != "" {
		return
	}
	w2, rate, err := r.pacedWindow(ctx, w.pid, coll, m.expected)
	if err != nil {
		m.status = err.Error()
		return
	}
	r.awaitCount(ctx, w2, c, m, failed)
	r.end(w2, m)
	if !m.ok() {
		return
	}
	m.elapsed = 0
	m.lat = r.percentiles(m.system, c.latencies(), w2.t0, rate)
}

// percentiles summarises samples, leaving out those sent in the warm-up after start.
func (r *runner) percentiles(sys string, samples []latencySample, start time.Time, rate float64) *latencyResult {
	r.dumpLatencies(sys, samples, start)
	cut := start.Add(r.cfg.latencyWarmup)
	var d []time.Duration
	for _, s := range samples {
		if !s.sent.Before(cut) {
			d = append(d, s.received.Sub(s.sent))
		}
	}
	if len(d) == 0 {
		return &latencyResult{rate: rate}
	}
	var firstRecv, lastRecv time.Time
	for _, s := range samples {
		if firstRecv.IsZero() || s.received.Before(firstRecv) {
			firstRecv = s.received
		}
		if s.received.After(lastRecv) {
			lastRecv = s.received
		}
	}
	delivered := 0.0
	if span := lastRecv.Sub(firstRecv); span > 0 {
		delivered = float64(len(samples)-1) / span.Seconds()
	}
	slices.Sort(d)
	q := func(p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))] }
	return &latencyResult{p50: q(0.50), p99: q(0.99), max: d[len(d)-1], n: len(d), rate: rate, delivered: delivered}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// dumpLatencies keeps the raw samples for a closer look: "<ms since start of sends> <latency
// ms>" per record, in the order received.
func (r *runner) dumpLatencies(sys string, samples []latencySample, start time.Time) {
	f, err := os.Create(filepath.Join(r.cfg.work, sys+"-latency-samples.txt"))
	if err != nil {
		return
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	defer bw.Flush()
	for _, s := range samples {
		fmt.Fprintf(bw, "%.1f %.2f\n", ms(s.sent.Sub(start)), ms(s.received.Sub(s.sent)))
	}
}
