package tasks

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Transactional makes a task the single writer of its records (DESIGN.md 6): it writes through
// its own producers with stable transactional ids, so a new owner's first use of the ids fences
// the old owner's pending and future writes, even from a process that was paused and wakes up
// with batches still buffered. At-least-once, offsets stay outside the transaction: they are
// committed after the transaction that carried their records. With exactly.once the offset
// record is produced inside it (endTxn).
//
// A task alternates its transactions between two producers, ID and its alternate
// (TransactionalIDs). A task commits as soon as it has caught up with its stream, so its next
// transaction's first records usually reach the brokers while the coordinator is still
// writing the previous one's commit markers. Under one id the brokers refuse to add a
// partition to a transaction until those markers are written (CONCURRENT_TRANSACTIONS), and
// under Kafka 4's transaction protocol they retry only after add.partitions.to.txn.retry.backoff.ms,
// 20 ms by default, which delayed nearly every transaction by 20 ms. The other id's last
// transaction ended a whole transaction earlier, so nothing waits. Order holds: a transaction
// begins only after the one before it committed, whose records were all acknowledged first.
type Transactional struct {
	// ID is the transactional.id: <cluster.id>-<connector>-<task name>, never the node. The
	// task's second producer uses its alternate (TransactionalIDs).
	ID string
	// ClientOpts reach Kafka (seed brokers, SASL, TLS); the task adds ProducerOpts and its id.
	ClientOpts []kgo.Opt
	// Compression is the codec of the task's record batches; the zero value is none.
	Compression kgo.CompressionCodec
	// Timeout is the transaction.timeout.ms the producer asks for: how long a transaction left
	// open by a crashed owner holds back every read_committed reader of the topics it wrote,
	// the shared offsets topic included, before the brokers abort it. 0 keeps franz-go's 40s.
	Timeout time.Duration
	// RetiredID, when set, names the transactional.id of another collection shard of the
	// same connector (taskid.ShardName), so that a task taking over from the shards of an
	// earlier shard count can fence them (reshard.go).
	RetiredID func(shard string) string
	// Instrument, when not nil, returns the options of the task's own producer of
	// transactional id id, not of the clients that fence other ids: its client id and
	// metrics hooks.
	Instrument func(id string) []kgo.Opt
}

// TransactionalIDs are the transactional ids a task of transactional id id writes under, in
// turns: id and its alternate, id+"~1". Fencing a task's earlier owners initialises both.
func TransactionalIDs(id string) [2]string { return [2]string{id, id + "~1"} }

// clientOpts are the options of a producer using transactional id id, and extra.
func (t *Transactional) clientOpts(id string, extra ...kgo.Opt) []kgo.Opt {
	opts := append(append(append(append([]kgo.Opt(nil), t.ClientOpts...), ProducerOpts(t.Compression)...),
		kgo.TransactionalID(id), kgo.MetadataMinAge(txnRetryBackoff)), extra...)
	if t.Timeout > 0 {
		opts = append(opts, kgo.TransactionTimeout(t.Timeout))
	}
	return opts
}

// txnRetryBackoff is how soon a transactional producer retries a produce the broker answered
// with CONCURRENT_TRANSACTIONS: under transaction protocol 2 a produce that reaches the broker
// while the markers of the id's transaction before are still being written gets that answer.
// franz-go retries such a produce after a metadata refresh, which it spaces by MetadataMinAge:
// at its default, 5 s, the task's records (and a clean stop, which waits for them) stalled for
// up to 5 s. The Java producer retries after retry.backoff.ms, 100 ms. The refresh also
// follows other produce errors, such as a broker gone, where this keeps each producer to 10
// metadata requests a second.
const txnRetryBackoff = 100 * time.Millisecond

