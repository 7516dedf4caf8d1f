package offsets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/errgroup"

	"github.com/mongorelay/mongorelay/internal/kafkatopic"
)

// DefaultTopic is the offsets topic's name unless the worker config says
// otherwise (offsets.topic).
const DefaultTopic = "mongorelay-offsets"

// ErrNotFound is returned by Get for a key with no offset.
var ErrNotFound = errors.New("no offset")

// Option configures Open.
type Option func(*options)

type options struct {
	partitions  int32
	replication int16
	clientOpts  []kgo.Opt
	ownOpts     []kgo.Opt // the store's long-lived client's alone
	logger      *slog.Logger
	clusterID   string
}

// Partitions sets the partition count used when Open creates the topic.
// Default 25, Kafka Connect's offset.storage.partitions: the topic stays
// small (compaction keeps one record per task), and more partitions only
// spread the load of many tasks committing at once. An existing topic is
// used as it is.
func Partitions(n int32) Option { return func(o *options) { o.partitions = n } }

// ReplicationFactor sets the replication factor used when Open creates the
// topic. Default -1: the broker's default.replication.factor (Kafka 2.4+).
// Set 3 in production if the brokers' default is lower; losing this topic
// loses every task's position.
func ReplicationFactor(n int16) Option { return func(o *options) { o.replication = n } }

// ClientOptions adds franz-go options (SASL, TLS, dialer, logger) to the
// store's client. They are applied after the store's own (no linger,
// idempotent writes acknowledged by all in-sync replicas), so they can
// override them.
func ClientOptions(opts ...kgo.Opt) Option {
	return func(o *options) { o.clientOpts = append(o.clientOpts, opts...) }
}

// OwnClientOptions adds franz-go options that only the store's own long-lived client takes,
// after ClientOptions: its client id and metrics hooks. The short-lived clients that read and
// write the topic's stamps (ClusterID) take ClientOptions alone, so that they never share an id
// with it.
func OwnClientOptions(opts ...kgo.Opt) Option {
	return func(o *options) { o.ownOpts = append(o.ownOpts, opts...) }
}

// Logger sets the logger. Default slog.Default().
func Logger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// ClusterID stamps the topic with the cluster that owns it (the worker's cluster.id): Open
// writes the stamp into a topic that has none, and refuses, with a
// *kafkatopic.OtherClusterError, a topic stamped by another cluster. Default "": no stamp is
// read or written (tools, tests).
func ClusterID(id string) Option { return func(o *options) { o.clusterID = id } }

// Entry is one key's offset; a nil Value is a tombstone.
type Entry struct {
	Key   Key
	Value *Value
}

// Store is the offsets topic loaded into memory. It is safe for concurrent
// use. Get reads memory; Commit writes the topic and updates memory once the
// brokers acknowledge; Refresh reads what other writers (other nodes) have
// committed since.
type Store struct {
	topic string
	cl    *kgo.Client
	adm   *kadm.Client
	log   *slog.Logger

	mu sync.RWMutex
	// offsets holds the latest record of every key read or written, by key
	// bytes; a tombstone stays as a nil value, so that a refresh re-reading
	// an older record of the key cannot bring it back.
	offsets map[string]stored
	// byColl indexes offsets by collection: the key bytes of every key of one connector's
	// collection, so the per-collection queries read those keys instead of all of them.
	byColl map[collection]map[string]struct{}

	// refreshMu serialises Refresh; next is guarded by it and holds, per
	// partition, the first offset not read yet (refresh.go).
	refreshMu sync.Mutex
	next      map[int32]int64
}

// collection names one connector's collection, the unit of the per-collection queries.
type collection struct{ connector, db, coll string }

type stored struct {
	key       Key
	value     *Value // nil: deleted by a tombstone
	partition int32
	offset    int64
	timestamp time.Time
}

