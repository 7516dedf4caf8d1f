package worker

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/api"
	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/taskid"
)

func TestAPartitionIsTheOffsetsKeysObject(t *testing.T) {
	for _, k := range []offsets.Key{offsets.ShardKey("c", "shop", "a\"b", 1, 4), offsets.SnapshotKey("c", "shop", "a", 0, 2)} {
		got := string(partitionOf(k))
		if want := strings.TrimSuffix(strings.TrimPrefix(k.String(), `["c",`), "]"); got != want {
			t.Errorf("partitionOf(%s) = %s, want %s", k, got, want)
		}
	}
}

func TestOffsetEntryReadsWhatPATCHAccepts(t *testing.T) {
	const token = "8263515EAC000000022B0429296E1404"
	shard := `{"db":"shop","coll":"orders","shard":"1-of-2"}`
	for _, tc := range []struct {
		name, partition, offset string
		wantKey                 offsets.Key
		wantTS                  uint32 // the value's cluster time; 0 with no error: a tombstone
		wantToken               string
		wantAt                  *offsets.ClusterTime // the stored start (inclusive), where it matters
		wantKafka               int64                // a sink's kafka_offset, where wantKey is a topic partition
		wantErr                 string
	}{
		{name: "a resume token object", partition: shard, offset: `{"resume_token":{"_data":"` + token + `"}}`,
			wantKey: offsets.ShardKey("c", "shop", "orders", 1, 2), wantTS: 0x63515EAC, wantToken: token},
		{name: "a resume token string", partition: shard, offset: `{"resume_token":"` + token + `"}`,
			wantKey: offsets.ShardKey("c", "shop", "orders", 1, 2), wantTS: 0x63515EAC, wantToken: token},
		{name: "a cluster time is the position after which", partition: shard, offset: `{"cluster_time":{"t":1700000000,"i":3}}`,
			wantKey: offsets.ShardKey("c", "shop", "orders", 1, 2), wantTS: 1700000000, wantAt: &offsets.ClusterTime{T: 1700000000, I: 4}},
		{name: "after the last increment of a second", partition: shard, offset: `{"cluster_time":{"t":1700000000,"i":4294967295}}`,
			wantKey: offsets.ShardKey("c", "shop", "orders", 1, 2), wantTS: 1700000001, wantAt: &offsets.ClusterTime{T: 1700000001}},
		{name: "a token with its own cluster time, as GET shows it", partition: shard,
			offset:  `{"v":1,"resume_token":{"_data":"` + token + `"},"cluster_time":{"t":1666277036,"i":2},"updated_ms":1721140162914}`,
			wantKey: offsets.ShardKey("c", "shop", "orders", 1, 2), wantTS: 0x63515EAC, wantToken: token, wantAt: &offsets.ClusterTime{T: 0x63515EAC, I: 2}},
		{name: "a snapshot range as GET shows it", partition: `{"db":"shop","coll":"orders","snapshot":"0-of-3"}`,
			offset:  `{"v":1,"cluster_time":{"t":1700000000,"i":6},"snapshot":{"min_id":"","max_id":"","last_id":"","copied":3,"done":true}}`,
			wantKey: offsets.SnapshotKey("c", "shop", "orders", 0, 3), wantTS: 1700000000, wantAt: &offsets.ClusterTime{T: 1700000000, I: 7}},
		{name: "null deletes", partition: shard, offset: `null`, wantKey: offsets.ShardKey("c", "shop", "orders", 1, 2)},
		{name: "what GET shows, with a token", partition: shard,
			offset:  `{"v":1,"resume_token":{"_data":"` + token + `"},"cluster_time":{"t":1666277036,"i":2},"txn_op_index":0,"snapshot":null,"updated_ms":1}`,
			wantKey: offsets.ShardKey("c", "shop", "orders", 1, 2), wantTS: 0x63515EAC, wantToken: token},
		{name: "what GET shows, with a cluster time", partition: shard,
			offset:  `{"v":1,"resume_token":null,"cluster_time":{"t":1700000000,"i":3},"txn_op_index":0,"snapshot":null,"updated_ms":1}`,
			wantKey: offsets.ShardKey("c", "shop", "orders", 1, 2), wantTS: 1700000000},
		{name: "what GET shows during a snapshot", partition: shard,
			offset:  `{"v":1,"resume_token":null,"cluster_time":{"t":1700000000,"i":3},"txn_op_index":0,"snapshot":{"done":false},"updated_ms":1}`,
			wantErr: "snapshot progress"},
		{name: "a snapshot range may be deleted", partition: `{"db":"shop","coll":"orders","snapshot":"0-of-3"}`, offset: `null`,
			wantKey: offsets.SnapshotKey("c", "shop", "orders", 0, 3)},
		{name: "a copied snapshot range may be given back", partition: `{"db":"shop","coll":"orders","snapshot":"0-of-3"}`,
			offset:  `{"v":1,"resume_token":null,"cluster_time":{"t":1700000000,"i":3},"txn_op_index":0,"snapshot":{"min_id":"","max_id":"","last_id":"","copied":5,"done":true},"updated_ms":1}`,
			wantKey: offsets.SnapshotKey("c", "shop", "orders", 0, 3), wantTS: 1700000000},
		{name: "a snapshot range being copied may be given back: the connector is STOPPED", partition: `{"db":"shop","coll":"orders","snapshot":"0-of-3"}`,
			offset:  `{"v":1,"resume_token":null,"cluster_time":{"t":1700000000,"i":3},"txn_op_index":0,"snapshot":{"min_id":"","max_id":"","last_id":"","copied":5,"done":false},"updated_ms":1}`,
			wantKey: offsets.SnapshotKey("c", "shop", "orders", 0, 3), wantTS: 1700000000},
		{name: "a snapshot range may not be set", partition: `{"db":"shop","coll":"orders","snapshot":"0-of-3"}`,
			offset: `{"cluster_time":{"t":1,"i":0}}`, wantErr: "can only be deleted"},
		{name: "snapshot progress on a shard", partition: shard,
			offset: `{"cluster_time":{"t":1,"i":0},"snapshot":{"copied":3}}`, wantErr: "belongs to a snapshot range"},
		{name: "a token with another cluster time", partition: shard, offset: `{"resume_token":"` + token + `","cluster_time":{"t":1,"i":0}}`,
			wantErr: "is not the resume token's"},
		{name: "a cluster time with a txn_op_index", partition: shard, offset: `{"cluster_time":{"t":1,"i":0},"txn_op_index":2}`,
			wantErr: "txn_op_index goes with a resume_token"},
		{name: "a newer format", partition: shard, offset: `{"v":99,"cluster_time":{"t":1,"i":0}}`, wantErr: "newer"},
		{name: "neither", partition: shard, offset: `{}`, wantErr: "one of"},
		{name: "an unknown field", partition: shard, offset: `{"position":1}`, wantErr: "resume_token"},
		{name: "a bad token", partition: shard, offset: `{"resume_token":"zz"}`, wantErr: `resume_token "zz"`},
		{name: "a bad shard", partition: `{"db":"shop","coll":"orders","shard":"2-of-2"}`, offset: `null`, wantErr: "0 <= i < n"},
		{name: "no collection", partition: `{"db":"shop","shard":"0-of-1"}`, offset: `null`, wantErr: "want"},
		{name: "a partition of another kind", partition: `{"kafka_topic":"t"}`, offset: `null`, wantErr: "want"},
		{name: "a sink's partition may be deleted", partition: `{"kafka_topic":"t","kafka_partition":3}`, offset: `null`,
			wantKey: offsets.PartitionKey("c", "t", 3)},
		{name: "a sink's partition as GET shows it", partition: `{"kafka_topic":"t","kafka_partition":3}`,
			offset: `{"v":1,"kafka_offset":42,"updated_ms":1}`, wantKey: offsets.PartitionKey("c", "t", 3), wantKafka: 42},
		{name: "a sink's partition as Kafka Connect takes it", partition: `{"kafka_topic":"t","kafka_partition":0}`,
			offset: `{"kafka_offset":0}`, wantKey: offsets.PartitionKey("c", "t", 0), wantKafka: 0},
		{name: "a sink's partition with a resume token", partition: `{"kafka_topic":"t","kafka_partition":0}`,
			offset: `{"resume_token":"` + token + `"}`, wantErr: "kafka_offset"},
		{name: "a negative sink offset", partition: `{"kafka_topic":"t","kafka_partition":0}`,
			offset: `{"kafka_offset":-1}`, wantErr: "kafka_offset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := offsetEntry("c", api.Offset{Partition: json.RawMessage(tc.partition), Offset: json.RawMessage(tc.offset)})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("offsetEntry = %+v, %v; want an error with %q", e, err, tc.wantErr)
				}
				return
			}
			if err != nil || e.Key != tc.wantKey {
				t.Fatalf("offsetEntry = %+v, %v; want key %s", e, err, tc.wantKey)
			}
			if tc.wantKey.KafkaTopic != "" {
				switch {
				case tc.offset == "null" && e.Value != nil:
					t.Errorf("value %+v, want a tombstone", e.Value)
				case tc.offset != "null" && (e.Value == nil || e.Value.KafkaOffset == nil || *e.Value.KafkaOffset != tc.wantKafka):
					t.Errorf("value %+v, want kafka_offset %d", e.Value, tc.wantKafka)
				}
				return
			}
			switch {
			case tc.wantTS == 0 && e.Value != nil:
				t.Errorf("value %+v, want a tombstone", e.Value)
			case tc.wantTS != 0 && (e.Value == nil || e.Value.ClusterTime == nil || e.Value.ClusterTime.T != tc.wantTS):
				t.Errorf("value %+v, want cluster time %d", e.Value, tc.wantTS)
			case tc.wantToken != "" && (e.Value.ResumeToken == nil || e.Value.ResumeToken.Data != tc.wantToken):
				t.Errorf("value %+v, want token %s", e.Value, tc.wantToken)
			case tc.wantToken == "" && e.Value != nil && e.Value.ResumeToken != nil:
				t.Errorf("value %+v, want no token", e.Value)
			case tc.wantAt != nil && *e.Value.ClusterTime != *tc.wantAt:
				t.Errorf("stored cluster time %+v, want %+v", *e.Value.ClusterTime, *tc.wantAt)
			}
		})
	}
}

