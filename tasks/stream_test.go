package tasks

import (
	"context"
	"testing"

	"github.com/mongorelay/mongorelay/tasks/changestream"
)

func TestTheStreamAsksForSplitEventsOnlyWhereTheServerHasThem(t *testing.T) {
	for _, tt := range []struct {
		name   string
		split  bool
		shards int
	}{
		{"an old server", false, 1},
		{"a server with the stage", true, 1},
		{"a server with the stage, shards filtered there", true, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := &fakeMongo{}
			cfg := testConfig(t, map[string]string{"shard.filter": "server"})
			s := &streamSource{spec: Spec{Connector: cfg, DB: "db", Coll: "coll", Shards: tt.shards},
				cfg: cfg, mongo: m, log: quietLogger(), splitLargeEvents: tt.split}
			cs, _, err := s.open(context.Background(), changestream.Start{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cs.Close(context.Background()) }()
			if len(m.opts) != 1 || m.opts[0].SplitLargeEvents != tt.split {
				t.Fatalf("watched with %+v, want SplitLargeEvents %v", m.opts, tt.split)
			}
			// The split stage is added last by changestream.Open; the shard filter comes before.
			if want := tt.shards - 1; len(m.opts[0].Pipeline) != want {
				t.Errorf("pipeline %v, want %d stages", m.opts[0].Pipeline, want)
			}
		})
	}
}
