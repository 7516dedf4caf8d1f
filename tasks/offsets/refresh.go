package offsets

import (
	"context"
	"fmt"

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
	var ends kadm.ListedOffsets
	err := retry(ctx, func() error {
		var err error
		if ends, err = s.adm.ListCommittedOffsets(ctx, s.topic); err == nil {
			err = ends.Error()
		}
		return err
	})
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
