package mongosource

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/mongorelay/mongorelay/tasks"
	"github.com/mongorelay/mongorelay/tasks/changestream"
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

func TestMarkPermanent(t *testing.T) {
	lost := &changestream.HistoryLostError{Connector: "c", Namespace: "db.coll", Err: changestream.ErrHistoryLost}
	tests := []struct {
		name      string
		err       error
		permanent bool
	}{
		{"history lost", fmt.Errorf("collection shard db.coll#0-of-1: %w", lost), true},
		{"an oversize record", fmt.Errorf("document 1 in db.coll: %w: 2 MB", tasks.ErrRecordTooLarge), true},
		{"Kafka unreachable", errors.New("produce: connection refused"), false},
		{"Kafka refusing the password", fmt.Errorf("initialise transactional id t: %w", kerr.SaslAuthenticationFailed), true},
		{"an untrusted broker certificate", fmt.Errorf("unable to dial: %w", x509.UnknownAuthorityError{}), true},
		{"a clean stop", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := markPermanent(tt.err)
			if connector.IsPermanent(got) != tt.permanent || !errors.Is(got, tt.err) {
				t.Errorf("markPermanent(%v) = %v, want permanent %v wrapping it", tt.err, got, tt.permanent)
			}
		})
	}
}
