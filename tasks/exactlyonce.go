package tasks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/tasks/offsets"
)

// With exactly.once (DESIGN.md 6) a task's offset record is produced to the offsets topic
// inside the transaction that carries the records before it, as Kafka Connect's KIP-618 does:
// the records and the position after them commit together or not at all, so a crash, a fence
// or a timed-out transaction never leaves records delivered whose position was not, nor a
// position past records that were not. The offsets store learns a position only once its
// transaction has committed; after an abort the task fails and its rerun reads, with
// read_committed, the last position that did commit.

// txnOffsets is what an exactly-once task needs of the offsets store besides OffsetStore: the
// exact record that commits an offset, to write in its own transaction, and a way to make
// the store hold it once that transaction committed. *offsets.Store is one.
type txnOffsets interface {
	Record(k offsets.Key, v *offsets.Value) *kgo.Record
	Apply(r *kgo.Record) error
}

// ErrNoTxnOffsets is returned by Run for an exactly.once task whose offsets store cannot
// write offsets in a transaction.
var ErrNoTxnOffsets = errors.New("tasks: exactly.once needs an offsets store that builds offset records for a transaction (Record, Apply), as *offsets.Store does")

func (w *kafkaWriter) exactlyOnce() bool { return w.cfg.ExactlyOnce }

// produceOffsets produces, in the open transaction, the offset record of the newest
// checkpoint of each key among waiting, in their order (a snapshot range's progress, then the
// stream's position), and returns the records and where their produce results arrive.
func (w *kafkaWriter) produceOffsets(ctx context.Context, waiting []pendingSeal) ([]*kgo.Record, <-chan error) {
	var latest []checkpoint
	for _, p := range waiting {
		if !p.hasCP {
			continue
		}
		if n := len(latest); n > 0 && latest[n-1].key == p.cp.key {
			latest[n-1] = p.cp
		} else {
			latest = append(latest, p.cp)
		}
	}
	if len(latest) == 0 {
		return nil, nil
	}
	produced := make(chan error, len(latest))
	records := make([]*kgo.Record, len(latest))
	now := time.Now().UnixMilli()
	for i, cp := range latest {
		cp.value.UpdatedMs = now
		records[i] = w.txnOffsets.Record(cp.key, cp.value)
		w.txn.cl.Produce(ctx, records[i], func(r *kgo.Record, err error) {
			if err != nil {
				err = fmt.Errorf("write offset %s in the transaction: %w", r.Key, err)
			}
			produced <- err
		})
	}
	return records, produced
}

// awaitProduced waits for n produce results on produced and returns the first error.
func awaitProduced(ctx context.Context, produced <-chan error, n int) error {
	var first error
	for range n {
		select {
		case err := <-produced:
			if first == nil {
				first = err
			}
		case <-ctx.Done():
			return fmt.Errorf("wait for the offset records of the transaction: %w", ctx.Err())
		}
	}
	return first
}

// learnOffsets makes the offsets store hold the offset records of a transaction that has
// committed, so that the task's own reads (a handover's retirement, a snapshot range's
// progress) see them.
func (w *kafkaWriter) learnOffsets(records []*kgo.Record) {
	if len(records) == 0 {
		return
	}
	w.lastOffsetTxn = time.Now()
	for _, r := range records {
		if err := w.txnOffsets.Apply(r); err != nil {
			w.log.Warn("offset committed but not recorded in memory", "key", string(r.Key), "err", err)
			continue
		}
		w.log.Debug("committed in the transaction", "key", string(r.Key), "offset", r.Offset)
	}
}

// commitAlone commits the checkpoint of a group that wrote no record in a transaction of its
// own: an idle position (an empty batch's post-batch token) at most every
// heartbeat.interval.ms, as the commit loop does at-least-once, any other at once. A skipped
// idle position is carried by the next transaction that commits.
func (w *kafkaWriter) commitAlone(ctx context.Context, g *ackGroup[checkpoint], cp checkpoint) error {
	if cp.idle && time.Since(w.lastOffsetTxn) < w.cfg.HeartbeatInterval {
		g.SealEmpty()
		return nil
	}
	if err := w.beginTxn(); err != nil {
		g.SealEmpty()
		return err
	}
	w.txn.waiting = append(w.txn.waiting, pendingSeal{g, cp, true})
	return w.endTxn(ctx, true)
}
