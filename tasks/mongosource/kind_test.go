package mongosource

import (
	"slices"
	"strings"
	"testing"

	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// TestTopicsAreTheTopicsRunWrites: a task's topics are <topic.prefix>.<db>.<collection> of each
// collection shard it runs, or where topic.namespace.map routes it, as Run names the topic it
// creates and writes, and the heartbeat topic.
func TestTopicsAreTheTopicsRunWrites(t *testing.T) {
	k := New(Env{})
	cfg := map[string]string{"connector.class": "mongodb", "mongodb.connection.string": "mongodb://db:27017", "topic.prefix": "shop"}
	got, err := k.Topics("orders", cfg, taskid.Spec{Members: []taskid.Spec{
		{DB: "sales", Coll: "orders", Shard: 0, Shards: 2}, {DB: "sales", Coll: "line items", Shards: 1}}})
	if err != nil || !slices.Equal(got, []string{"shop.sales.orders", "shop.sales.line_items"}) {
		t.Errorf("Topics = %v, %v", got, err)
	}
	cfg["topic.namespace.map"] = `{"sales.orders": "orders", "*": "all"}`
	cfg["heartbeat.topic"] = "__debezium-heartbeat.shop"
	got, err = k.Topics("orders", cfg, taskid.Spec{Members: []taskid.Spec{
		{DB: "sales", Coll: "orders", Shards: 1}, {DB: "sales", Coll: "items", Shards: 1}}})
	if err != nil || !slices.Equal(got, []string{"shop.orders", "shop.all", "__debezium-heartbeat.shop"}) {
		t.Errorf("Topics with a namespace map and a heartbeat topic = %v, %v", got, err)
	}
	cfg["topic.prefix"] = ""
	if _, err := k.Topics("orders", cfg, taskid.Spec{DB: "a", Coll: "b", Shards: 1}); err == nil || !strings.Contains(err.Error(), "topic.prefix") {
		t.Errorf("Topics of an invalid config: %v, want the problem named", err)
	}
}
