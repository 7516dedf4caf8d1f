package mongosource

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mongorelay/mongorelay/tasks/connector"
	"github.com/mongorelay/mongorelay/tasks/taskid"
)

func TestRunUnits(t *testing.T) {
	t.Run("a failure stops the others and is the task's error", func(t *testing.T) {
		boom := errors.New("boom")
		var stopped atomic.Int32
		err := runUnits(context.Background(), []taskid.Spec{{DB: "db", Coll: "a", Shards: 1}, {DB: "db", Coll: "b", Shards: 1}, {DB: "db", Coll: "c", Shards: 1}}, func(ctx context.Context, u taskid.Spec) error {
			if u.Coll == "b" {
				return boom
			}
			<-ctx.Done()
			stopped.Add(1)
			return nil // a task stopped by its context ends cleanly
		})
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "collection shard db.b#0-of-1") {
			t.Fatalf("err = %v, want boom naming db.b#0-of-1", err)
		}
		if stopped.Load() != 2 {
			t.Fatalf("%d other shards stopped, want 2", stopped.Load())
		}
	})
	t.Run("all run until the task stops", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var started atomic.Int32
		done := make(chan error, 1)
		go func() {
			done <- runUnits(ctx, []taskid.Spec{{DB: "db", Coll: "a", Shard: 0, Shards: 3}, {DB: "db", Coll: "a", Shard: 1, Shards: 3}, {DB: "db", Coll: "a", Shard: 2, Shards: 3}}, func(ctx context.Context, _ taskid.Spec) error {
				started.Add(1)
				<-ctx.Done()
				return nil
			})
		}()
		for started.Load() < 3 {
			time.Sleep(time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("a stopped task returned %v", err)
		}
	})
}

func TestRunUnitsTurnsAPanicIntoItsShardsFailure(t *testing.T) {
	err := runUnits(context.Background(), []taskid.Spec{{DB: "db", Coll: "a", Shards: 1}, {DB: "db", Coll: "b", Shards: 1}}, func(ctx context.Context, u taskid.Spec) error {
		if u.Coll == "b" {
			panic("poison document")
		}
		<-ctx.Done()
		return nil
	})
	if !connector.IsPermanent(err) || !strings.Contains(err.Error(), "collection shard db.b#0-of-1: task panicked: poison document") {
		t.Fatalf("err = %v, want the panic as db.b's permanent failure", err)
	}
}

func TestUnitReasonsJoinTheShardsReasons(t *testing.T) {
	var got []string
	u := newUnitReasons(func(r string) { got = append(got, r) }, 2)
	a, b := u.unit("db.a#0-of-1"), u.unit("db.b#0-of-1")
	b("waiting 6s for Kafka to commit the transaction")
	a("waiting 5s for MongoDB to open the change stream")
	b("")
	a("")
	want := []string{
		"db.b#0-of-1: waiting 6s for Kafka to commit the transaction",
		"db.a#0-of-1: waiting 5s for MongoDB to open the change stream; db.b#0-of-1: waiting 6s for Kafka to commit the transaction",
		"db.a#0-of-1: waiting 5s for MongoDB to open the change stream",
		"",
	}
	if !slices.Equal(got, want) {
		t.Errorf("reported %q, want %q", got, want)
	}
	var alone []string
	newUnitReasons(func(r string) { alone = append(alone, r) }, 1).unit("db.a#0-of-1")("waiting")
	if !slices.Equal(alone, []string{"waiting"}) {
		t.Errorf("a task of one shard reported %q, want the reason alone", alone)
	}
}

func TestReportSlowReportsOnlyAWaitThatLasts(t *testing.T) {
	var mu sync.Mutex
	var got []string
	report := func(r string) { mu.Lock(); got = append(got, r); mu.Unlock() }
	reportSlow(report, 50*time.Millisecond, "nothing")()
	done := reportSlow(report, 10*time.Millisecond, "Kafka to create the topic t")
	time.Sleep(100 * time.Millisecond)
	done()
	time.Sleep(60 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"waiting more than 10ms for Kafka to create the topic t", ""}; !slices.Equal(got, want) {
		t.Errorf("reported %q, want %q", got, want)
	}
}