// InitID creates a producer with transactional id id and the task's producer settings
// (clientOpts), and initialises the id, which fences every earlier user of it and aborts the
// transaction it left open. The caller closes the client.
func (t *Transactional) InitID(ctx context.Context, id string, extra ...kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(t.clientOpts(id, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("transactional producer %s: %w", id, err)
	}
	if _, _, err := cl.ProducerID(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("initialise transactional id %s (fencing earlier owners): %w", id, err)
	}
	return cl, nil
}

// Fence initialises the transactional ids of tasks that will not run again under them, both
// of each (TransactionalIDs), once, and closes them: such a task can leave a transaction open
// that holds back every read_committed read of the offsets topic until
// transaction.timeout.ms; fencing aborts it at once, and keeps a paused process that still
// runs the task from writing again.
func (t *Transactional) Fence(ctx context.Context, ids ...string) error {
	for _, id := range ids {
		for _, id := range TransactionalIDs(id) {
			cl, err := t.InitID(ctx, id)
			if err != nil {
				return err
			}
			cl.Close()
		}
	}
	return nil
}

// ProducerOpts are a task's producer settings besides its transactional id. The benchmark's
// produce ceiling uses them too, so it measures the same work as a task.
func ProducerOpts(compression kgo.CompressionCodec) []kgo.Opt {
	return []kgo.Opt{
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.MaxBufferedRecords(maxBufferedRecords),
		kgo.ProducerBatchCompression(compression),
	}
}

// maxBufferedRecords bounds the records a task's producer holds before Kafka acknowledges
// them: the queue between the task and Kafka that QueueRemainingCapacity measures.
const maxBufferedRecords = 50_000

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
	// cl is the producer of the open transaction, or of the next one; rested is the other,
	// whose last transaction the brokers may still be completing. They swap at each end.
	cl, rested *kgo.Client
	open       bool
	began      time.Time
	records    int
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

// openTxn creates the task's two transactional producers and initialises their ids, which
// fences any earlier owner of the task, before the task reads its offsets. Both ids are
// initialised at once: a takeover waits for the slower, not for the sum. The producers record
// their failures to reach the brokers, for the task's degraded reason.
func (w *kafkaWriter) openTxn(ctx context.Context, cfg *Transactional) error {
	w.stalls.begin(waitOpen)
	defer w.stalls.end(waitOpen)
	ids := TransactionalIDs(cfg.ID)
	var cls [len(ids)]*kgo.Client
	var errs [len(ids)]error
	var wg sync.WaitGroup
	for i, id := range ids {
		opts := []kgo.Opt{kgo.WithHooks(brokerErrors{w.stalls.kafkaErrors()})}
		if cfg.Instrument != nil {
			opts = append(opts, cfg.Instrument(id)...)
		}
		wg.Go(func() { cls[i], errs[i] = cfg.InitID(ctx, id, opts...) })
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		for _, cl := range cls {
			if cl != nil {
				cl.Close()
			}
		}
		return err
	}
	w.txn = &txn{cl: cls[0], rested: cls[1]}
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
	if err := w.beginTxn(); err != nil {
		return err
	}
	w.txn.records = 1
	return nil
}

func (w *kafkaWriter) beginTxn() error {
	if err := w.txn.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	w.txn.open, w.txn.began, w.txn.records, w.txn.dropped = true, time.Now(), 0, w.acks.Dropped()
	return nil
}

// seal closes group g with its checkpoint, or defers that until the transaction carrying its
// records commits. caughtUp means nothing more is waiting to be read, the moment to commit.
func (w *kafkaWriter) seal(ctx context.Context, g *ackGroup[checkpoint], cp checkpoint, hasCP, caughtUp bool) error {
	if !w.txn.open && w.exactlyOnce() && hasCP {
		return w.commitAlone(ctx, g, cp)
	}
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
	w.stalls.begin(waitTxn)
	defer w.stalls.end(waitTxn)
	var err error
	var offsetRecords []*kgo.Record
	if commit {
		var offsetsProduced <-chan error
		if w.exactlyOnce() {
			offsetRecords, offsetsProduced = w.produceOffsets(ctx, x.waiting)
		}
		if err = x.cl.Flush(ctx); err == nil {
			err = awaitProduced(ctx, offsetsProduced, len(offsetRecords))
		}
		if err == nil {
			switch {
			case w.acks.Dropped() != x.dropped:
				err = fmt.Errorf("the task stopped while the transaction's records were in flight: %w", context.Canceled)
			case w.exactlyOnce() && w.acks.Err() != nil:
				// The offset must not commit past a record that failed: the records it
				// covers would be lost.
				err = fmt.Errorf("a record of the transaction failed: %w", w.acks.Err())
			default:
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
	if committed {
		w.metrics.TxnCommits.Add(1)
		w.learnOffsets(offsetRecords)
		if len(offsetRecords) > 0 {
			w.metrics.Committed(time.Now())
		}
	} else {
		w.metrics.TxnAborts.Add(1)
	}
	// With exactly.once the checkpoints were committed with the transaction: the commit loop
	// has nothing left to write.
	sealCP := committed && !w.exactlyOnce()
	for _, p := range x.waiting {
		if sealCP && p.hasCP {
			p.g.Seal(p.cp)
		} else {
			p.g.SealEmpty()
		}
	}
	x.waiting = x.waiting[:0]
	x.cl, x.rested = x.rested, x.cl
	switch {
	case err == nil || !commit || errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, kerr.ProducerFenced), errors.Is(err, kerr.InvalidProducerEpoch):
		return fmt.Errorf("commit transaction (another owner may have fenced this task): %w", err)
	}
	return fmt.Errorf("commit transaction: %w", err)
}

// closeTxn ends the task's transaction, committing it after a clean stop, and closes the
// producers.
func (w *kafkaWriter) closeTxn(ctx context.Context, clean bool) error {
	err := w.endTxn(ctx, clean)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	w.txn.close()
	return err
}

// close closes both producers.
func (x *txn) close() {
	x.cl.Close()
	x.rested.Close()
}

// awaitSlowCommit holds a new transaction back while the offset commit in flight has taken
// longer than one commit interval (heartbeat.interval.ms): an offsets topic that hangs rather
// than fails must not let the task run more than an interval's worth of records past its last
// commit. A commit that fails stops production instead (Run).
func (w *kafkaWriter) awaitSlowCommit(ctx context.Context) error {
	for {
		if d := w.stalls.waited(waitOffset, time.Now()); d == 0 || d < w.cfg.HeartbeatInterval {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
