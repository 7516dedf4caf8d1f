package worker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/internal/kafkatopic"
	"github.com/mongorelay/mongorelay/tasks/offsets"
)

// The offsets and schemas topics of every node before their defaults followed cluster.id.
const (
	legacyOffsetsTopic = "mongorelay-offsets"
	legacySchemasTopic = "mongorelay-schemas"
)

// withTopics names the offsets and schemas topics left unset after the cluster:
// <cluster.id>-offsets and <cluster.id>-schemas, so that clusters of different ids on one
// Kafka (a standalone process is cluster mongorelay-standalone) never share them by default.
// derived says whether the offsets topic was named so.
func (c Config) withTopics() (_ Config, derived bool) {
	if c.OffsetsTopic == "" {
		c.OffsetsTopic, derived = c.ClusterID+"-offsets", true
	}
	if c.SchemasTopic == "" {
		c.SchemasTopic = c.ClusterID + "-schemas"
	}
	return c, derived
}

// checkLegacyTopics refuses to start a node whose offsets topic was named after its cluster.id
// (cfg from withTopics) while that topic does not exist yet and mongorelay-offsets, the
// default of earlier versions, holds records and is this cluster's or no cluster's: its
// tasks would start over from a snapshot, and a standalone process's schemas would get new ids.
// The error tells how to keep the old topics or to start afresh.
func checkLegacyTopics(ctx context.Context, kafkaOpts []kgo.Opt, cfg Config) error {
	if cfg.OffsetsTopic == legacyOffsetsTopic {
		return nil
	}
	cl, err := kgo.NewClient(kafkaOpts...)
	if err != nil {
		return fmt.Errorf("look for the offsets topic of earlier versions: new Kafka client: %w", err)
	}
	defer cl.Close()
	topics, err := kadm.NewClient(cl).ListTopics(ctx, cfg.OffsetsTopic, legacyOffsetsTopic)
	if err != nil {
		return fmt.Errorf("look for the offsets topic of earlier versions: list topics: %w", err)
	}
	if topics.Has(cfg.OffsetsTopic) || !topics.Has(legacyOffsetsTopic) {
		return nil
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, legacyOffsetsTopic)
	if err != nil {
		return fmt.Errorf("look for the offsets topic of earlier versions: list its end offsets: %w", err)
	}
	empty := true
	ends.Each(func(o kadm.ListedOffset) { empty = empty && o.Err == nil && o.Offset == 0 })
	if empty {
		return nil
	}
	owner, stamped, err := kafkatopic.Owner(ctx, kafkaOpts, offsets.Stamp(legacyOffsetsTopic))
	if err != nil {
		return fmt.Errorf("look for the offsets topic of earlier versions: %w", err)
	}
	if stamped && owner != cfg.ClusterID {
		return nil // another cluster's: nothing of ours is in it
	}
	whose := "no cluster has stamped it"
	if stamped {
		whose = fmt.Sprintf("cluster %q stamped it", owner)
	}
	return fmt.Errorf("worker config %q: unset, so it is %s, which does not exist yet, "+
		"while %s, the default of earlier versions, holds task positions (%s) that may be this node's: "+
		"set offsets.topic=%s and schemas.topic=%s to go on from them, or offsets.topic=%s to start afresh",
		"offsets.topic", cfg.OffsetsTopic, legacyOffsetsTopic, whose,
		legacyOffsetsTopic, legacySchemasTopic, cfg.OffsetsTopic)
}