func TestGETOutputIsPATCHInput(t *testing.T) {
	token, err := offsets.ResumeAt("8263515EAC000000022B0429296E1404")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		v        offsets.Value
		snapshot bool
	}{
		{name: "a resume token", v: *token},
		{name: "a cluster time set by PATCH", v: offsets.Value{Version: 1, ClusterTime: &offsets.ClusterTime{T: 1700000000, I: 4}}},
		{name: "a cluster time at a second's start", v: offsets.Value{Version: 1, ClusterTime: &offsets.ClusterTime{T: 1700000000}}},
		{name: "a snapshot range", snapshot: true, v: offsets.Value{Version: 1, ClusterTime: &offsets.ClusterTime{T: 1700000000, I: 1},
			Snapshot: &offsets.Snapshot{MinID: `{"$oid":"65f000000000000000000000"}`, Copied: 12, Done: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shown, err := json.Marshal(shownOffset(&tc.v))
			if err != nil {
				t.Fatal(err)
			}
			got, err := takenOffset(shown, tc.snapshot)
			if err != nil {
				t.Fatalf("PATCH of GET's %s: %v", shown, err)
			}
			want := tc.v
			want.UpdatedMs = 0
			if g, w := mustJSON(t, got), mustJSON(t, &want); g != w {
				t.Errorf("GET showed %s, which PATCH stores as %s; want %s", shown, g, w)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTheOffsetsAPIReadsAndChangesTheOffsetsTopic runs the offsets API on a one-node cluster
// over an in-process Kafka: GET in any state, changes only while STOPPED, and only the
// connector's own offsets touched.
func TestTheOffsetsAPIReadsAndChangesTheOffsetsTopic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kafka, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer kafka.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := offsets.Open(ctx, kafka.ListenAddrs(), "offsets", offsets.Partitions(1), offsets.ReplicationFactor(1), offsets.Logger(log),
		offsets.ClusterID("cl")) // the topic's first record is the cluster's stamp
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cn, err := coordinator.Open(ctx, coordinator.Config{
		NodeID: "solo", InMemory: true, Bootstrap: true, Logger: log,
		Expand: func(context.Context, string, map[string]string) ([]taskid.Spec, error) { return nil, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cn.Shutdown() })
	eventually(t, "the node leads", cn.IsLeader)
	a := nodeAPI{&Node{id: "solo", node: cn, offsets: store, log: log, reports: newTaskReports(),
		cfg: Config{ClusterID: "cl", TransactionTimeout: time.Minute}, kafkaOpts: []kgo.Opt{kgo.SeedBrokers(kafka.ListenAddrs()...)}}}

	// A connector named as the stamp key's first element ["mongorelay.cluster",{...}].
	for _, name := range []string{"c", "other", "mongorelay.cluster"} {
		if err := cn.CreateConnector(ctx, name, map[string]string{"connector.class": "mongodb"}, coordinator.StateRunning); err != nil {
			t.Fatal(err)
		}
	}
	v, err := offsets.ResumeAt("8263515EAC000000022B0429296E1404")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CommitMany(ctx, []offsets.Entry{{Key: offsets.ShardKey("c", "shop", "a", 0, 1), Value: v},
		{Key: offsets.ShardKey("other", "shop", "a", 0, 1), Value: v}}); err != nil {
		t.Fatal(err)
	}

	got, err := a.ConnectorOffsets(ctx, "c")
	if err != nil || len(got) != 1 || string(got[0].Partition) != `{"db":"shop","coll":"a","shard":"0-of-1"}` ||
		!strings.Contains(string(got[0].Offset), `"resume_token":{"_data":"8263515EAC000000022B0429296E1404"}`) {
		t.Fatalf("offsets of a RUNNING connector: %s, %v", got, err)
	}
	if got, err := a.ConnectorOffsets(ctx, "mongorelay.cluster"); err != nil || len(got) != 0 {
		t.Errorf("the stamp was listed as an offset: %s, %v", got, err)
	}
	if _, err := a.ConnectorOffsets(ctx, "nope"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("offsets of no connector: %v, want ErrNotFound", err)
	}
	patch := []api.Offset{{Partition: json.RawMessage(`{"db":"shop","coll":"b","shard":"0-of-1"}`),
		Offset: json.RawMessage(`{"cluster_time":{"t":1700000000,"i":1}}`)}}
	if err := a.AlterOffsets(ctx, "c", patch); !errors.Is(err, api.ErrNotStopped) {
		t.Errorf("PATCH while RUNNING: %v, want ErrNotStopped", err)
	}
	if err := a.ResetOffsets(ctx, "c"); !errors.Is(err, api.ErrNotStopped) {
		t.Errorf("DELETE while RUNNING: %v, want ErrNotStopped", err)
	}
	if err := a.ResetOffsets(ctx, "nope"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("DELETE of no connector: %v, want ErrNotFound", err)
	}

	if err := cn.SetTargetState(ctx, "c", coordinator.StateStopped); err != nil {
		t.Fatal(err)
	}
	if err := a.AlterOffsets(ctx, "c", patch); err != nil {
		t.Fatalf("PATCH while STOPPED: %v", err)
	}
	if got, err := a.ConnectorOffsets(ctx, "c"); err != nil || len(got) != 2 || !strings.Contains(string(got[0].Offset)+string(got[1].Offset), `"cluster_time":{"t":1700000000,"i":1}`) {
		t.Errorf("offsets after PATCH: %s, %v", got, err)
	}
	if err := a.ResetOffsets(ctx, "c"); err != nil {
		t.Fatalf("DELETE while STOPPED: %v", err)
	}
	if got, err := a.ConnectorOffsets(ctx, "c"); err != nil || len(got) != 0 {
		t.Errorf("offsets after DELETE: %s, %v", got, err)
	}
	if got, err := a.ConnectorOffsets(ctx, "other"); err != nil || len(got) != 1 {
		t.Errorf("the other connector's offsets after DELETE: %s, %v", got, err)
	}
	if len(cn.State().OffsetResets()) != 0 {
		t.Errorf("requests left pending: %+v", cn.State().OffsetResets())
	}

	// While a change is pending the connector stays STOPPED: its tasks could read the old
	// offsets.
	req, err := cn.RequestOffsetReset(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	for _, state := range []coordinator.TargetState{coordinator.StateRunning, coordinator.StatePaused} {
		if err := a.SetTargetState(ctx, "c", string(state)); !errors.Is(err, api.ErrConflict) {
			t.Errorf("%s while the offsets change: %v, want ErrConflict", state, err)
		}
	}
	if err := cn.CompleteOffsetReset(ctx, "c", req.ID); err != nil {
		t.Fatal(err)
	}
	if err := a.SetTargetState(ctx, "c", string(coordinator.StateRunning)); err != nil {
		t.Errorf("resume once the change is done: %v", err)
	}
}
