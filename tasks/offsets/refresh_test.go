package offsets

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRefreshSeesOtherWriters is the cluster's case: a task moves from the
// node of store a to the node of store b, which must start from a's latest
// offset, tombstones included.
func TestRefreshSeesOtherWriters(t *testing.T) {
	_, brokers := newCluster(t)
	a, b := open(t, brokers, Partitions(3)), open(t, brokers)
	ctx := testCtx(t)
	orders := ShardKey("cdc", "shop", "orders", 0, 1)
	users := ShardKey("cdc", "shop", "users", 0, 1)

	if err := b.Refresh(ctx); err != nil { // nothing new: harmless
		t.Fatalf("Refresh on an empty topic: %v", err)
	}
	if err := a.CommitMany(ctx, []Entry{{Key: orders, Value: at(t, tokInsert)}, {Key: users, Value: at(t, tokPBRT)}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit(ctx, orders, at(t, tokUpdate)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(orders); !errors.Is(err, ErrNotFound) {
		t.Fatalf("b sees a's commit before refreshing: %v", err)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, b, orders).ResumeToken.Data; got != tokUpdate {
		t.Errorf("after Refresh b has %s, want a's latest", got)
	}
	if n := len(b.List("cdc")); n != 2 {
		t.Errorf("List after Refresh = %d entries, want 2", n)
	}

	if err := a.Commit(ctx, users, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(users); !errors.Is(err, ErrNotFound) {
		t.Errorf("a tombstone read by Refresh left %v", err)
	}
	if n := len(b.List("cdc")); n != 1 {
		t.Errorf("List after a refreshed tombstone = %d entries, want 1", n)
	}

	// a created the topic and so skipped loading it: its first Refresh must read from the
	// start of every partition, its own commits and b's alike.
	if err := b.Commit(ctx, users, at(t, tokInsert)); err != nil {
		t.Fatal(err)
	}
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, a, users).ResumeToken.Data; got != tokInsert {
		t.Errorf("after Refresh the topic's creator has %s, want b's commit", got)
	}
}

// TestRefreshNeverTurnsBack: b commits a newer offset than one a wrote and b
// has not read yet; reading a's older record afterwards must not replace it,
// nor may a re-read of a deleted key's older record bring it back.
func TestRefreshNeverTurnsBack(t *testing.T) {
	_, brokers := newCluster(t)
	a, b := open(t, brokers, Partitions(1)), open(t, brokers)
	ctx := testCtx(t)
	k := ShardKey("cdc", "shop", "orders", 0, 1)

	if err := a.Commit(ctx, k, at(t, tokInsert)); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(ctx, k, at(t, tokUpdate)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := b.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, b, k).ResumeToken.Data; got != tokUpdate {
			t.Fatalf("Refresh replaced b's newer commit with %s", got)
		}
	}
	if err := b.Commit(ctx, k, nil); err != nil {
		t.Fatal(err)
	}
	// An acknowledgement of an older record arriving late is ignored too.
	if err := b.Apply(&kgo.Record{Topic: testTopic, Key: k.Bytes(), Value: at(t, tokInsert).encode(), Offset: 0}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(k); !errors.Is(err, ErrNotFound) {
		t.Errorf("an older record brought a deleted key back: %v", err)
	}
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(k); !errors.Is(err, ErrNotFound) {
		t.Errorf("a after Refresh: %v, want b's tombstone", err)
	}
}