// Open connects to brokers, creates topic if it is missing (compacted, with
// the partitions and replication factor of the options), checks that an
// existing one is compacted, and loads every key's latest offset from an
// existing one, reading each partition up to its last stable offset with
// read_committed so that offsets written inside aborted transactions never
// count.
func Open(ctx context.Context, brokers []string, topic string, opts ...Option) (*Store, error) {
	o := options{partitions: 25, replication: -1, logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ProducerLinger(0),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	}, slices.Concat(o.clientOpts, o.ownOpts)...)...)
	if err != nil {
		return nil, fmt.Errorf("offsets topic %s: create Kafka client: %w", topic, err)
	}
	s := &Store{
		topic:   topic,
		cl:      cl,
		adm:     kadm.NewClient(cl),
		log:     o.logger.With("topic", topic),
		offsets: make(map[string]stored),
		byColl:  make(map[collection]map[string]struct{}),
		next:    make(map[int32]int64),
	}
	created, err := s.ensureTopic(ctx, o.partitions, o.replication)
	if err != nil {
		cl.Close()
		return nil, err
	}
	if o.clusterID != "" {
		claimOpts := append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, o.clientOpts...)
		if err := kafkatopic.Claim(ctx, claimOpts, Stamp(topic), o.clusterID); err != nil {
			cl.Close()
			return nil, err
		}
	}
	// A topic this call created holds nothing yet: there is nothing to load. Records another
	// writer commits meanwhile are read by the next Refresh, which starts unknown partitions
	// at 0.
	if created {
		return s, nil
	}
	if err := s.load(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the client. Commits in flight fail.
func (s *Store) Close() { s.cl.Close() }

// ensureTopic creates the topic if it is missing and checks an existing
// one. Existence is asked first, so a client allowed to use the topic but
// not to create topics works with one an administrator made.
func (s *Store) ensureTopic(ctx context.Context, partitions int32, replication int16) (created bool, err error) {
	md, err := s.adm.Metadata(ctx, s.topic)
	if err != nil {
		return false, fmt.Errorf("look up offsets topic %s: %w", s.topic, err)
	}
	if td, ok := md.Topics[s.topic]; !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		resp, err := s.adm.CreateTopic(ctx, partitions, replication,
			map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, s.topic)
		switch {
		case err == nil:
			s.log.Info("created the offsets topic", "partitions", resp.NumPartitions, "replication_factor", resp.ReplicationFactor)
			return true, kafkatopic.AwaitLeaders(ctx, s.cl, s.topic)
		case !errors.Is(err, kerr.TopicAlreadyExists): // another node won the race
			return false, fmt.Errorf("create offsets topic %s: %w", s.topic, err)
		}
	} else if td.Err != nil {
		return false, fmt.Errorf("look up offsets topic %s: %w", s.topic, td.Err)
	}
	rc, err := kafkatopic.DescribeConfigs(ctx, s.adm, s.topic)
	if err != nil {
		return false, fmt.Errorf("describe offsets topic %s: %w", s.topic, err)
	}
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && strings.TrimSpace(c.MaybeValue()) != "compact" {
			// Kafka Connect refuses such an offsets topic too
			// (verifyTopicCleanupPolicyOnlyCompact): with deletion,
			// retention would eventually drop the offsets of idle
			// tasks.
			return false, fmt.Errorf("offsets topic %s has cleanup.policy=%s; it must be compact "+
				"(kafka-configs --alter --entity-type topics --entity-name %s --add-config cleanup.policy=compact)",
				s.topic, c.MaybeValue(), s.topic)
		}
	}
	return false, nil
}

// load reads every partition from its start to its last stable offset,
// partitions in parallel.
func (s *Store) load(ctx context.Context) error {
	start := time.Now()
	starts, err := s.listOffsets(ctx, s.adm.ListStartOffsets)
	var ends kadm.ListedOffsets
	if err == nil {
		ends, err = s.listOffsets(ctx, s.adm.ListCommittedOffsets)
	}
	if err != nil {
		return fmt.Errorf("list offsets of %s: %w", s.topic, err)
	}
	from := map[int32]int64{}
	ends.Each(func(end kadm.ListedOffset) {
		start, _ := starts.Lookup(end.Topic, end.Partition)
		from[end.Partition] = start.Offset
	})
	if err := s.readTo(ctx, from, ends); err != nil {
		return err
	}
	s.mu.RLock()
	n := 0
	for _, e := range s.offsets {
		if e.value != nil {
			n++
		}
	}
	s.mu.RUnlock()
	s.log.Info("loaded offsets", "keys", n, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// readTo reads every partition from its offset in from up to its offset in
// ends, partitions in parallel, and records in s.next where each read
// stopped. The caller holds refreshMu, or is Open.
func (s *Store) readTo(ctx context.Context, from map[int32]int64, ends kadm.ListedOffsets) error {
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	ends.Each(func(end kadm.ListedOffset) {
		offset := from[end.Partition]
		if offset >= end.Offset {
			mu.Lock()
			s.next[end.Partition] = offset
			mu.Unlock()
			return
		}
		g.Go(func() error {
			reached, err := s.loadPartition(gctx, end.Partition, offset, end.Offset)
			mu.Lock()
			s.next[end.Partition] = reached
			mu.Unlock()
			return err
		})
	})
	return g.Wait()
}

// loadPartition fetches one partition with raw Fetch requests rather than a
// consumer, because only the fetch tells where the next read starts: control
// records, aborted batches and compacted-away tails all advance it without
// yielding a record, and a consumer waiting for a record at end-1 could wait
// for ever. It returns the offset it read up to: end, or where it stopped.
func (s *Store) loadPartition(ctx context.Context, partition int32, offset, end int64) (int64, error) {
	for offset < end {
		var resp *kmsg.FetchResponse
		err := retry(ctx, func() error {
			var err error
			resp, err = s.fetch(ctx, partition, offset)
			return err
		})
		if errors.Is(err, kerr.OffsetOutOfRange) {
			// Records were deleted under us (kafka-delete-records):
			// what is gone cannot be read, carry on from the new start.
			next, err := s.startOffset(ctx, partition, offset)
			if err != nil {
				return offset, err
			}
			offset = next
			continue
		}
		if err != nil {
			return offset, fmt.Errorf("read %s partition %d at offset %d: %w", s.topic, partition, offset, err)
		}
		next := offset
		for _, t := range resp.Topics {
			for i := range t.Partitions {
				rp := &t.Partitions[i]
				if rp.Partition != partition {
					continue
				}
				fp, n := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
					Offset:         offset,
					IsolationLevel: kgo.ReadCommitted(),
					Topic:          s.topic,
					Partition:      partition,
				}, rp, kgo.DefaultDecompressor(), nil)
				if fp.Err != nil {
					return offset, fmt.Errorf("read %s partition %d at offset %d: %w", s.topic, partition, offset, fp.Err)
				}
				for _, r := range fp.Records {
					s.loadRecord(r)
				}
				next = n
			}
		}
		if next <= offset {
			// Nothing readable between offset and the end: the rest
			// was compacted away.
			return end, nil
		}
		offset = next
	}
	return offset, nil
}

