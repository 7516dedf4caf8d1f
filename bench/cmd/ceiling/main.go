// Command ceiling measures what the libraries under mongorelay can do alone, as separate
// processes so their CPU time and memory can be read from /proc like any system's:
//
//	ceiling read     the Go driver reading a change stream (no Kafka)    ceiling A
//	ceiling copy     the Go driver reading a collection in _id order     ceiling A (initial copy)
//	ceiling produce  franz-go producing records (no MongoDB)             ceiling B
//	ceiling pipe     both at once: each change event's raw BSON produced as the record value
//	                 (key: its documentKey), no envelope, no Avro, no offsets   ceiling AB
//
// Protocol with bench/cmd/benchrun: it prints READY when its clock may start (after loading
// what it replays, for produce), DONE events=<n> bytes=<n> when the work is done, then waits
// for stdin to close before exiting, so the caller can read /proc after the work.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/bench/internal/workload"
	"github.com/mongorelay/mongorelay/tasks"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "ceiling: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: ceiling read|copy|produce|pipe [flags]")
	}
	var err error
	switch args[0] {
	case "read":
		err = runRead(ctx, args[1:])
	case "copy":
		err = runCopy(ctx, args[1:])
	case "produce":
		err = runProduce(ctx, args[1:])
	case "pipe":
		err = runPipe(ctx, args[1:])
	default:
		return fmt.Errorf("unknown command %q: want read, copy, produce or pipe", args[0])
	}
	if err != nil {
		return err
	}
	// Stay alive, idle, until the caller has read /proc and closes stdin.
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

func connect(ctx context.Context, uri string) (*mongo.Client, error) {
	mc, err := mongo.Connect(options.Client().ApplyURI(uri).SetAppName("bench-ceiling"))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", uri, err)
	}
	if err := mc.Ping(ctx, nil); err != nil {
		return nil, fmt.Errorf("ping %s: %w", uri, err)
	}
	return mc, nil
}

// source is the collection a reading mode reads, and how, from the flags they share.
type source struct {
	uri, db, coll *string
	count, batch  *int
}

// sourceFlags defines the shared flags on fs; count says what -count counts.
func sourceFlags(fs *flag.FlagSet, count string) source {
	return source{
		uri:   fs.String("mongo", "", "MongoDB connection string"),
		db:    fs.String("db", "", "database"),
		coll:  fs.String("coll", "", "collection"),
		count: fs.Int("count", 0, count),
		batch: fs.Int("batch", 2048, "server batch size (mongorelay's max.batch.size)"),
	}
}

// open connects and returns the client, to disconnect when done, and the collection.
func (s source) open(ctx context.Context) (*mongo.Client, *mongo.Collection, error) {
	mc, err := connect(ctx, *s.uri)
	if err != nil {
		return nil, nil, err
	}
	return mc, mc.Database(*s.db).Collection(*s.coll), nil
}

func (s source) String() string { return *s.db + "." + *s.coll }

// findInOrder reads coll in _id order, as mongorelay's snapshot reader does.
func findInOrder(ctx context.Context, coll *mongo.Collection, batch int) (*mongo.Cursor, error) {
	return coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(int32(batch)))
}

// watch opens coll's change stream as a mongorelay task does (fullDocument updateLookup, its
// batch size and poll.max.wait.ms), after the token after, or from now when after is empty.
func watch(ctx context.Context, coll *mongo.Collection, batch int, after string) (*mongo.ChangeStream, error) {
	opts := options.ChangeStream().SetFullDocument(options.UpdateLookup).SetBatchSize(int32(batch)).
		SetMaxAwaitTime(500 * time.Millisecond)
	if after != "" {
		opts.SetResumeAfter(bson.D{{Key: "_data", Value: after}})
	}
	return coll.Watch(ctx, mongo.Pipeline{}, opts)
}

