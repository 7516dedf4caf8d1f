package tasks

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/resumetoken"
	"github.com/mongorelay/mongorelay/tasks/shard"
	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// When `shards` changes (DESIGN.md 5), the new shards find the old shards' offsets
// ({"shard":"j-of-m"}, m != n). They start at the oldest old position and drop every event that
// an old shard had already delivered: the event's position is at or before the committed
// position of the old shard its document belonged to. Past the newest old position nothing was
// delivered, so the check ends; once every new shard is past it, shard 0 removes the old keys.
// Old keys of several earlier counts (a change made before the last one finished) are checked
// together: an event was delivered if any generation's shard for it had committed past it.

// The shards of an earlier count are retired: nothing runs their transactional ids again, so
// a transaction one of them left open (its process killed mid-transaction) would hold back
// every read_committed read of the shared offsets topic until the brokers time it out, and a
// paused process still running one could commit past the positions the handover read. Each
// task of the new count fences them (fenceRetired) right after fencing its own previous owner
// and before it reads the offsets: only the new shards know the old names (from the old
// offset keys) at the moment it matters, each must not read before the fence, and fencing
// an id twice is harmless. Once the old keys are removed there is nothing left to fence.

// fenceRetired initialises, once each, the transactional ids of every shard of the earlier
// shard counts found in the collection's offsets. It does nothing without Transactional.RetiredID.
func (t *Task) fenceRetired(ctx context.Context) error {
	tx := t.writer.transactional
	if tx.RetiredID == nil {
		return nil
	}
	var ids []string
	seen := map[int]bool{t.spec.Shards: true}
	for _, e := range t.planner.offsets.ShardOffsets(t.cfg.Name, t.spec.DB, t.spec.Coll) {
		m := e.Key.Count
		if seen[m] {
			continue
		}
		seen[m] = true
		for j := range m {
			ids = append(ids, tx.RetiredID(taskid.ShardName(t.spec.DB, t.spec.Coll, j, m)))
		}
	}
	if len(ids) == 0 {
		return nil
	}
	t.stalls.begin(waitOpen)
	err := tx.Fence(ctx, ids...)
	t.stalls.end(waitOpen)
	if err != nil {
		return fmt.Errorf("fence the shards of an earlier shard count: %w", err)
	}
	t.log.Info("fenced the transactional ids of the shards of an earlier shard count", "ids", len(ids))
	return nil
}

// handover is the positions of the shard generations that came before this one.
type handover struct {
	gens        []generation
	oldest      resumetoken.Position
	oldestValue *offsets.Value // the committed value at oldest: where the new shards start
	newest      resumetoken.Position
	keys        []offsets.Key
}

type generation struct {
	n   int
	pos map[int]resumetoken.Position // by old shard index; a missing shard delivered nothing
}

// loadHandover returns the earlier generations' positions, nil when there are none.
func (p *resumePlanner) loadHandover() (*handover, error) {
	h := &handover{}
	byCount := map[int]generation{}
	for _, e := range p.offsets.ShardOffsets(p.cfg.Name, p.spec.DB, p.spec.Coll) {
		k := e.Key
		if k.Count == p.spec.Shards {
			continue
		}
		pos, err := e.Value.Position()
		if err != nil {
			return nil, fmt.Errorf("old shard offset %s: %w", k, err)
		}
		g, ok := byCount[k.Count]
		if !ok {
			g = generation{n: k.Count, pos: map[int]resumetoken.Position{}}
			byCount[k.Count] = g
		}
		g.pos[k.Index] = pos
		if len(h.keys) == 0 || resumetoken.Compare(pos, h.oldest) < 0 {
			h.oldest, h.oldestValue = pos, e.Value
		}
		if len(h.keys) == 0 || resumetoken.Compare(pos, h.newest) > 0 {
			h.newest = pos
		}
		h.keys = append(h.keys, k)
	}
	if len(h.keys) == 0 {
		return nil, nil
	}
	for _, g := range byCount {
		h.gens = append(h.gens, g)
	}
	return h, nil
}

// delivered reports whether an earlier generation already delivered the raw change event, and
// whether the event is past every earlier position (then no later event needs the check).
func (h *handover) delivered(raw bson.Raw) (delivered, past bool, err error) {
	data, ok := raw.Lookup("_id", "_data").StringValueOK()
	if !ok {
		return false, false, fmt.Errorf("change event has no _id._data resume token")
	}
	pos, err := resumetoken.Decode(data)
	if err != nil {
		return false, false, fmt.Errorf("decode change event token: %w", err)
	}
	if resumetoken.Compare(pos, h.newest) > 0 {
		return false, true, nil
	}
	id, err := raw.LookupErr("documentKey", "_id")
	if err != nil {
		return false, false, nil // no document: not a record either way
	}
	for _, g := range h.gens {
		j, err := shard.ForID(id, g.n)
		if err != nil {
			return false, false, err
		}
		if p, ok := g.pos[j]; ok && resumetoken.Compare(pos, p) <= 0 {
			return true, false, nil
		}
	}
	return false, false, nil
}

// retirePoll is how often shard 0, past the handover, checks whether every new shard is too.
const retirePoll = time.Second

// retireOldKeys removes the earlier generations' offsets once every shard of this generation
// has committed a position past the newest of them. It reports whether it did.
func (p *resumePlanner) retireOldKeys(ctx context.Context, h *handover) (bool, error) {
	for i := 0; i < p.spec.Shards; i++ {
		v, err := p.getOffset(offsets.ShardKey(p.cfg.Name, p.spec.DB, p.spec.Coll, i, p.spec.Shards))
		if err != nil || v == nil {
			return false, err
		}
		pos, err := v.Position()
		if err != nil || resumetoken.Compare(pos, h.newest) <= 0 {
			return false, err
		}
	}
	for _, k := range h.keys {
		if err := p.offsets.Commit(ctx, k, nil); err != nil {
			return false, fmt.Errorf("remove old shard offset %s: %w", k, err)
		}
	}
	p.log.Info("resharding complete: old shard offsets removed", "keys", len(h.keys))
	return true, nil
}
