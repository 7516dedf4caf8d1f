package tasks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Transactional makes a task the single writer of its records (DESIGN.md 6): it writes through
// its own producer with a stable transactional.id, so a new owner's first use of the id fences
// the old owner's pending and future writes, even from a process that was paused and wakes up
// with batches still buffered. Offsets stay outside the transaction (at-least-once); they are
// committed after the transaction that carried their records.
type Transactional struct {
	// ID is the transactional.id: <cluster.id>-<connector>-<task name>, never the node.
	ID string
	// ClientOpts reach Kafka (seed brokers, SASL, TLS); the task adds ProducerOpts and its id.
	ClientOpts []kgo.Opt
	// Compression is the codec of the task's record batches; the zero value is none.
	Compression kgo.CompressionCodec
}

// ProducerOpts are a task's producer settings besides its transactional id. The benchmark's
// produce ceiling uses them too, so it measures the same work as a task.
func ProducerOpts(compression kgo.CompressionCodec) []kgo.Opt {
	return []kgo.Opt{
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.MaxBufferedRecords(50_000),
		kgo.ProducerBatchCompression(compression),
	}
}

// A task's transaction commits when it is TxnMaxAge old, when it holds TxnMaxBatches times
// max.batch.size records, or when the task has caught up with the stream. A transaction spans
// several change stream batches: a commit per batch would stall the task for a coordinator
// round trip every batch. Committing on catching up keeps latency at one commit round trip
// when the stream is slow, and batches itself when it is fast: the events that arrive during a
// commit make the next transaction. The record bound limits what an abort makes the task read
// again.
const (
	TxnMaxAge     = 250 * time.Millisecond
	TxnMaxBatches = 8
)

// txn is a task's open transaction and the groups whose checkpoints wait for its commit.
type txn struct {
	cl      *kgo.Client
	open    bool
	began   time.Time
	records int
	// dropped is the ack tracker's drop count when the transaction began: a change means the
	// stop failed some of its records, and it must not commit without them.
	dropped int64
	waiting []pendingSeal
}

type pendingSeal struct {
	g     *ackGroup[checkpoint]
	cp    checkpoint
	hasCP bool
}

// openTxn creates the transactional producer and initialises its id, which fences any earlier
// owner of the task, before the task reads its offsets.
func (w *kafkaWriter) openTxn(ctx context.Context, cfg *Transactional) error {
	opts := append(append(append([]kgo.Opt(nil), cfg.ClientOpts...), ProducerOpts(cfg.Compression)...),
		kgo.TransactionalID(cfg.ID))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("transactional producer %s: %w", cfg.ID, err)
	}
	if _, _, err := cl.ProducerID(ctx); err != nil {
		cl.Close()
		return fmt.Errorf("initialise transactional id %s (fencing earlier owners): %w", cfg.ID, err)
	}
	w.txn = &txn{cl: cl}
	return nil
}

// beforeProduce begins a transaction when records are about to be written outside one.
func (w *kafkaWriter) beforeProduce(ctx context.Context) error {
	if w.txn.open {
		w.txn.records++
		return nil
	}
	if err := w.awaitSlowCommit(ctx); err != nil {
		return err
	}
	if err := w.txn.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	w.txn.open, w.txn.began, w.txn.records, w.txn.dropped = true, time.Now(), 1, w.acks.Dropped()
	return nil
}

// seal closes group g with its checkpoint, or defers that until the transaction carrying its
// records commits. caughtUp means nothing more is waiting to be read, the moment to commit.
func (w *kafkaWriter) seal(ctx context.Context, g *ackGroup[checkpoint], cp checkpoint, hasCP, caughtUp bool) error {
	if !w.txn.open {
		if hasCP {
			g.Seal(cp)
		} else {
			g.SealEmpty()
		}
		return nil
	}
	w.txn.waiting = append(w.txn.waiting, pendingSeal{g, cp, hasCP})
	if caughtUp || time.Since(w.txn.began) >= TxnMaxAge || w.txn.records >= TxnMaxBatches*w.cfg.MaxBatchSize {
		return w.endTxn(ctx, true)
	}
	return nil
}

// endTxn commits (or aborts) the open transaction and then seals the waiting groups: with
// their checkpoints after a commit, without after an abort (their records will be read again).
func (w *kafkaWriter) endTxn(ctx context.Context, commit bool) error {
	if !w.txn.open {
		return nil
	}
	x := w.txn
	x.open = false
	// Once decided, the end of a transaction is carried out even if the task is being stopped:
	// cancelling EndTransaction mid-request leaves unknown whether the records were committed,
	// and treating committed records as aborted delivers them twice (the position stays
	// behind them). The shutdown timeout bounds the wait instead.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.shutdownTimeout)
	defer cancel()
	var err error
	if commit {
		if err = x.cl.Flush(ctx); err == nil {
			if w.acks.Dropped() != x.dropped {
				err = fmt.Errorf("the task stopped while the transaction's records were in flight: %w", context.Canceled)
			} else {
				err = x.cl.EndTransaction(ctx, kgo.TryCommit)
			}
		}
	}
	if !commit || err != nil {
		abortErr := x.cl.AbortBufferedRecords(ctx)
		if endErr := x.cl.EndTransaction(ctx, kgo.TryAbort); endErr != nil && abortErr == nil {
			abortErr = endErr
		}
		if err == nil {
			err = abortErr
		}
	}
	// A checkpoint may follow its records only when they were committed: after an abort,
	// successful or not, the records are gone and the position must stay where it was.
	committed := commit && err == nil
	for _, w := range x.waiting {
		if committed && w.hasCP {
			w.g.Seal(w.cp)
		} else {
			w.g.SealEmpty()
		}
	}
	x.waiting = x.waiting[:0]
	if err != nil && commit && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("commit transaction (another owner may have fenced this task): %w", err)
	}
	return err
}

// closeTxn ends the task's transaction, committing it after a clean stop, and closes the
// producer.
func (w *kafkaWriter) closeTxn(ctx context.Context, clean bool) error {
	err := w.endTxn(ctx, clean)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	w.txn.cl.Close()
	return err
}

// awaitSlowCommit holds a new transaction back while the offset commit in flight has taken
// longer than one commit interval (heartbeat.interval.ms): an offsets topic that hangs rather
// than fails must not let the task run more than an interval's worth of records past its last
// commit. A commit that fails stops production instead (Run).
func (w *kafkaWriter) awaitSlowCommit(ctx context.Context) error {
	for {
		began := w.committing.Load()
		if began == 0 || time.Since(time.Unix(0, began)) < w.cfg.HeartbeatInterval {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
