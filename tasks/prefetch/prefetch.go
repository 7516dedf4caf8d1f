// Package prefetch reads the next server batch while the previous one is being encoded and
// produced. A task that reads, encodes, produces and commits in turn waits for MongoDB and for
// Kafka one after the other; with the read running ahead, the slower of the two sets the pace.
//
// Documents are copied out of the driver's reply into buffers that are reused batch after
// batch, so the steady state allocates nothing per document.
package prefetch

import (
	"context"
	"errors"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/tasks/connector"
)

// ErrStopped is returned by Next once the reader has delivered its last batch or was stopped.
var ErrStopped = errors.New("prefetch: reader stopped")

// Batch is one server batch, copied: its documents, what the reader recorded with them (a
// resume token, the last _id), and whether it is the last batch.
type Batch[M any] struct {
	buf  []byte
	ends []int
	// Meta is what the fill function recorded about the batch.
	Meta M
	// Last marks the reader's final batch (the source is exhausted).
	Last bool
	err  error
}

// Add copies doc into the batch.
func (b *Batch[M]) Add(doc []byte) {
	b.buf = append(b.buf, doc...)
	b.ends = append(b.ends, len(b.buf))
}

// Len is the number of documents in the batch.
func (b *Batch[M]) Len() int { return len(b.ends) }

// Doc is the i-th document; it stays valid until the batch is released.
func (b *Batch[M]) Doc(i int) bson.Raw {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	return bson.Raw(b.buf[start:b.ends[i]])
}

func (b *Batch[M]) reset() {
	var zero M
	b.buf, b.ends, b.Meta, b.Last, b.err = b.buf[:0], b.ends[:0], zero, false, nil
}

// Fill reads one server batch into b. It returns last=true when the source has nothing more
// to give, ever (a cursor exhausted); a change stream never ends, so its fill never says so.
type Fill[M any] func(ctx context.Context, b *Batch[M]) (last bool, err error)

// Reader runs a Fill in its own goroutine, at most depth batches ahead of the consumer.
// Next and Release are for one consumer goroutine.
type Reader[M any] struct {
	out    chan *Batch[M]
	free   chan *Batch[M]
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ended  bool
}

// Start begins reading with fill; the source fill reads must not be used by anyone else until
// Stop returns. depth is how many batches may wait while one is being filled and one consumed.
func Start[M any](ctx context.Context, depth int, fill Fill[M]) *Reader[M] {
	depth = max(depth, 1)
	ctx, cancel := context.WithCancel(ctx)
	r := &Reader[M]{
		out:    make(chan *Batch[M], depth),
		free:   make(chan *Batch[M], depth+2),
		cancel: cancel,
	}
	for range depth + 2 {
		r.free <- new(Batch[M])
	}
	r.wg.Add(1)
	go r.run(ctx, fill)
	return r
}

func (r *Reader[M]) run(ctx context.Context, fill Fill[M]) {
	defer r.wg.Done()
	for {
		var b *Batch[M]
		select {
		case b = <-r.free:
		case <-ctx.Done():
			return
		}
		b.reset()
		last, err := fillRecovered(ctx, fill, b)
		b.Last, b.err = last || err != nil, err
		select {
		case r.out <- b:
		case <-ctx.Done():
			return
		}
		if b.Last {
			return
		}
	}
}

// fillRecovered runs fill, turning a panic into its error: the consumer's Next returns it, and
// it fails the task that owns the reader rather than the process (connector.Recover).
func fillRecovered[M any](ctx context.Context, fill Fill[M], b *Batch[M]) (last bool, err error) {
	defer connector.Recover(&err)
	return fill(ctx, b)
}

// Next returns the next batch, or the error that ended the reading; documents read before that
// error are dropped, never handed over. The caller releases the batch once done with it.
func (r *Reader[M]) Next(ctx context.Context) (*Batch[M], error) {
	if r.ended {
		return nil, ErrStopped
	}
	select {
	case b := <-r.out:
		if b.Last {
			r.ended = true
		}
		if b.err != nil {
			err := b.err
			r.Release(b)
			return nil, err
		}
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Waiting reports whether another batch is already read: the consumer is behind the source.
func (r *Reader[M]) Waiting() bool { return len(r.out) > 0 }

// Release hands a batch back for reuse.
func (r *Reader[M]) Release(b *Batch[M]) {
	select {
	case r.free <- b:
	default: // a batch released twice: drop it rather than block
	}
}

// Stop ends the reading and waits for the goroutine, after which the source may be closed.
func (r *Reader[M]) Stop() {
	r.cancel()
	r.wg.Wait()
	r.ended = true
}