// startOffset returns the partition's log start offset after an
// out-of-range fetch at offset.
func (s *Store) startOffset(ctx context.Context, partition int32, offset int64) (int64, error) {
	starts, err := s.adm.ListStartOffsets(ctx, s.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("list start offsets of %s: %w", s.topic, err)
	}
	start, _ := starts.Lookup(s.topic, partition)
	if start.Offset <= offset {
		return 0, fmt.Errorf("read %s partition %d: offset %d is out of range though the log starts at %d",
			s.topic, partition, offset, start.Offset)
	}
	s.log.Warn("offsets records were deleted; reading on from the partition's new start",
		"partition", partition, "from", offset, "to", start.Offset)
	return start.Offset, nil
}

// fetch asks the partition's leader for records at offset. Only this one
// partition is asked for, so the response is never cut short by another
// partition filling the response's byte limit.
func (s *Store) fetch(ctx context.Context, partition int32, offset int64) (*kmsg.FetchResponse, error) {
	md, err := s.adm.Metadata(ctx, s.topic)
	if err != nil {
		return nil, err
	}
	td := md.Topics[s.topic]
	if td.Err != nil {
		return nil, td.Err
	}
	pd, ok := td.Partitions[partition]
	if !ok || pd.Err != nil || pd.Leader < 0 {
		return nil, fmt.Errorf("partition %d has no leader: %w", partition, kerr.LeaderNotAvailable)
	}

	req := kmsg.NewPtrFetchRequest()
	req.IsolationLevel = 1 // read_committed
	req.MaxBytes = 16 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = s.topic, td.ID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = offset
	rp.CurrentLeaderEpoch = pd.LeaderEpoch
	rp.PartitionMaxBytes = 8 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)

	kresp, err := s.cl.Broker(int(pd.Leader)).Request(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil && p.Partition == partition {
				return nil, err
			}
		}
	}
	return resp, nil
}