// runRead reads a change stream as a mongorelay task does (same batch size, fullDocument
// updateLookup, resumeAfter the start token), touching every event's bytes and nothing else.
// With -latency it starts from now and writes each event's send time and receive time.
func runRead(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("read", flag.ContinueOnError)
	src := sourceFlags(fs, "events to read")
	after := fs.String("resume-after", "", "resume token _data to start after (empty: now)")
	latencyOut := fs.String("latency", "", "write '<sent_ns> <received_ns>' per event to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	mc, coll, err := src.open(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = mc.Disconnect(context.WithoutCancel(ctx)) }()
	cs, err := watch(ctx, coll, *src.batch, *after)
	if err != nil {
		return fmt.Errorf("watch %s: %w", src, err)
	}
	defer func() { _ = cs.Close(context.WithoutCancel(ctx)) }()
	fmt.Println("READY")

	var out *bufio.Writer
	if *latencyOut != "" {
		f, err := os.Create(*latencyOut)
		if err != nil {
			return err
		}
		defer f.Close()
		out = bufio.NewWriter(f)
		defer out.Flush()
	}
	var n, bytes int64
	for n < int64(*src.count) {
		if !cs.Next(ctx) {
			return fmt.Errorf("change stream ended after %d of %d events: %w", n, *src.count, cs.Err())
		}
		n++
		bytes += int64(len(cs.Current))
		if out != nil {
			now := time.Now()
			if sent, ok := workload.FindLatencyMarker(cs.Current); ok {
				fmt.Fprintf(out, "%d %d\n", sent.UnixNano(), now.UnixNano())
			}
		}
	}
	if out != nil {
		if err := out.Flush(); err != nil {
			return err
		}
	}
	fmt.Printf("DONE events=%d bytes=%d\n", n, bytes)
	return nil
}

// runCopy reads a collection in _id order in batches, as mongorelay's snapshot reader does.
func runCopy(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("copy", flag.ContinueOnError)
	src := sourceFlags(fs, "documents expected")
	if err := fs.Parse(args); err != nil {
		return err
	}
	mc, coll, err := src.open(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = mc.Disconnect(context.WithoutCancel(ctx)) }()
	fmt.Println("READY")
	cur, err := findInOrder(ctx, coll, *src.batch)
	if err != nil {
		return fmt.Errorf("find in %s: %w", src, err)
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	var n, bytes int64
	for cur.Next(ctx) {
		n++
		bytes += int64(len(cur.Current))
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("read %s: %w", src, err)
	}
	if n != int64(*src.count) {
		return fmt.Errorf("read %d documents from %s, want %d", n, src, *src.count)
	}
	fmt.Printf("DONE events=%d bytes=%d\n", n, bytes)
	return nil
}

// producer writes records as a mongorelay task does (tasks/txn.go; DESIGN.md 6): through
// transactional producers with the task's settings (tasks.Transactional.InitID) whose
// transaction commits once it is tasks.TxnMaxAge old or holds tasks.TxnMaxBatches × 2,048
// records (max.batch.size), or when the caller says it has caught up. Like a task, it
// alternates its transactions between the two ids of tasks.TransactionalIDs, so that a
// transaction does not wait for the markers of the one before. With an empty id it produces
// without transactions.
type producer struct {
	// cl writes the open transaction, or the next one; rested wrote the one before (nil
	// without transactions).
	cl, rested *kgo.Client
	txn        bool
	open       bool
	began      time.Time
	records    int
	firstErr   error
}

const txnMaxRecords = tasks.TxnMaxBatches * 2048

func newProducer(ctx context.Context, brokers []string, txnID string) (*producer, error) {
	// mongorelay's default producer.compression.type is none.
	if txnID == "" {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, tasks.ProducerOpts(kgo.NoCompression())...)...)
		if err != nil {
			return nil, err
		}
		if err := cl.Ping(ctx); err != nil {
			cl.Close()
			return nil, fmt.Errorf("reach Kafka at %v: %w", brokers, err)
		}
		return &producer{cl: cl}, nil
	}
	tx := tasks.Transactional{ClientOpts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, Compression: kgo.NoCompression()}
	ids := tasks.TransactionalIDs(txnID)
	cl, err := tx.InitID(ctx, ids[0])
	if err != nil {
		return nil, err
	}
	rested, err := tx.InitID(ctx, ids[1])
	if err != nil {
		cl.Close()
		return nil, err
	}
	return &producer{cl: cl, rested: rested, txn: true}, nil
}

