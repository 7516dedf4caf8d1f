package kafkastore_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/registry"
	"github.com/mongorelay/mongorelay/registry/kafkastore"
)

const (
	userV1 = `{"type":"record","name":"User","fields":[{"name":"id","type":"long"}]}`
	userV2 = `{"type":"record","name":"User","fields":[{"name":"id","type":"long"},
		{"name":"email","type":["null","string"],"default":null}]}`
	order = `{"type":"record","name":"Order","fields":[{"name":"n","type":"int"}]}`
	other = `{"type":"record","name":"Other","fields":[]}`
)

var quiet = slog.New(slog.DiscardHandler)

// newCluster starts an in-process broker that, like the test environment's,
// does not create topics on demand.
func newCluster(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// open opens the store and a registry on it, closed with the test.
func open(t *testing.T, ctx context.Context, brokers []string, topic string, opts ...kafkastore.Opt) (*registry.Registry, *kafkastore.Store) {
	t.Helper()
	store, err := kafkastore.Open(ctx, append([]kafkastore.Opt{
		kafkastore.ClientOpts(kgo.SeedBrokers(brokers...)),
		kafkastore.Topic(topic),
		kafkastore.Logger(quiet)}, opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(store.Close)
	r, err := registry.New(ctx, store, registry.Logger(quiet))
	if err != nil {
		t.Fatalf("registry.New: %v", err)
	}
	return r, store
}

func admin(t *testing.T, brokers []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// history registers, deletes and configures enough to exercise every record
// type, and returns the ids it got by schema.
func history(t *testing.T, ctx context.Context, r *registry.Registry) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for _, s := range []struct{ subject, schema string }{
		{"users-value", userV1}, {"users-value", userV2}, {"orders-value", order}, {"copy-value", userV2},
	} {
		id, err := r.Register(ctx, s.subject, s.schema)
		if err != nil {
			t.Fatalf("Register(%s): %v", s.subject, err)
		}
		ids[s.schema] = id
	}
	if err := r.SetCompatibility(ctx, "users-value", registry.Full); err != nil {
		t.Fatal(err)
	}
	if err := r.SetCompatibility(ctx, "", registry.Backward); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DeleteVersion(ctx, "users-value", 1, false); err != nil {
		t.Fatal(err)
	}
	// orders' schema has the highest id: hard-deleting it must not free it.
	if _, err := r.DeleteSubject(ctx, "orders-value", false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DeleteSubject(ctx, "orders-value", true); err != nil {
		t.Fatal(err)
	}
	return ids
}

// checkHistory checks a registry holds what history left.
func checkHistory(t *testing.T, ctx context.Context, r *registry.Registry, ids map[string]int) {
	t.Helper()
	if got := r.Subjects(true); !slices.Equal(got, []string{"copy-value", "users-value"}) {
		t.Fatalf("subjects %v", got)
	}
	if v, err := r.Version("users-value", 1, true); err != nil || !v.Deleted || v.ID != ids[userV1] {
		t.Fatalf("users-value v1: %+v, %v", v, err)
	}
	latest, err := r.Latest(ctx, "users-value")
	if err != nil || latest.Version != 2 || latest.ID != ids[userV2] {
		t.Fatalf("users-value latest: %+v, %v", latest, err)
	}
	if c, err := r.Latest(ctx, "copy-value"); err != nil || c.ID != ids[userV2] {
		t.Fatalf("copy-value latest: %+v, %v", c, err)
	}
	if got, _ := r.Compatibility("users-value"); got != registry.Full {
		t.Fatalf("users-value level %q", got)
	}
	if got, _ := r.Compatibility(""); got != registry.Backward {
		t.Fatalf("global level %q", got)
	}
	if _, err := r.SchemaByID(ctx, ids[order]); !errors.Is(err, registry.ErrSchemaNotFound) {
		t.Fatalf("hard-deleted schema by id: %v", err)
	}
	// Re-registering returns the same ids and writes nothing new.
	for _, s := range []string{userV2} {
		if id, err := r.Register(ctx, "users-value", s); err != nil || id != ids[s] {
			t.Fatalf("re-register: %d, %v; want %d", id, err, ids[s])
		}
	}
}

// TestRestartKeepsIDs is also the lost-local-disk case: nothing of the
// registry is on disk, a new process rebuilds it from the topic alone.
func TestRestartKeepsIDs(t *testing.T) {
	ctx := testContext(t)
	brokers := newCluster(t)
	r, store := open(t, ctx, brokers, "schemas")
	ids := history(t, ctx, r)
	checkHistory(t, ctx, r, ids)
	store.Close()

	r2, _ := open(t, ctx, brokers, "schemas")
	checkHistory(t, ctx, r2, ids)
	id, err := r2.Register(ctx, "new-value", other)
	if err != nil {
		t.Fatal(err)
	}
	if id != ids[order]+1 {
		t.Fatalf("new id %d, want %d (the highest ever was %d)", id, ids[order]+1, ids[order])
	}
}

func TestRestartAfterCompaction(t *testing.T) {
	ctx := testContext(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	r, _ := open(t, ctx, brokers, "schemas")
	ids := history(t, ctx, r)
	// Let tombstones go at once, then write one more record so that they
	// are not in the last batch, which compaction always keeps.
	alter := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "delete.retention.ms", Value: kadm.StringPtr("0")}}
	if _, err := admin(t, brokers).AlterTopicConfigs(ctx, alter, "schemas"); err != nil {
		t.Fatal(err)
	}
	if err := r.SetCompatibility(ctx, "", registry.Backward); err != nil {
		t.Fatal(err)
	}
	if err := r.SetCompatibility(ctx, "copy-value", registry.None); err != nil {
		t.Fatal(err)
	}
	before := countRecords(t, ctx, brokers, "schemas")
	c.Compact()
	if after := countRecords(t, ctx, brokers, "schemas"); after > before-4 {
		t.Fatalf("compaction left %d of %d records", after, before)
	}

	r2, _ := open(t, ctx, brokers, "schemas")
	checkHistory(t, ctx, r2, ids)
	if id, err := r2.Register(ctx, "new-value", other); err != nil || id != ids[order]+1 {
		t.Fatalf("new id %d, %v; want %d", id, err, ids[order]+1)
	}
}

// countRecords reads topic to its end.
func countRecords(t *testing.T, ctx context.Context, brokers []string, topic string) int {
	t.Helper()
	ends, err := admin(t, brokers).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	n := 0
	for last := int64(-1); last < end.Offset-1; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { n, last = n+1, r.Offset })
	}
	return n
}

func TestOpenCreatesCompactedTopic(t *testing.T) {
	ctx := testContext(t)
	brokers := newCluster(t)
	open(t, ctx, brokers, "my-schemas")
	adm := admin(t, brokers)
	details, err := adm.ListTopics(ctx, "my-schemas")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(details["my-schemas"].Partitions); n != 1 {
		t.Fatalf("%d partitions, want 1", n)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, "my-schemas")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("my-schemas", nil)
	if err != nil {
		t.Fatal(err)
	}
	policy := "unset"
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" {
			policy = c.MaybeValue()
		}
	}
	if policy != "compact" {
		t.Fatalf("cleanup.policy=%s", policy)
	}
}

