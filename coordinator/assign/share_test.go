package assign

import (
	"slices"
	"strings"
	"testing"

	"github.com/mongorelay/mongorelay/tasks/taskid"
)

func units(colls string, shards int) []taskid.Spec {
	var out []taskid.Spec
	for _, coll := range strings.Split(colls, ",") {
		for i := range shards {
			out = append(out, taskid.Spec{DB: "db", Coll: coll, Shard: i, Shards: shards})
		}
	}
	return out
}

func TestShare(t *testing.T) {
	tests := []struct {
		name  string
		units []taskid.Spec
		limit int
		want  []string
	}{
		{"no cap", units("a,b", 2), 0, []string{"db.a#0-of-2", "db.a#1-of-2", "db.b#0-of-2", "db.b#1-of-2"}},
		{"cap above the shards", units("a,b", 2), 5, []string{"db.a#0-of-2", "db.a#1-of-2", "db.b#0-of-2", "db.b#1-of-2"}},
		{"cap equal to the shards", units("a,b", 2), 4, []string{"db.a#0-of-2", "db.a#1-of-2", "db.b#0-of-2", "db.b#1-of-2"}},
		{"one task for all", units("a,b", 2), 1, []string{"db.a#0-of-2+db.a#1-of-2+db.b#0-of-2+db.b#1-of-2"}},
		{"a collection's shards together", units("a,b", 2), 2, []string{"db.a#0-of-2+db.a#1-of-2", "db.b#0-of-2+db.b#1-of-2"}},
		// Kafka Connect's groupPartitions: 7 over 3 is 3, 2, 2.
		{"the first groups one longer", units("a", 7), 3, []string{
			"db.a#0-of-7+db.a#1-of-7+db.a#2-of-7", "db.a#3-of-7+db.a#4-of-7", "db.a#5-of-7+db.a#6-of-7"}},
		{"a group of one is a plain task", units("a,b,c", 1), 2, []string{"db.a#0-of-1+db.b#0-of-1", "db.c#0-of-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Share(tt.units, tt.limit)
			var names []string
			seen := 0
			for _, s := range got {
				names = append(names, s.Name())
				seen += len(s.Units())
				if len(s.Members) == 1 {
					t.Errorf("task %s has a single member: it must be the plain task", s.Name())
				}
			}
			if !slices.Equal(names, tt.want) {
				t.Errorf("tasks %q, want %q", names, tt.want)
			}
			if seen != len(tt.units) {
				t.Errorf("the tasks run %d collection shards, want all %d", seen, len(tt.units))
			}
		})
	}
}
