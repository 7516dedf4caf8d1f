package offsets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const testTopic = "mongorelay-offsets"

func newCluster(t *testing.T) (*kfake.Cluster, []string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var quiet = Logger(slog.New(slog.NewTextHandler(io.Discard, nil)))

func open(t *testing.T, brokers []string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(testCtx(t), brokers, testTopic, append([]Option{quiet}, opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func adminFor(t *testing.T, brokers []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func at(t *testing.T, tok string) *Value {
	t.Helper()
	v, err := ResumeAt(tok)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustGet(t *testing.T, s *Store, k Key) *Value {
	t.Helper()
	v, err := s.Get(k)
	if err != nil {
		t.Fatalf("Get(%s): %v", k, err)
	}
	return v
}

// Tokens of one collection's history, in order (crate/commons-codec
// tests/transform/mongodb/test_mongodb_cdc.py).
const (
	tokInsert = "82669683C2000000022B042C0100296E5A1004413F85D5B4CF4680AA4D17641E9DF22D463C6F7065726174696F6E54797065003C696E736572740046646F63756D656E744B65790046645F69640064669683C2B0750B2C84893F3E000004"
	tokUpdate = "82669683C2000000032B042C0100296E5A1004413F85D5B4CF4680AA4D17641E9DF22D463C6F7065726174696F6E54797065003C7570646174650046646F63756D656E744B65790046645F69640064669683C2B0750B2C84893F3E000004"
	tokPBRT   = "8263515EAC000000022B0429296E1404"
)

func TestStoreCreatesCompactedTopic(t *testing.T) {
	_, brokers := newCluster(t)
	open(t, brokers, Partitions(5))
	adm := adminFor(t, brokers)
	ctx := testCtx(t)

	configs, err := adm.DescribeTopicConfigs(ctx, testTopic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := configs.On(testTopic, nil)
	if err != nil {
		t.Fatal(err)
	}
	var policy string
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" {
			policy = c.MaybeValue()
		}
	}
	if policy != "compact" {
		t.Errorf("cleanup.policy = %q, want compact", policy)
	}
	md, err := adm.Metadata(ctx, testTopic)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(md.Topics[testTopic].Partitions); n != 5 {
		t.Errorf("partitions = %d, want 5", n)
	}
	// A second store finds the topic and leaves it alone.
	open(t, brokers, Partitions(9))
	md, _ = adm.Metadata(ctx, testTopic)
	if n := len(md.Topics[testTopic].Partitions); n != 5 {
		t.Errorf("partitions after reopening = %d, want 5", n)
	}
}

func TestStoreRefusesUncompactedTopic(t *testing.T) {
	_, brokers := newCluster(t)
	adm := adminFor(t, brokers)
	if _, err := adm.CreateTopic(testCtx(t), 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("delete")}, testTopic); err != nil {
		t.Fatal(err)
	}
	_, err := Open(testCtx(t), brokers, testTopic, quiet)
	if err == nil || !strings.Contains(err.Error(), "must be compact") {
		t.Fatalf("Open on a cleanup.policy=delete topic: %v, want a refusal", err)
	}
}

func TestStoreCommitReopen(t *testing.T) {
	_, brokers := newCluster(t)
	s := open(t, brokers)
	ctx := testCtx(t)

	orders0 := ShardKey("cdc", "shop", "orders", 0, 2)
	orders1 := ShardKey("cdc", "shop", "orders", 1, 2)
	users := ShardKey("cdc", "shop", "users", 0, 1)
	other := ShardKey("other", "shop", "orders", 0, 1)
	rng := SnapshotKey("cdc", "shop", "orders", 0, 4)

	if _, err := s.Get(orders0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get on an empty store: %v, want ErrNotFound", err)
	}
	if err := s.Commit(ctx, orders0, at(t, tokInsert)); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitMany(ctx, []Entry{
		{Key: orders0, Value: at(t, tokUpdate)}, // latest wins
		{Key: orders1, Value: at(t, tokInsert)},
		{Key: users, Value: at(t, tokPBRT)},
		{Key: other, Value: at(t, tokPBRT)},
		{Key: rng, Value: &Value{ClusterTime: &ClusterTime{T: 1721140162, I: 1},
			Snapshot: &Snapshot{LastID: `{"$numberInt":"41"}`, Copied: 41}}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, orders1, nil); err != nil { // tombstone
		t.Fatal(err)
	}

	check := func(t *testing.T, s *Store) {
		t.Helper()
		if got := mustGet(t, s, orders0).ResumeToken.Data; got != tokUpdate {
			t.Errorf("orders#0 = %s, want the update's token", got)
		}
		if _, err := s.Get(orders1); !errors.Is(err, ErrNotFound) {
			t.Errorf("orders#1 after a tombstone: %v, want ErrNotFound", err)
		}
		v := mustGet(t, s, rng)
		if v.Version != FormatVersion || v.UpdatedMs == 0 || v.Snapshot.Copied != 41 || v.ResumeToken != nil {
			t.Errorf("snapshot range = %+v", v)
		}
		var keys []string
		for _, e := range s.List("cdc") {
			keys = append(keys, e.Key.String())
		}
		want := []string{orders0.String(), rng.String(), users.String()}
		if strings.Join(keys, "\n") != strings.Join(want, "\n") {
			t.Errorf("List(cdc) =\n%s\nwant\n%s", strings.Join(keys, "\n"), strings.Join(want, "\n"))
		}
	}
	t.Run("in memory", func(t *testing.T) { check(t, s) })
	t.Run("reopened", func(t *testing.T) { check(t, open(t, brokers)) })

	// Values handed out are copies.
	mustGet(t, s, orders0).ResumeToken.Data = "changed"
	if mustGet(t, s, orders0).ResumeToken.Data != tokUpdate {
		t.Errorf("a caller's edit reached the store")
	}
}

func TestStoreReadsOnlyCommittedTransactions(t *testing.T) {
	_, brokers := newCluster(t)
	s := open(t, brokers)
	ctx := testCtx(t)

	txn, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID("cdc-shop.orders#0-of-1"))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	write := func(k Key, v *Value, commit kgo.TransactionEndTry) *kgo.Record {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		r := s.Record(k, v)
		if err := txn.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := txn.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
		return r
	}
	committed := ShardKey("cdc", "shop", "orders", 0, 1)
	aborted := ShardKey("cdc", "shop", "users", 0, 1)
	r := write(committed, at(t, tokUpdate), kgo.TryCommit)
	if err := s.Apply(r); err != nil {
		t.Fatal(err)
	}
	if mustGet(t, s, committed).ResumeToken.Data != tokUpdate {
		t.Errorf("Apply did not update memory")
	}
	write(aborted, at(t, tokInsert), kgo.TryAbort)

	// An open transaction at load time holds the last stable offset back;
	// Open must read up to it and return, not wait for the transaction.
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	pending := ShardKey("cdc", "shop", "pending", 0, 1)
	if err := txn.ProduceSync(ctx, s.Record(pending, at(t, tokPBRT))).FirstErr(); err != nil {
		t.Fatal(err)
	}

	re := open(t, brokers)
	if mustGet(t, re, committed).ResumeToken.Data != tokUpdate {
		t.Errorf("committed transactional offset missing after reopening")
	}
	if _, err := re.Get(aborted); !errors.Is(err, ErrNotFound) {
		t.Errorf("aborted transactional offset visible: %v", err)
	}
	if _, err := re.Get(pending); !errors.Is(err, ErrNotFound) {
		t.Errorf("uncommitted transactional offset visible: %v", err)
	}
	if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(&kgo.Record{Topic: "elsewhere", Key: committed.Bytes()}); err == nil {
		t.Errorf("Apply accepted a record of another topic")
	}
}

func TestStoreAfterCompaction(t *testing.T) {
	c, brokers := newCluster(t)
	s := open(t, brokers, Partitions(3))
	ctx := testCtx(t)
	adm := adminFor(t, brokers)

	// Tombstones are dropped by compaction once delete.retention.ms has
	// passed; make that now, as days later on a real broker.
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "delete.retention.ms", Value: kadm.StringPtr("0")}}, testTopic); err != nil {
		t.Fatal(err)
	}
	want := map[Key]string{}
	for round := range 5 {
		var batch []Entry
		for i := range 20 {
			k := ShardKey("cdc", "shop", fmt.Sprintf("c%02d", i), 0, 1)
			if (i+round)%4 == 0 {
				batch = append(batch, Entry{Key: k})
				delete(want, k)
				continue
			}
			tok := []string{tokInsert, tokUpdate, tokPBRT}[(i+round)%3]
			batch = append(batch, Entry{Key: k, Value: at(t, tok)})
			want[k] = tok
		}
		if err := s.CommitMany(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	c.Compact()
	re := open(t, brokers)
	if got := len(re.List("cdc")); got != len(want) {
		t.Errorf("%d offsets after compaction, want %d", got, len(want))
	}
	for k, tok := range want {
		if got := mustGet(t, re, k).ResumeToken.Data; got != tok {
			t.Errorf("%s = %s, want %s", k, got, tok)
		}
	}
}

func TestStoreConcurrentCommits(t *testing.T) {
	_, brokers := newCluster(t)
	s := open(t, brokers)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := ShardKey("cdc", "shop", "orders", w, 8)
			for i := range 20 {
				v := &Value{ClusterTime: &ClusterTime{T: 1721140162, I: uint32(i)}}
				if err := s.Commit(ctx, k, v); err != nil {
					t.Error(err)
					return
				}
				if got, err := s.Get(k); err != nil || got.ClusterTime.I != uint32(i) {
					t.Errorf("Get after Commit = %+v, %v; want increment %d", got, err, i)
				}
				_ = s.List("cdc")
			}
		}()
	}
	wg.Wait()
	re := open(t, brokers)
	for w := range 8 {
		if got := mustGet(t, re, ShardKey("cdc", "shop", "orders", w, 8)).ClusterTime.I; got != 19 {
			t.Errorf("shard %d reloaded at increment %d, want 19", w, got)
		}
	}
}

func TestCommitHonoursContext(t *testing.T) {
	_, brokers := newCluster(t)
	s := open(t, brokers)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Commit(ctx, ShardKey("cdc", "shop", "orders", 0, 1), &Value{ClusterTime: &ClusterTime{T: 1}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Commit with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestRecord(t *testing.T) {
	_, brokers := newCluster(t)
	s := open(t, brokers)
	k := SnapshotKey("cdc", "shop", "orders", 1, 2)
	v := &Value{Snapshot: &Snapshot{Done: true}}
	r := s.Record(k, v)
	if r.Topic != testTopic || string(r.Key) != k.String() {
		t.Errorf("Record = topic %q key %s", r.Topic, r.Key)
	}
	back, err := DecodeValue(r.Value)
	if err != nil || back.Version != FormatVersion || back.UpdatedMs == 0 || !back.Snapshot.Done {
		t.Errorf("Record value = %s (%v)", r.Value, err)
	}
	if v.Version != 0 || v.UpdatedMs != 0 {
		t.Errorf("Record modified its argument: %+v", v)
	}
	if tomb := s.Record(k, nil); tomb.Value != nil {
		t.Errorf("Record(k, nil) has a value: %s", tomb.Value)
	}
}

func TestCollectionQueriesReturnOneCollectionsKeysOfOneKindInOrder(t *testing.T) {
	_, brokers := newCluster(t)
	s := open(t, brokers)
	ctx := testCtx(t)
	commit := func(k Key, v *Value) {
		t.Helper()
		if err := s.Commit(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	v := at(t, tokInsert)
	for _, k := range []Key{
		ShardKey("c", "db", "a", 1, 2), ShardKey("c", "db", "a", 0, 2), ShardKey("c", "db", "a", 0, 1),
		SnapshotKey("c", "db", "a", 1, 2), SnapshotKey("c", "db", "a", 0, 2),
		ShardKey("c", "db", "b", 0, 1), ShardKey("other", "db", "a", 0, 1), SnapshotKey("c", "db2", "a", 0, 1),
	} {
		commit(k, v)
	}
	commit(ShardKey("c", "db", "a", 1, 2), nil) // a tombstone removes the key from the answers

	keys := func(es []Entry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Key.String())
		}
		return out
	}
	if got, want := keys(s.ShardOffsets("c", "db", "a")), []string{
		ShardKey("c", "db", "a", 0, 1).String(), ShardKey("c", "db", "a", 0, 2).String(),
	}; !slices.Equal(got, want) {
		t.Fatalf("ShardOffsets = %v, want %v", got, want)
	}
	if got, want := keys(s.SnapshotRanges("c", "db", "a")), []string{
		SnapshotKey("c", "db", "a", 0, 2).String(), SnapshotKey("c", "db", "a", 1, 2).String(),
	}; !slices.Equal(got, want) {
		t.Fatalf("SnapshotRanges = %v, want %v", got, want)
	}
	if got := s.ShardOffsets("c", "db", "missing"); len(got) != 0 {
		t.Fatalf("ShardOffsets of an unknown collection = %v, want none", keys(got))
	}
}