func TestOpenRejectsUnsafeTopic(t *testing.T) {
	ctx := testContext(t)
	brokers := newCluster(t)
	adm := admin(t, brokers)
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("delete")}, "deleting"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "three"); err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"deleting", "three"} {
		store, err := kafkastore.Open(ctx, kafkastore.ClientOpts(kgo.SeedBrokers(brokers...)), kafkastore.Topic(topic), kafkastore.Logger(quiet))
		if err == nil {
			store.Close()
			t.Errorf("Open accepted topic %s", topic)
		}
	}
}

// TestRecordFormat pins the bytes on the topic: compaction merges only
// identical keys, so they must never change by accident.
func TestRecordFormat(t *testing.T) {
	ctx := testContext(t)
	brokers := newCluster(t)
	r, _ := open(t, ctx, brokers, "schemas")
	if _, err := r.Register(ctx, "s", `"string"`); err != nil {
		t.Fatal(err)
	}
	if err := r.SetCompatibility(ctx, "s", registry.Full); err != nil {
		t.Fatal(err)
	}
	if err := r.SetCompatibility(ctx, "", registry.None); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DeleteSubject(ctx, "s", false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DeleteSubject(ctx, "s", true); err != nil {
		t.Fatal(err)
	}
	want := []struct{ key, value string }{
		{`{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}`, `{"subject":"s","version":1,"id":1,"schema":"\"string\"","deleted":false}`},
		{`{"keytype":"CONFIG","subject":"s","magic":0}`, `{"compatibilityLevel":"FULL"}`},
		{`{"keytype":"CONFIG","subject":null,"magic":0}`, `{"compatibilityLevel":"NONE"}`},
		{`{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}`, `{"subject":"s","version":1,"id":1,"schema":"\"string\"","deleted":true}`},
		{`{"keytype":"MAX_ID","magic":0}`, `{"id":1}`},
		{`{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}`, ``},
		{`{"keytype":"CONFIG","subject":"s","magic":0}`, ``},
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("schemas"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []*kgo.Record
	for len(got) < len(want) {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got = append(got, fs.Records()...)
	}
	for i, w := range want {
		if string(got[i].Key) != w.key || string(got[i].Value) != w.value {
			t.Errorf("record %d:\n got %s => %s\nwant %s => %s", i, got[i].Key, got[i].Value, w.key, w.value)
		}
		if w.value == "" && got[i].Value != nil {
			t.Errorf("record %d: want a tombstone", i)
		}
	}
}

func TestSecondWriterIsDetected(t *testing.T) {
	ctx := testContext(t)
	brokers := newCluster(t)
	a, _ := open(t, ctx, brokers, "schemas")
	b, _ := open(t, ctx, brokers, "schemas")
	if _, err := a.Register(ctx, "a", userV1); err != nil {
		t.Fatal(err)
	}
	_, err := b.Register(ctx, "b", order)
	if !errors.Is(err, kafkastore.ErrConcurrentWriter) {
		t.Fatalf("second writer: %v, want ErrConcurrentWriter", err)
	}
	// b reloads before its next write and then sees a's schema.
	if id, err := b.Register(ctx, "a", userV1); err != nil || id != 1 {
		t.Fatalf("after reload: %d, %v", id, err)
	}
}

func TestReplayOfUnknownRecords(t *testing.T) {
	ctx := testContext(t)
	brokers := newCluster(t)
	_, store := open(t, ctx, brokers, "schemas")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("schemas"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(key, value string) {
		t.Helper()
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(key), Value: []byte(value)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(`{"keytype":"NOOP","magic":0}`, `{}`)
	produce(`{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}`, `{"subject":"s","version":1,"id":5,"schema":"\"int\"","deleted":false}`)
	r, err := registry.New(ctx, store, registry.Logger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := r.SchemaByID(ctx, 5); err != nil || s != `"int"` {
		t.Fatalf("SchemaByID(5) = %s, %v", s, err)
	}

	produce(`{"keytype":"SCHEMA","subject":"s","version":2,"magic":7}`, `{}`)
	if _, err := registry.New(ctx, store, registry.Logger(quiet)); err == nil {
		t.Fatal("replayed a record of an unknown format")
	}
}
