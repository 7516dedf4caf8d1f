package local_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/internal/testenv"
)

const (
	// perfEvents is how many events each measured read takes from the end of the oplog.
	perfEvents = 5000
	// perfBatch is the change stream batch size: several getMores per read, as a reader has.
	perfBatch = 1000
	// perfWarmups reads come first and are not counted: each instance is a fresh JVM whose
	// first reads run before the JIT has compiled the read path.
	perfWarmups = 3
	// perfReads is how many reads each figure is the median of.
	perfReads = 9
)

// TestChangeStreamReadRateIsFlat proves that the stand-in's bounded oplog seeks to where a
// change stream starts instead of scanning the whole oplog: reading the last 5,000 events is
// about as fast behind 200,000 oplog entries as behind 10,000.
//
// The same test measures other sizes, and the library's stock oplog, when asked (these runs are
// long and are not part of `make test`):
//
//	STANDIN_PERF_SIZES=10000,100000,1000000 STANDIN_PERF_OPLOG=stock go test -run ReadRateIsFlat -v -timeout 60m ./deploy/local/
//
// STANDIN_PERF_READ_TIMEOUT (a Go duration, default 2m) caps each read; a read that hits it is
// reported as slower than the cap. The flatness check applies to the bounded oplog only.
func TestChangeStreamReadRateIsFlat(t *testing.T) {
	oplog := envOr("STANDIN_PERF_OPLOG", "bounded")
	readTimeout, err := time.ParseDuration(envOr("STANDIN_PERF_READ_TIMEOUT", "2m"))
	if err != nil {
		t.Fatalf("STANDIN_PERF_READ_TIMEOUT: %v", err)
	}
	// Every instance starts with the same heap. With the JVM's default, a small initial heap
	// sizes the young generation by what an instance happened to load, and garbage collection,
	// not the oplog, then sets the figures.
	t.Setenv("JAVA_TOOL_OPTIONS", "-Xms1g")
	var targets []*perfTarget
	for _, size := range perfSizes(t) {
		targets = append(targets, loadPerfTarget(t, oplog, size))
	}

	// Reads alternate between the instances, so that a burst of load on the machine slows
	// every size alike instead of one.
	for round := range perfWarmups + perfReads {
		for _, target := range targets {
			target.read(t, round >= perfWarmups, readTimeout)
		}
	}
	rates := make([]float64, len(targets))
	for i, target := range targets {
		rates[i] = target.report(t, oplog, readTimeout)
	}
	if oplog != "bounded" {
		return
	}
	smallest, largest := targets[0], targets[len(targets)-1]
	for _, target := range targets {
		if target.timedOut {
			t.Fatalf("a read behind %d entries took over %s", target.size, readTimeout)
		}
	}
	// Half, not near 1: the figures move by 20% with the machine's load (a clean-clone CI run
	// once saw 78%), while an oplog that scans runs at about a tenth of the small one's rate
	// at 200,000 entries (the stock oplog's, in the README).
	if rates[len(rates)-1] < 0.5*rates[0] {
		t.Fatalf("reading %d events behind %d entries ran at %.0f events/s, below half the %.0f events/s behind %d entries: does the oplog scan instead of seeking?",
			perfEvents, largest.size, rates[len(rates)-1], rates[0], smallest.size)
	}
}

// perfTarget is a private stand-in whose oplog holds size inserts.
type perfTarget struct {
	size     int
	coll     *mongo.Collection
	start    bson.Timestamp // the cluster time of the last perfEvents inserts
	loaded   time.Duration
	took     []time.Duration
	timedOut bool
}

// loadPerfTarget starts a private stand-in and fills its oplog with size inserts.
func loadPerfTarget(t *testing.T, oplog string, size int) *perfTarget {
	t.Helper()
	ctx := context.Background()
	uri := testenv.StartMongo(t, "--oplog", oplog, "--oplog-max-entries", strconv.Itoa(size))
	target := &perfTarget{size: size, coll: newMongoClient(t, uri).Database("perf").Collection("docs")}
	began := time.Now()
	preload(t, ctx, target.coll, 0, size-perfEvents)
	// The last perfEvents inserts start in a new second, so that the cluster time
	// {T: that second, I: 0} starts a stream exactly at them on either oplog.
	startSecond := time.Now().Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(startSecond.Add(20 * time.Millisecond)))
	preload(t, ctx, target.coll, size-perfEvents, size)
	target.start = bson.Timestamp{T: uint32(startSecond.Unix())}
	target.loaded = time.Since(began)
	return target
}