// retry runs fn until it succeeds, fails with an error Kafka does not call
// retriable, or ctx ends; a topic just created has no leaders for a moment.
func retry(ctx context.Context, fn func() error) error {
	backoff := 50 * time.Millisecond
	for {
		err := fn()
		if err == nil || !kerr.IsRetriable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// loadRecord applies one record read from the topic; stamps are skipped.
func (s *Store) loadRecord(r *kgo.Record) {
	if _, ok := StampCluster(r.Key); ok {
		return
	}
	if err := s.apply(r); err != nil {
		s.log.Warn("ignoring an offsets record", "partition", r.Partition, "offset", r.Offset, "err", err)
	}
}

// apply puts a record's key and value in memory: the latest record of a key
// wins, a tombstone deletes it. A key seen in two partitions (a producer
// that partitioned it differently) keeps the newer record by timestamp.
func (s *Store) apply(r *kgo.Record) error {
	k, err := ParseKey(r.Key)
	if err != nil {
		return err
	}
	var v *Value
	if r.Value != nil {
		if v, err = DecodeValue(r.Value); err != nil {
			return fmt.Errorf("key %s: %w", r.Key, err)
		}
	}
	id := string(r.Key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.offsets[id]; ok {
		switch {
		case old.partition != r.Partition:
			s.log.Warn("offset key found in two partitions; keeping the newer record",
				"key", id, "partitions", []int32{old.partition, r.Partition})
			if r.Timestamp.Before(old.timestamp) {
				return nil
			}
		case r.Offset < old.offset:
			// A refresh re-reading what this store wrote itself since, or
			// an acknowledgement arriving after a newer record was read.
			return nil
		}
	}
	s.offsets[id] = stored{key: k, value: v, partition: r.Partition, offset: r.Offset, timestamp: r.Timestamp}
	c := collection{k.Connector, k.DB, k.Coll}
	if s.byColl[c] == nil {
		s.byColl[c] = make(map[string]struct{})
	}
	s.byColl[c][id] = struct{}{}
	return nil
}

// SnapshotRanges returns copies of the snapshot range offsets of one connector's collection
// ({"snapshot":"r-of-m"}, every m), ordered by m, then r.
func (s *Store) SnapshotRanges(connector, db, coll string) []Entry {
	return s.collectionEntries(collection{connector, db, coll}, true)
}

// ShardOffsets returns copies of the stream offsets of one connector's collection
// ({"shard":"i-of-n"}, every n), ordered by n, then i.
func (s *Store) ShardOffsets(connector, db, coll string) []Entry {
	return s.collectionEntries(collection{connector, db, coll}, false)
}

func (s *Store) collectionEntries(c collection, snapshot bool) []Entry {
	s.mu.RLock()
	var out []Entry
	for id := range s.byColl[c] {
		if e := s.offsets[id]; e.key.Snapshot == snapshot && e.value != nil {
			out = append(out, Entry{Key: e.key, Value: e.value.clone()})
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Entry) int {
		if a.Key.Count != b.Key.Count {
			return a.Key.Count - b.Key.Count
		}
		return a.Key.Index - b.Key.Index
	})
	return out
}

// Get returns a copy of k's offset, or ErrNotFound.
func (s *Store) Get(k Key) (*Value, error) {
	s.mu.RLock()
	e, ok := s.offsets[string(k.Bytes())]
	s.mu.RUnlock()
	if !ok || e.value == nil {
		return nil, fmt.Errorf("%w for %s", ErrNotFound, k)
	}
	return e.value.clone(), nil
}

// List returns copies of every offset of a connector, ordered by key.
func (s *Store) List(connector string) []Entry {
	s.mu.RLock()
	var out []Entry
	for _, e := range s.offsets {
		if e.key.Connector == connector && e.value != nil {
			out = append(out, Entry{Key: e.key, Value: e.value.clone()})
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Key.String(), b.Key.String()) })
	return out
}

// Record builds the exact record that commits v for k (v nil: a
// tombstone), for a transactional producer to write in its own transaction;
// after that transaction commits, pass the record to Apply. A zero Version
// or UpdatedMs in v is filled in (FormatVersion, now); v is not modified.
func (s *Store) Record(k Key, v *Value) *kgo.Record {
	r := &kgo.Record{Topic: s.topic, Key: k.Bytes()}
	if v != nil {
		v = v.clone()
		if v.Version == 0 {
			v.Version = FormatVersion
		}
		if v.UpdatedMs == 0 {
			v.UpdatedMs = time.Now().UnixMilli()
		}
		r.Value = v.encode()
	}
	return r
}

// Apply records in memory a record the caller wrote and committed itself
// (built by Record), so Get sees it.
func (s *Store) Apply(r *kgo.Record) error {
	if r.Topic != s.topic {
		return fmt.Errorf("apply offset record: topic %q is not the offsets topic %q", r.Topic, s.topic)
	}
	return s.apply(r)
}

// Commit writes v as k's offset (v nil: deletes k) and returns once the
// brokers have acknowledged it; Get returns it from then on.
func (s *Store) Commit(ctx context.Context, k Key, v *Value) error {
	return s.CommitMany(ctx, []Entry{{Key: k, Value: v}})
}

// CommitMany writes several offsets in one round trip per partition and
// returns once all are acknowledged, or the first error. Offsets
// acknowledged before an error are applied all the same.
func (s *Store) CommitMany(ctx context.Context, entries []Entry) error {
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	done := make(chan struct{})
	for _, e := range entries {
		r := s.Record(e.Key, e.Value)
		wg.Add(1)
		// The client calls promises of one partition in order, and a
		// key always maps to one partition, so memory follows the
		// topic's order per key.
		s.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err == nil {
				err = s.apply(r)
			}
			if err != nil {
				errMu.Lock()
				if first == nil {
					first = fmt.Errorf("commit offset %s: %w", r.Key, err)
				}
				errMu.Unlock()
			}
		})
	}
	// The client fails records whose ctx ends before they are sent; one
	// already in flight is waited for by this goroutine, which ends when
	// the brokers answer or Close fails it.
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		errMu.Lock()
		defer errMu.Unlock()
		return first
	case <-ctx.Done():
		return fmt.Errorf("commit %d offsets: %w", len(entries), ctx.Err())
	}
}
