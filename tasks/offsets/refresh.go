package offsets

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Refresh reads what other writers have committed to the topic since Open or
// the previous Refresh, up to each partition's last stable offset, so that
// Get and List see it. In a cluster a task that moves to this node must start
// from the previous owner's latest offset, and shards waiting for another
// shard's snapshot poll List: the worker calls Refresh before starting each
// task and every half second while tasks run.
//
// It is cheap when nothing is new: one ListOffsets request, no fetch. A key's
// newer record always wins over an older one (by offset within its
// partition), so re-reading records this store wrote itself, or reading an
// older record after Commit applied a newer one, never turns an offset back.
// Concurrent calls are serialised.
func (s *Store) Refresh(ctx context.Context) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	ends, err := s.listOffsets(ctx, s.adm.ListCommittedOffsets)
	if err != nil {
		return fmt.Errorf("refresh offsets from %s: list end offsets: %w", s.topic, err)
	}
	from := make(map[int32]int64, len(s.next))
	ends.Each(func(end kadm.ListedOffset) {
		// A partition added since Open starts at 0; a log start above it is
		// skipped to by loadPartition.
		from[end.Partition] = s.next[end.Partition]
	})
	if err := s.readTo(ctx, from, ends); err != nil {
		return fmt.Errorf("refresh offsets from %s: %w", s.topic, err)
	}
	return nil
}

// CatchUp reads, as Refresh does, but up to the end each partition has now (its high
// watermark) rather than its last stable offset, waiting while transactions open now hold
// that back. A task taking over with exactly.once calls it once its transactional id has
// fenced the previous owner: the previous owner's last offset may follow, in the topic, a
// record of another task's transaction still open, and reading only to the last stable
// offset would resume from an older position and deliver records twice. Open transactions
// end within a commit round trip; one left open by a crashed writer holds CatchUp back until
// the brokers abort it (the writer's transaction.timeout.ms) or ctx ends.
func (s *Store) CatchUp(ctx context.Context) error {
	ends, err := s.listOffsets(ctx, s.adm.ListEndOffsets)
	if err != nil {
		return fmt.Errorf("catch up with %s: list end offsets: %w", s.topic, err)
	}
	backoff := 10 * time.Millisecond
	for {
		if err := s.Refresh(ctx); err != nil {
			return err
		}
		if s.reached(ends) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("catch up with %s: an open transaction holds its last stable offset back: %w", s.topic, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// reached reports whether every partition has been read up to its offset in ends.
func (s *Store) reached(ends kadm.ListedOffsets) bool {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	done := true
	ends.Each(func(end kadm.ListedOffset) {
		if s.next[end.Partition] < end.Offset {
			done = false
		}
	})
	return done
}

// listOffsets lists the topic's offsets of one kind (start, end, last stable) with list,
// retrying what Kafka calls retriable.
func (s *Store) listOffsets(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error)) (kadm.ListedOffsets, error) {
	var out kadm.ListedOffsets
	err := retry(ctx, func() error {
		var err error
		if out, err = list(ctx, s.topic); err == nil {
			err = out.Error()
		}
		return err
	})
	return out, err
}
