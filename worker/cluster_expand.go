package worker

import (
	"context"
	"fmt"

	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/tasks/config"
)

// expand lists a connector's tasks for the leader (coordinator.ExpandFunc): one per shard of
// every collection its config selects, in a stable order, or tasks.max tasks sharing them when
// there are more. A collection created later is picked up at the leader's next listing
// (coordinator.Config.ExpandInterval).
func (c *Cluster) expand(ctx context.Context, name string, raw map[string]string) ([]coordinator.TaskSpec, error) {
	cfg, err := config.Parse(name, raw)
	if err != nil {
		return nil, fmt.Errorf("connector %s: %w", name, err)
	}
	mc, release, err := c.mongo.acquire(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer release()
	nss, err := collectionsOf(ctx, mc, cfg)
	if err != nil {
		return nil, fmt.Errorf("connector %s: %w", name, err)
	}
	specs := make([]coordinator.TaskSpec, 0, len(nss)*cfg.Shards)
	for _, ns := range nss {
		for i := range cfg.Shards {
			specs = append(specs, coordinator.TaskSpec{DB: ns.DB, Coll: ns.Coll, Shard: i, Shards: cfg.Shards})
		}
	}
	return shareTasks(specs, cfg.TasksMax), nil
}

// shareTasks groups collection shards into at most limit tasks (0: no cap) the way Kafka
// Connect's ConnectorUtils.groupPartitions does: contiguous runs in the given order, the first
// len(units) mod limit of them one longer. Neighbours in that order are mostly shards of one
// collection, so a collection's shards tend to share a task.
func shareTasks(units []coordinator.TaskSpec, limit int) []coordinator.TaskSpec {
	if limit <= 0 || len(units) <= limit {
		return units
	}
	out := make([]coordinator.TaskSpec, 0, limit)
	per, longer := len(units)/limit, len(units)%limit
	for i, start := 0, 0; i < limit; i++ {
		n := per
		if i < longer {
			n++
		}
		if n == 1 {
			out = append(out, units[start]) // the task it would be without the cap
		} else {
			out = append(out, coordinator.TaskSpec{Members: units[start : start+n : start+n]})
		}
		start += n
	}
	return out
}