func (p *producer) produce(ctx context.Context, r *kgo.Record) error {
	if p.txn && !p.open {
		if err := p.cl.BeginTransaction(); err != nil {
			return err
		}
		p.open, p.began, p.records = true, time.Now(), 0
	}
	p.cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
		if err != nil && p.firstErr == nil {
			p.firstErr = err // promises run serially
		}
	})
	p.records++
	if p.txn && (p.records >= txnMaxRecords || time.Since(p.began) >= tasks.TxnMaxAge) {
		return p.commit(ctx)
	}
	return nil
}

func (p *producer) commit(ctx context.Context) error {
	if err := p.cl.Flush(ctx); err != nil {
		return err
	}
	if p.txn && p.open {
		p.open = false
		if err := p.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return fmt.Errorf("commit transaction: %w", err)
		}
		p.cl, p.rested = p.rested, p.cl
	}
	return p.firstErr
}

func (p *producer) close() {
	p.cl.Close()
	if p.rested != nil {
		p.rested.Close()
	}
}

// runProduce produces records to a topic: the records of another topic replayed (the same
// sizes and contents as a system wrote them, so the same compression ratio), or, with -rate,
// paced records carrying a latency marker.
func runProduce(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("produce", flag.ContinueOnError)
	brokers := fs.String("brokers", "", "Kafka bootstrap servers")
	from := fs.String("from-topic", "", "replay this topic's records (loaded before the clock starts)")
	to := fs.String("to-topic", "", "topic to produce to")
	count := fs.Int("count", 0, "records to produce")
	rate := fs.Int("rate", 0, "paced mode: records per second, each with a latency marker")
	valueSize := fs.Int("value-size", 1000, "paced mode: value size in bytes")
	txnID := fs.String("transactional-id", "", "produce in transactions as a mongorelay task does (empty: without)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	seeds := strings.Split(*brokers, ",")
	var keys, values [][]byte
	if *rate == 0 {
		var err error
		if keys, values, err = load(ctx, seeds, *from, *count); err != nil {
			return err
		}
	}
	pr, err := newProducer(ctx, seeds, *txnID)
	if err != nil {
		return err
	}
	defer pr.close()
	fmt.Println("READY")

	var bytes int64
	if *rate == 0 {
		for i := range keys {
			bytes += int64(len(keys[i]) + len(values[i]))
			if err := pr.produce(ctx, &kgo.Record{Topic: *to, Key: keys[i], Value: values[i]}); err != nil {
				return err
			}
		}
	} else {
		pad := strings.Repeat("x", max(0, *valueSize-40))
		start := time.Now()
		interval := time.Second / time.Duration(*rate)
		for i := range *count {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
			v := []byte(workload.LatencyMarker(time.Now()) + pad)
			bytes += int64(len(v))
			if err := pr.produce(ctx, &kgo.Record{Topic: *to, Key: fmt.Appendf(nil, "%d", i), Value: v}); err != nil {
				return err
			}
		}
	}
	if err := pr.commit(ctx); err != nil {
		return fmt.Errorf("produce to %s: %w", *to, err)
	}
	fmt.Printf("DONE events=%d bytes=%d\n", *count, bytes)
	return nil
}

// load reads the first count non-tombstone records of topic.
func load(ctx context.Context, seeds []string, topic string, count int) (keys, values [][]byte, err error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for len(values) < count {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("load %d records of %s: got %d: %w", count, topic, len(values), err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Value != nil && len(values) < count {
				keys = append(keys, r.Key)
				values = append(values, r.Value)
			}
		})
	}
	return keys, values, nil
}

