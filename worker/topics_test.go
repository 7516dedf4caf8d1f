package worker

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/tasks/offsets"
)

func TestWithTopicsFollowsTheClusterID(t *testing.T) {
	for _, tc := range []struct {
		name             string
		in               Config
		offsets, schemas string
		derived          bool
	}{
		{"the default cluster", Config{ClusterID: "mongorelay"}, "mongorelay-offsets", "mongorelay-schemas", true},
		{"a standalone process", Config{ClusterID: standaloneID}, "mongorelay-standalone-offsets", "mongorelay-standalone-schemas", true},
		{"topics given", Config{ClusterID: "prod", OffsetsTopic: "o", SchemasTopic: "s"}, "o", "s", false},
		{"only the schemas topic given", Config{ClusterID: "prod", SchemasTopic: "s"}, "prod-offsets", "s", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, derived := tc.in.withTopics()
			if got.OffsetsTopic != tc.offsets || got.SchemasTopic != tc.schemas || derived != tc.derived {
				t.Errorf("withTopics() = %q, %q, %v; want %q, %q, %v",
					got.OffsetsTopic, got.SchemasTopic, derived, tc.offsets, tc.schemas, tc.derived)
			}
		})
	}
}

func TestCheckLegacyTopics(t *testing.T) {
	quiet := offsets.Logger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, tc := range []struct {
		name string
		// legacy opens mongorelay-offsets first as this cluster id; "" opens it without one (as
		// earlier versions did) and "empty" leaves it so with no record, "-" leaves it absent.
		legacy string
		// own creates the node's own offsets topic first.
		own     bool
		cluster string
		refused bool
	}{
		{name: "a fresh Kafka", legacy: "-", cluster: "prod"},
		{name: "an empty old topic", legacy: "empty", cluster: "prod"},
		{name: "the default cluster uses the old name", legacy: "", cluster: "mongorelay"},
		{name: "an unstamped old topic", legacy: "", cluster: "prod", refused: true},
		{name: "an old topic of this cluster", legacy: "prod", cluster: "prod", refused: true},
		{name: "an old topic of another cluster", legacy: "mongorelay", cluster: "prod"},
		{name: "the own topic exists already", legacy: "", own: true, cluster: "prod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			brokers := c.ListenAddrs()
			cfg, _ := Config{ClusterID: tc.cluster}.withTopics()
			open := func(topic, id string) {
				s, err := offsets.Open(ctx, brokers, topic, quiet, offsets.ClusterID(id))
				if err != nil {
					t.Fatalf("open %s as %q: %v", topic, id, err)
				}
				s.Close()
			}
			if tc.legacy == "empty" {
				open(legacyOffsetsTopic, "")
			} else if tc.legacy != "-" {
				open(legacyOffsetsTopic, tc.legacy)
				// An earlier version's position (any record will do: the check reads no offset).
				cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
				if err != nil {
					t.Fatal(err)
				}
				err = cl.ProduceSync(ctx, &kgo.Record{Topic: legacyOffsetsTopic, Key: []byte("k"), Value: []byte("{}")}).FirstErr()
				cl.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
			if tc.own {
				open(cfg.OffsetsTopic, tc.cluster)
			}
			err = checkLegacyTopics(ctx, []kgo.Opt{kgo.SeedBrokers(brokers...)}, cfg)
			if !tc.refused {
				if err != nil {
					t.Fatalf("checkLegacyTopics: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("checkLegacyTopics: nil error, want a refusal")
			}
			for _, want := range []string{`"offsets.topic"`, cfg.OffsetsTopic, "offsets.topic=mongorelay-offsets",
				"schemas.topic=mongorelay-schemas", "offsets.topic=" + cfg.OffsetsTopic + " to start afresh"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}
