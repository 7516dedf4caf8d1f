package offsets

import (
	"bytes"
	"encoding/json"

	"github.com/mongorelay/mongorelay/internal/kafkatopic"
)

// stampConnector is the first element of a stamp key,
//
//	["mongorelay.cluster",{"cluster_id":"<cluster.id>","stamp":"<stamp id>"}]
//
// which ParseKey never accepts (it has no db, coll or shard): a stamp is never an offset. Each
// stamp written has a key of its own (a random stamp id), so compaction never drops the first
// one for a later stamp of the same cluster.
const stampConnector = "mongorelay.cluster"

// StampKey is the key of a stamp of cluster id in the offsets topic; stamp tells one stamp
// from another (kafkatopic.Claim gives each a random one).
func StampKey(clusterID, stamp string) []byte {
	b := append([]byte(`[`), appendString(nil, stampConnector)...)
	b = append(b, `,{"cluster_id":`...)
	b = appendString(b, clusterID)
	b = append(b, `,"stamp":`...)
	b = appendString(b, stamp)
	return append(b, `}]`...)
}

// StampCluster returns the cluster id of a stamp key; ok is false for any other key.
func StampCluster(key []byte) (clusterID string, ok bool) {
	if !bytes.HasPrefix(key, []byte(`["mongorelay.cluster",{"cluster_id":`)) {
		return "", false
	}
	var parts []json.RawMessage
	if json.Unmarshal(key, &parts) != nil || len(parts) != 2 {
		return "", false
	}
	var f struct {
		ClusterID string `json:"cluster_id"`
		Stamp     string `json:"stamp"`
	}
	if json.Unmarshal(parts[1], &f) != nil || !bytes.Equal(StampKey(f.ClusterID, f.Stamp), key) {
		return "", false
	}
	return f.ClusterID, true
}

// Stamp describes the stamps of the offsets topic named topic.
func Stamp(topic string) kafkatopic.Stamp {
	return kafkatopic.Stamp{Topic: topic, ConfigKey: "offsets.topic", Key: StampKey, ClusterOf: StampCluster}
}
