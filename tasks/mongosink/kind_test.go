package mongosink

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/tasks/taskid"
)

func TestExpandListsEveryPartitionOfTheTopicsRead(t *testing.T) {
	ctx := context.Background()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for topic, partitions := range map[string]int32{"shop.t2": 1, "shop.t1": 2, "other": 1} {
		if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	kind := New(Env{Kafka: cl})
	base := map[string]string{"connector.class": Class, "mongodb.connection.string": "mongodb://h", "database": "d"}
	for _, tt := range []struct {
		name string
		cfg  map[string]string
		want []taskid.Spec
	}{
		{"a regex, by topic and partition", map[string]string{"topics.regex": `shop\..*`},
			[]taskid.Spec{{Topic: "shop.t1"}, {Topic: "shop.t1", Partition: 1}, {Topic: "shop.t2"}}},
		{"a list, a topic not created yet left for a later listing", map[string]string{"topics": "other,shop.t3"},
			[]taskid.Spec{{Topic: "other"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := maps.Clone(base)
			maps.Copy(cfg, tt.cfg)
			got, err := kind.Expand(ctx, "s", cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, tt.want, func(a, b taskid.Spec) bool { return a.Name() == b.Name() && a.Validate() == nil }) {
				t.Errorf("Expand = %+v, want %+v", got, tt.want)
			}
		})
	}
}
