package prefetch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/tasks/connector"
)

// source hands out numbered one-field documents, batch after batch, like a cursor.
type source struct {
	batches [][]int32
	err     error // returned after the batches, unless the last one ends the source
	last    bool  // the final batch ends the source
}

func (s *source) fill() Fill[int] {
	next := 0
	return func(ctx context.Context, b *Batch[int]) (bool, error) {
		if next == len(s.batches) {
			if s.err != nil {
				return false, s.err
			}
			<-ctx.Done() // a change stream waits for more
			return false, ctx.Err()
		}
		for _, v := range s.batches[next] {
			doc, err := bson.Marshal(bson.D{{Key: "v", Value: v}})
			if err != nil {
				return false, err
			}
			b.Add(doc)
		}
		b.Meta = next
		next++
		return s.last && next == len(s.batches), nil
	}
}

func TestReaderDeliversBatchesInOrder(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		src     source
		want    [][]int32
		wantErr error
	}{
		{"cursor that ends", source{batches: [][]int32{{1, 2}, {3}, {}}, last: true}, [][]int32{{1, 2}, {3}, {}}, ErrStopped},
		{"stream that fails", source{batches: [][]int32{{1}, {2, 3, 4}}, err: errBoom}, [][]int32{{1}, {2, 3, 4}}, errBoom},
		{"empty batches keep coming", source{batches: [][]int32{{}, {}, {7}}, err: errBoom}, [][]int32{{}, {}, {7}}, errBoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			r := Start(ctx, 1, tt.src.fill())
			defer r.Stop()
			for i, want := range tt.want {
				b, err := r.Next(ctx)
				if err != nil {
					t.Fatalf("batch %d: %v", i, err)
				}
				if b.Meta != i {
					t.Errorf("batch %d: meta %d", i, b.Meta)
				}
				got := make([]int32, b.Len())
				for j := range got {
					got[j] = b.Doc(j).Lookup("v").Int32()
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("batch %d: %v, want %v", i, got, want)
				}
				r.Release(b)
			}
			if _, err := r.Next(ctx); !errors.Is(err, tt.wantErr) {
				t.Fatalf("after the batches: %v, want %v", err, tt.wantErr)
			}
			if _, err := r.Next(ctx); tt.wantErr == ErrStopped && !errors.Is(err, ErrStopped) {
				t.Fatalf("after the end: %v, want ErrStopped", err)
			}
		})
	}
}

func TestReaderReadsAheadAndStopsWhileFilling(t *testing.T) {
	src := source{batches: [][]int32{{1}, {2}}}
	r := Start(context.Background(), 1, src.fill())
	b, err := r.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !r.Waiting() {
		if time.Now().After(deadline) {
			t.Fatal("the second batch was not read ahead while the first was held")
		}
		time.Sleep(time.Millisecond)
	}
	r.Release(b)
	// The fill is now blocked waiting for a third batch; Stop must still return.
	done := make(chan struct{})
	go func() { r.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return while the fill was waiting")
	}
	if _, err := r.Next(context.Background()); !errors.Is(err, ErrStopped) {
		t.Fatalf("Next after Stop: %v, want ErrStopped", err)
	}
}

func TestNextHonoursItsContext(t *testing.T) {
	src := source{}
	r := Start(context.Background(), 1, src.fill())
	defer r.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := r.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next: %v, want the caller's deadline", err)
	}
}

func TestBatchReuseAllocatesNothing(t *testing.T) {
	doc, err := bson.Marshal(bson.D{{Key: "v", Value: "a document of some length"}})
	if err != nil {
		t.Fatal(err)
	}
	var b Batch[int]
	fill := func() {
		b.reset()
		for range 64 {
			b.Add(doc)
		}
		for i := range b.Len() {
			_ = b.Doc(i)
		}
	}
	fill() // grow the buffers once
	if allocs := testing.AllocsPerRun(100, fill); allocs != 0 {
		t.Errorf("refilling a batch allocates %v times, want 0", allocs)
	}
}

func TestAPanicOfTheFillIsTheReadersError(t *testing.T) {
	r := Start(context.Background(), 1, func(context.Context, *Batch[int]) (bool, error) {
		var docs []bson.Raw
		_ = docs[3] // a driver bug, say
		return false, nil
	})
	defer r.Stop()
	_, err := r.Next(context.Background())
	if !connector.IsPermanent(err) || !strings.Contains(err.Error(), "task panicked: runtime error: index out of range") {
		t.Fatalf("Next = %v, want the fill's panic as a permanent error", err)
	}
}
