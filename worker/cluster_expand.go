package worker

import (
	"context"
	"fmt"

	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/tasks/config"
)

// expand lists a connector's tasks for the leader (coordinator.ExpandFunc): one per shard of
// every collection its config selects, in a stable order. A collection created later is
// picked up at the leader's next listing (coordinator.Config.ExpandInterval).
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
	return specs, nil
}
