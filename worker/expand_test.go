package worker

import (
	"context"
	"testing"

	"github.com/mongorelay/mongorelay/tasks/connector"
	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// fourShards is a kind whose every connector has four collection shards.
type fourShards struct{}

func (fourShards) Plugin() connector.Plugin {
	return connector.Plugin{Class: "four", Type: connector.Source}
}
func (fourShards) ConfigDef() []connector.ConfigKey                       { return nil }
func (fourShards) Redact(string, map[string]string) map[string]string     { return nil }
func (fourShards) Check(context.Context, string, map[string]string) error { return nil }
func (fourShards) Run(context.Context, connector.Task) error              { return nil }
func (fourShards) Validate(_ string, c map[string]string) (map[string]string, error) {
	return c, nil
}
func (fourShards) Expand(context.Context, string, map[string]string) ([]taskid.Spec, error) {
	var specs []taskid.Spec
	for i := range 4 {
		specs = append(specs, taskid.Spec{DB: "db", Coll: "c", Shard: i, Shards: 4})
	}
	return specs, nil
}

// TestExpandReadsTasksMaxThroughItsReference caps a connector's tasks with a tasks.max given
// as a reference to an environment variable.
func TestExpandReadsTasksMaxThroughItsReference(t *testing.T) {
	catalog, err := connector.NewCatalog(fourShards{})
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{catalog: catalog}
	t.Setenv("MR_TEST_TASKS_MAX", "2")
	for _, tt := range []struct {
		tasksMax string
		want     int
	}{{"", 4}, {"3", 3}, {"${env:MR_TEST_TASKS_MAX}", 2}} {
		specs, err := n.expand(context.Background(), "c", map[string]string{connector.ClassKey: "four", "tasks.max": tt.tasksMax})
		if err != nil || len(specs) != tt.want {
			t.Errorf("tasks.max %q: %d tasks, %v; want %d", tt.tasksMax, len(specs), err, tt.want)
		}
	}
	if _, err := n.expand(context.Background(), "c", map[string]string{connector.ClassKey: "four", "tasks.max": "${env:MR_TEST_UNSET}"}); err == nil {
		t.Error("a tasks.max reference that does not resolve expanded")
	}
}
