// Package taskid names a task's work: the one identity the coordinator stores and assigns and
// the task runtime runs, and the one format of a task's name and Kafka transactional.id.
package taskid

import (
	"errors"
	"fmt"
	"strings"
)

// Spec names one task's work: a shard of a collection, or, when the connector's tasks.max is
// below its number of collection shards, several of them (Members). A connector kind's Expand
// returns it; the coordinator stores and assigns it without looking inside; the kind's Run
// gets it back.
type Spec struct {
	DB     string `json:"db"`
	Coll   string `json:"coll"`
	Shard  int    `json:"shard"` // 0-based
	Shards int    `json:"shards"`
	// Members are the collection shards of a task that runs several; the fields above are
	// then zero. A member has no members.
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

// Name is the task's name: its collection shard's (ShardName), or its members' names joined
// by "+". A task whose members change is another task, so its owner restarts it with the new
// ones.
func (s Spec) Name() string {
	if len(s.Members) == 0 {
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
// config: its name, and its collection shard or the collection shards it runs.
func (s Spec) Config() map[string]string {
	cfg := map[string]string{"task.name": s.Name()}
	if len(s.Members) > 0 {
		names := make([]string, len(s.Members))
		for i, m := range s.Members {
			names[i] = m.Name()
		}
		cfg["task.collection.shards"] = strings.Join(names, ",")
		return cfg
	}
	cfg["task.database"] = s.DB
	cfg["task.collection"] = s.Coll
	cfg["task.shard"] = fmt.Sprintf("%d-of-%d", s.Shard, s.Shards)
	return cfg
}

// Validate reports what makes s no task: members beside a collection shard of its own, or a
// unit that names no collection shard.
func (s Spec) Validate() error {
	if len(s.Members) > 0 && (s.DB != "" || s.Coll != "" || s.Shard != 0 || s.Shards != 0) {
		return fmt.Errorf("task %+v has members and a collection shard of its own", s)
	}
	for _, u := range s.Units() {
		if u.DB == "" || u.Coll == "" || u.Shards < 1 || u.Shard < 0 || u.Shard >= u.Shards || len(u.Members) > 0 {
			return fmt.Errorf("task %+v: %w", u, errNoShard)
		}
	}
	return nil
}

var errNoShard = errors.New("not one collection shard: want a database, a collection and 0 <= shard < shards")

// TransactionalID is the Kafka transactional.id of one collection shard's producer (DESIGN.md
// 6): stable per shard, never per node or per task grouping, so that whichever process runs
// the shard next fences the one before.
func TransactionalID(clusterID, connector, shard string) string {
	return clusterID + "-" + connector + "-" + shard
}
