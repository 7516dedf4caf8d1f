package offsets

import (
	"bytes"
	"encoding/json"

	"github.com/mongorelay/mongorelay/internal/kafkatopic"
)

// stampConnector is the first element of a stamp key,
//
//	["mongorelay.cluster",{"cluster_id":"<cluster.id>"}]
//
// which ParseKey never accepts (it has no db, coll or shard): a stamp is never an offset.
const stampConnector = "mongorelay.cluster"

// StampKey is the key of cluster id's stamp in the offsets topic.
func StampKey(clusterID string) []byte {
	b := append([]byte(`[`), appendString(nil, stampConnector)...)
	b = append(b, `,{"cluster_id":`...)
	b = appendString(b, clusterID)
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
	}
	if json.Unmarshal(parts[1], &f) != nil || !bytes.Equal(StampKey(f.ClusterID), key) {
		return "", false
	}
	return f.ClusterID, true
}

func stamp(topic string) kafkatopic.Stamp {
	return kafkatopic.Stamp{Topic: topic, ConfigKey: "offsets.topic", Key: StampKey, ClusterOf: StampCluster}
}