// runPipe is the least a change-stream-to-Kafka pipeline can do with these two libraries on
// this machine: the change stream read as in runRead (or the collection as in runCopy, with
// -copy), every event's raw BSON produced as in runProduce, both at once. What mongorelay adds
// (envelope, Avro, registry, ordered acks, offsets) is the difference.
func runPipe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pipe", flag.ContinueOnError)
	src := sourceFlags(fs, "events to pipe")
	after := fs.String("resume-after", "", "resume token _data to start after (empty: now)")
	copyColl := fs.Bool("copy", false, "read the collection in _id order instead of its change stream")
	brokers := fs.String("brokers", "", "Kafka bootstrap servers")
	to := fs.String("to-topic", "", "topic to produce to")
	txnID := fs.String("transactional-id", "", "produce in transactions as a mongorelay task does (empty: without)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	mc, c, err := src.open(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = mc.Disconnect(context.WithoutCancel(ctx)) }()
	pr, err := newProducer(ctx, strings.Split(*brokers, ","), *txnID)
	if err != nil {
		return err
	}
	defer pr.close()
	// next advances the cursor (idle: the server had nothing new); current is its document;
	// caughtUp says whether it ended a server batch short of the batch size; keyField names the
	// record key.
	var next func() (ok, idle bool)
	caughtUp := func() bool { return false }
	var current func() bson.Raw
	var cursorErr func() error
	keyField := "documentKey"
	if *copyColl {
		cur, err := findInOrder(ctx, c, *src.batch)
		if err != nil {
			return fmt.Errorf("find in %s: %w", src, err)
		}
		defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
		next = func() (bool, bool) { return cur.Next(ctx), false }
		current, cursorErr, keyField = func() bson.Raw { return cur.Current }, cur.Err, "_id"
	} else {
		cs, err := watch(ctx, c, *src.batch, *after)
		if err != nil {
			return fmt.Errorf("watch %s: %w", src, err)
		}
		defer func() { _ = cs.Close(context.WithoutCancel(ctx)) }()
		inBatch := 0 // events taken from the current server batch
		next = func() (bool, bool) {
			if cs.TryNext(ctx) {
				inBatch++
				return true, false
			}
			return cs.Err() == nil, true
		}
		caughtUp = func() bool {
			if cs.RemainingBatchLength() > 0 {
				return false
			}
			short := inBatch < *src.batch
			inBatch = 0
			return short
		}
		current, cursorErr = func() bson.Raw { return cs.Current }, cs.Err
	}
	fmt.Println("READY")
	var n, bytes int64
	for n < int64(*src.count) {
		ok, idle := next()
		if !ok {
			return fmt.Errorf("cursor ended after %d of %d: %w", n, *src.count, cursorErr())
		}
		if idle {
			// Like a task: an empty server batch is the moment to commit what is open.
			if pr.open {
				if err := pr.commit(ctx); err != nil {
					return err
				}
			}
			continue
		}
		raw := current()
		r := &kgo.Record{Topic: *to, Key: append([]byte(nil), raw.Lookup(keyField).Value...), Value: append([]byte(nil), raw...)}
		bytes += int64(len(r.Key) + len(r.Value))
		if err := pr.produce(ctx, r); err != nil {
			return err
		}
		n++
		// Like a task: a server batch that was not full means the stream has caught up, the
		// moment to commit what is open rather than wait for more.
		if caughtUp() && pr.open {
			if err := pr.commit(ctx); err != nil {
				return err
			}
		}
	}
	if err := pr.commit(ctx); err != nil {
		return fmt.Errorf("produce to %s: %w", *to, err)
	}
	fmt.Printf("DONE events=%d bytes=%d\n", n, bytes)
	return nil
}