// read reads the last perfEvents events once, and keeps the time it took if count is set.
func (p *perfTarget) read(t *testing.T, count bool, timeout time.Duration) {
	t.Helper()
	if p.timedOut {
		return
	}
	d, err := readFrom(context.Background(), p.coll, p.start, p.size-perfEvents, timeout)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		p.timedOut = true
	case err != nil:
		t.Fatalf("%d entries: %v", p.size, err)
	case count:
		p.took = append(p.took, d)
	}
}

// report logs the median read and returns its rate in events per second (for a read that
// timed out, the rate it would have had at the timeout, an upper bound).
func (p *perfTarget) report(t *testing.T, oplog string, timeout time.Duration) float64 {
	t.Helper()
	if p.timedOut {
		t.Logf("%s oplog, %d entries (loaded in %s): a read of %d events took over %s (under %.0f events/s); stopped measuring",
			oplog, p.size, p.loaded.Round(time.Millisecond), perfEvents, timeout, perfEvents/timeout.Seconds())
		return perfEvents / timeout.Seconds()
	}
	slices.Sort(p.took)
	median := p.took[len(p.took)/2]
	rate := perfEvents / median.Seconds()
	t.Logf("%s oplog, %d entries (loaded in %s): %d events in %s (median of %v) = %.0f events/s",
		oplog, p.size, p.loaded.Round(time.Millisecond), perfEvents, median.Round(time.Millisecond), p.took, rate)
	return rate
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// perfSizes returns the oplog sizes to measure, smallest first.
func perfSizes(t *testing.T) []int {
	t.Helper()
	var sizes []int
	for _, field := range strings.Split(envOr("STANDIN_PERF_SIZES", "10000,200000"), ",") {
		size, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || size < perfEvents {
			t.Fatalf("STANDIN_PERF_SIZES: %q is not a number of at least %d", field, perfEvents)
		}
		sizes = append(sizes, size)
	}
	slices.Sort(sizes)
	return sizes
}

// preload inserts documents with _id from (inclusive) to to (exclusive), in batches.
func preload(t *testing.T, ctx context.Context, coll *mongo.Collection, from, to int) {
	t.Helper()
	const batch = 10_000
	for lo := from; lo < to; lo += batch {
		docs := make([]any, 0, batch)
		for id := lo; id < min(lo+batch, to); id++ {
			docs = append(docs, bson.D{{Key: "_id", Value: int64(id)}, {Key: "n", Value: id}, {Key: "s", Value: "payload"}})
		}
		if _, err := coll.InsertMany(ctx, docs); err != nil {
			t.Fatalf("insert %d..%d: %v", lo, min(lo+batch, to), err)
		}
	}
}

// readFrom opens a change stream at start and reads perfEvents events, the first of which must
// be the insert of firstID; it returns how long that took.
func readFrom(ctx context.Context, coll *mongo.Collection, start bson.Timestamp, firstID int, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	began := time.Now()
	cs, err := coll.Watch(ctx, mongo.Pipeline{},
		options.ChangeStream().SetStartAtOperationTime(&start).SetBatchSize(perfBatch))
	if err != nil {
		return 0, fmt.Errorf("open change stream at %v: %w", start, err)
	}
	defer func() { _ = cs.Close(context.Background()) }()
	for i := range perfEvents {
		if !cs.Next(ctx) {
			return 0, fmt.Errorf("read event %d: %w", i, cs.Err())
		}
		if i == 0 {
			if id := cs.Current.Lookup("documentKey", "_id").AsInt64(); id != int64(firstID) {
				return 0, fmt.Errorf("the stream started at _id %d, not %d", id, firstID)
			}
		}
	}
	return time.Since(began), nil
}
