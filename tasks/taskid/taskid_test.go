package taskid

import (
	"maps"
	"testing"
)

func TestConfig(t *testing.T) {
	a, b, c := Spec{DB: "shop", Coll: "a", Shards: 1}, Spec{DB: "shop", Coll: "b", Shards: 1}, Spec{DB: "shop", Coll: "c", Shard: 0, Shards: 1}
	tests := []struct {
		name string
		spec Spec
		want map[string]string
	}{
		{"a task sharing collection shards", Spec{Members: []Spec{a, b}}, map[string]string{
			"task.name": "shop.a#0-of-1+shop.b#0-of-1", "task.collection.shards": "shop.a#0-of-1,shop.b#0-of-1"}},
		{"a one-shard task", c, map[string]string{
			"task.name": "shop.c#0-of-1", "task.database": "shop", "task.collection": "c", "task.shard": "0-of-1"}},
		{"a topic partition", Spec{Topic: "t1", Partition: 3}, map[string]string{
			"task.name": "t1-3", "task.topic": "t1", "task.partition": "3"}},
		{"a task sharing topic partitions", Spec{Members: []Spec{{Topic: "t1"}, {Topic: "t2", Partition: 1}}}, map[string]string{
			"task.name": "t1-0+t2-1", "task.topic.partitions": "t1-0,t2-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.spec.Config(); !maps.Equal(got, tt.want) {
				t.Errorf("Config() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		ok   bool
	}{
		{"a collection shard", Spec{DB: "d", Coll: "c", Shard: 1, Shards: 2}, true},
		{"members", Spec{Members: []Spec{{DB: "d", Coll: "a", Shards: 1}, {DB: "d", Coll: "b", Shards: 1}}}, true},
		{"no collection", Spec{DB: "d", Shards: 1}, false},
		{"shard out of range", Spec{DB: "d", Coll: "c", Shard: 2, Shards: 2}, false},
		{"members beside a shard of its own", Spec{DB: "d", Coll: "c", Shards: 1, Members: []Spec{{DB: "d", Coll: "a", Shards: 1}}}, false},
		{"a topic partition", Spec{Topic: "t", Partition: 2}, true},
		{"topic partitions as members", Spec{Members: []Spec{{Topic: "t"}, {Topic: "t", Partition: 1}}}, true},
		{"a negative partition", Spec{Topic: "t", Partition: -1}, false},
		{"a topic partition and a collection shard in one", Spec{DB: "d", Coll: "c", Shards: 1, Topic: "t"}, false},
		{"members beside a partition of its own", Spec{Topic: "t", Members: []Spec{{Topic: "u"}}}, false},
		{"nested members", Spec{Members: []Spec{{Members: []Spec{{DB: "d", Coll: "a", Shards: 1}}}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.spec.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}
