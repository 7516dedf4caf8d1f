package offsets

import (
	"errors"
	"fmt"
	"testing"
	"time"

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

// An offset committed after another writer's transaction opened lies past the last stable
// offset: Refresh stops short of it, CatchUp waits for the transaction to end and reads it.
// The transaction's own offset counts only if it commits.
func TestCatchUpReadsPastTheTransactionsOpenWhenItStarts(t *testing.T) {
	tests := []struct {
		name string
		end  kgo.TransactionEndTry
	}{
		{"the transaction commits", kgo.TryCommit},
		{"the transaction aborts", kgo.TryAbort},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, brokers := newCluster(t)
			ctx := testCtx(t)
			writer := open(t, brokers, Partitions(1))
			txn, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID(fmt.Sprintf("catch-up-%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			defer txn.Close()
			inTxn := ShardKey("cdc", "shop", "orders", 0, 1)
			after := ShardKey("cdc", "shop", "users", 0, 1)
			if err := txn.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			if err := txn.ProduceSync(ctx, writer.Record(inTxn, at(t, tokInsert))).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if err := writer.Commit(ctx, after, at(t, tokUpdate)); err != nil {
				t.Fatal(err)
			}

			reader := open(t, brokers)
			if err := reader.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := reader.Get(after); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Refresh read past the open transaction: %v", err)
			}
			caughtUp := make(chan error, 1)
			go func() { caughtUp <- reader.CatchUp(ctx) }()
			select {
			case err := <-caughtUp:
				t.Fatalf("CatchUp returned (%v) while the transaction is open", err)
			case <-time.After(200 * time.Millisecond):
			}
			if err := txn.EndTransaction(ctx, tt.end); err != nil {
				t.Fatal(err)
			}
			if err := <-caughtUp; err != nil {
				t.Fatal(err)
			}
			if mustGet(t, reader, after).ResumeToken.Data != tokUpdate {
				t.Error("the offset committed after the transaction opened is missing")
			}
			_, err = reader.Get(inTxn)
			if committed := tt.end == kgo.TryCommit; committed != (err == nil) {
				t.Errorf("the transaction's offset: Get() = %v, want it present only after a commit", err)
			}
		})
	}
}
