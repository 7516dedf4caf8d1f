// Package taskid names a task's work: the one identity the coordinator stores and assigns and
// the task runtime runs, and the one format of a task's name and Kafka transactional.id.
package taskid

import (
	"errors"
	"fmt"
	"strings"
)

// Spec names one task's work: a shard of a collection (a source's unit) or a partition of a
// topic (a sink's unit), or, when the connector's tasks.max is below its number of units,
// several of them (Members). A connector kind's Expand returns it; the coordinator stores and
// assigns it without looking inside; the kind's Run gets it back.
type Spec struct {
	DB     string `json:"db"`
	Coll   string `json:"coll"`
	Shard  int    `json:"shard"` // 0-based
	Shards int    `json:"shards"`
	// Topic and Partition name a sink's unit, a topic partition; the collection shard fields
	// are then zero.
	Topic     string `json:"topic,omitempty"`
	Partition int32  `json:"partition,omitempty"`
	// Members are the units of a task that runs several; the fields above are then zero. A
	// member has no members.
	Members []Spec `json:"members,omitempty"`
}

// AllCollections stands for every collection in a scope task's Coll (capture.scope=database:
// every collection of DB), and for every database in its DB as well (deployment), as in the
// scope's offset key (DESIGN.md 5).
const AllCollections = "*"

// ShardName is a collection shard's name in offsets, logs and transactional ids:
// <db>.<coll>#<i>-of-<n>.
func ShardName(db, coll string, shard, shards int) string {
	return fmt.Sprintf("%s.%s#%d-of-%d", db, coll, shard, shards)
}

// PartitionName is a topic partition's name in logs and transactional ids: <topic>-<partition>,
// as Kafka names it. It never equals a ShardName: a topic name has no '#'.
func PartitionName(topic string, partition int32) string {
	return fmt.Sprintf("%s-%d", topic, partition)
}

// Name is the task's name: its collection shard's (ShardName) or topic partition's
// (PartitionName), or its members' names joined by "+". A task whose members change is
// another task, so its owner restarts it with the new ones.
func (s Spec) Name() string {
	if len(s.Members) == 0 {
		if s.Topic != "" {
			return PartitionName(s.Topic, s.Partition)
		}
		return ShardName(s.DB, s.Coll, s.Shard, s.Shards)
	}
	names := make([]string, len(s.Members))
	for i, m := range s.Members {
		names[i] = m.Name()
	}
	return strings.Join(names, "+")
}

// Units returns the collection shards the task runs: its members, or itself.
func (s Spec) Units() []Spec {
	if len(s.Members) == 0 {
		return []Spec{s}
	}
	return s.Members
}

// Config is the task's own entries in GET /connectors/{name}/tasks, over its connector's
// config: its name, and its collection shard or topic partition, or the units it runs.
func (s Spec) Config() map[string]string {
	cfg := map[string]string{"task.name": s.Name()}
	if s.Topic != "" {
		cfg["task.topic"] = s.Topic
		cfg["task.partition"] = fmt.Sprint(s.Partition)
		return cfg
	}
	if len(s.Members) > 0 {
		names := make([]string, len(s.Members))
		for i, m := range s.Members {
			names[i] = m.Name()
		}
		key := "task.collection.shards"
		if s.Members[0].Topic != "" {
			key = "task.topic.partitions"
		}
		cfg[key] = strings.Join(names, ",")
		return cfg
	}
	cfg["task.database"] = s.DB
	cfg["task.collection"] = s.Coll
	cfg["task.shard"] = fmt.Sprintf("%d-of-%d", s.Shard, s.Shards)
	return cfg
}

// Validate reports what makes s no task: members beside a unit of its own, or a unit that
// names neither one collection shard nor one topic partition.
func (s Spec) Validate() error {
	if len(s.Members) > 0 && (s.DB != "" || s.Coll != "" || s.Shard != 0 || s.Shards != 0 || s.Topic != "" || s.Partition != 0) {
		return fmt.Errorf("task %+v has members and a unit of its own", s)
	}
	for _, u := range s.Units() {
		if len(u.Members) > 0 || !(u.isShard() || u.isPartition()) {
			return fmt.Errorf("task %+v: %w", u, errNoUnit)
		}
	}
	return nil
}

func (s Spec) isShard() bool {
	return s.DB != "" && s.Coll != "" && s.Shards >= 1 && s.Shard >= 0 && s.Shard < s.Shards && s.Topic == "" && s.Partition == 0
}

func (s Spec) isPartition() bool {
	return s.Topic != "" && s.Partition >= 0 && s.DB == "" && s.Coll == "" && s.Shard == 0 && s.Shards == 0
}

var errNoUnit = errors.New("not one collection shard (a database, a collection and 0 <= shard < shards) " +
	"nor one topic partition (a topic and a partition >= 0)")

// TransactionalID is the Kafka transactional.id of one unit's producer, a collection shard's
// or a sink's topic partition's (DESIGN.md 6): stable per unit, never per node or per task
// grouping, so that whichever process runs the unit next fences the one before.
func TransactionalID(clusterID, connector, shard string) string {
	return clusterID + "-" + connector + "-" + shard
}
