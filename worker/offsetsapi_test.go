package worker

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mongorelay/mongorelay/api"
	"github.com/mongorelay/mongorelay/tasks/offsets"
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
		wantErr                 string
	}{
		{name: "a resume token object", partition: shard, offset: `{"resume_token":{"_data":"` + token + `"}}`,
			wantKey: offsets.ShardKey("c", "shop", "orders", 1, 2), wantTS: 0x63515EAC, wantToken: token},
		{name: "a resume token string", partition: shard, offset: `{"resume_token":"` + token + `"}`,
			wantKey: offsets.ShardKey("c", "shop", "orders", 1, 2), wantTS: 0x63515EAC, wantToken: token},
		{name: "a cluster time", partition: shard, offset: `{"cluster_time":{"t":1700000000,"i":3}}`,
			wantKey: offsets.ShardKey("c", "shop", "orders", 1, 2), wantTS: 1700000000},
		{name: "null deletes", partition: shard, offset: `null`, wantKey: offsets.ShardKey("c", "shop", "orders", 1, 2)},
		{name: "a snapshot range may be deleted", partition: `{"db":"shop","coll":"orders","snapshot":"0-of-3"}`, offset: `null`,
			wantKey: offsets.SnapshotKey("c", "shop", "orders", 0, 3)},
		{name: "a snapshot range may not be set", partition: `{"db":"shop","coll":"orders","snapshot":"0-of-3"}`,
			offset: `{"cluster_time":{"t":1,"i":0}}`, wantErr: "can only be deleted"},
		{name: "both", partition: shard, offset: `{"resume_token":"` + token + `","cluster_time":{"t":1,"i":0}}`, wantErr: "one of"},
		{name: "neither", partition: shard, offset: `{}`, wantErr: "one of"},
		{name: "an unknown field", partition: shard, offset: `{"position":1}`, wantErr: "resume_token"},
		{name: "a bad token", partition: shard, offset: `{"resume_token":"zz"}`, wantErr: "resume token"},
		{name: "a bad shard", partition: `{"db":"shop","coll":"orders","shard":"2-of-2"}`, offset: `null`, wantErr: "0 <= i < n"},
		{name: "no collection", partition: `{"db":"shop","shard":"0-of-1"}`, offset: `null`, wantErr: "want"},
		{name: "a partition of another kind", partition: `{"kafka_topic":"t","kafka_partition":0}`, offset: `null`, wantErr: "want"},
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
			switch {
			case tc.wantTS == 0 && e.Value != nil:
				t.Errorf("value %+v, want a tombstone", e.Value)
			case tc.wantTS != 0 && (e.Value == nil || e.Value.ClusterTime == nil || e.Value.ClusterTime.T != tc.wantTS):
				t.Errorf("value %+v, want cluster time %d", e.Value, tc.wantTS)
			case tc.wantToken != "" && (e.Value.ResumeToken == nil || e.Value.ResumeToken.Data != tc.wantToken):
				t.Errorf("value %+v, want token %s", e.Value, tc.wantToken)
			case tc.wantToken == "" && e.Value != nil && e.Value.ResumeToken != nil:
				t.Errorf("value %+v, want no token", e.Value)
			}
		})
	}
}
