package kafkatopic

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// StampPartition is the partition that holds a topic's stamps: one partition, so that
// "first" has a meaning.
const StampPartition = 0

// StampValue is the value of a stamp record.
type StampValue struct {
	ClusterID string `json:"cluster_id"`
	StampedMs int64  `json:"stamped_ms"`
}

// Stamp describes one topic's stamp records. A stamp record says that a cluster uses the
// topic; its key names the cluster and a random stamp id (so compaction keeps every stamp ever
// written, the first above all) and can never be one of the topic's own keys. The topic belongs to the cluster of its first stamp: the one
// with the lowest offset in StampPartition.
type Stamp struct {
	Topic string
	// ConfigKey is the worker key that names the topic (offsets.topic, schemas.topic), for
	// the error telling how to give a cluster its own.
	ConfigKey string
	// Key encodes the key of a stamp of a cluster id with a stamp id; ClusterOf decodes one,
	// ok false for a key that is not a stamp.
	Key       func(clusterID, stamp string) []byte
	ClusterOf func(key []byte) (clusterID string, ok bool)
}

// OtherClusterError means the topic belongs to another cluster.
type OtherClusterError struct {
	Topic, ConfigKey string
	Owner, Ours      string
}

func (e *OtherClusterError) Error() string {
	return fmt.Sprintf("topic %s is stamped by cluster %q, not by this node's cluster.id %q: "+
		"two clusters must not share it (set %s to a topic of this cluster's own, e.g. %s-%s)",
		e.Topic, e.Owner, e.Ours, e.ConfigKey, e.Topic, e.Ours)
}

// stampReadIdle is how long a read of the stamp partition waits for more records before it
// takes the partition as read: a compacted-away tail yields no record to reach the end with.
const stampReadIdle = 2 * time.Second

// Claim makes sure the topic belongs to cluster ours: it reads the first stamp of the
// stamp partition; with none (a new topic, or one written by a version that did not stamp),
// it writes ours and reads again, so that of two clusters racing the one whose stamp landed
// first wins. It returns an *OtherClusterError when the topic belongs to another cluster.
// clientOpts say how to reach Kafka (seed brokers, TLS, SASL).
func Claim(ctx context.Context, clientOpts []kgo.Opt, st Stamp, ours string) error {
	owner, found, err := firstStamp(ctx, clientOpts, st, -1)
	if err != nil {
		return err
	}
	if !found {
		value, _ := json.Marshal(StampValue{ClusterID: ours, StampedMs: time.Now().UnixMilli()})
		cl, err := kgo.NewClient(append(append([]kgo.Opt{}, clientOpts...),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerLinger(0))...)
		if err != nil {
			return fmt.Errorf("stamp topic %s: new Kafka client: %w", st.Topic, err)
		}
		r := &kgo.Record{Topic: st.Topic, Partition: StampPartition, Key: st.Key(ours, stampID()), Value: value}
		err = cl.ProduceSync(ctx, r).FirstErr()
		cl.Close()
		if err != nil {
			return fmt.Errorf("stamp topic %s with cluster %q: %w", st.Topic, ours, err)
		}
		if owner, found, err = firstStamp(ctx, clientOpts, st, r.Offset); err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("stamp topic %s: the stamp written at offset %d was not read back", st.Topic, r.Offset)
		}
	}
	if owner != ours {
		return &OtherClusterError{Topic: st.Topic, ConfigKey: st.ConfigKey, Owner: owner, Ours: ours}
	}
	return nil
}

// Owner returns the cluster of the topic's first stamp; found is false for a topic with no
// stamp (or none yet).
func Owner(ctx context.Context, clientOpts []kgo.Opt, st Stamp) (owner string, found bool, err error) {
	return firstStamp(ctx, clientOpts, st, -1)
}

// firstStamp reads the stamp partition from its start up to its first stamp. written is the
// offset of a stamp this node has written (-1: none), which the read reaches at the latest;
// without one, the read ends at the partition's end.
func firstStamp(ctx context.Context, clientOpts []kgo.Opt, st Stamp, written int64) (owner string, found bool, err error) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, clientOpts...), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{st.Topic: {StampPartition: kgo.NewOffset().AtStart()}}))...)
	if err != nil {
		return "", false, fmt.Errorf("read the stamps of topic %s: new Kafka client: %w", st.Topic, err)
	}
	defer cl.Close()
	end := written + 1
	if written < 0 {
		if end, err = endOffset(ctx, cl, st.Topic); err != nil {
			return "", false, fmt.Errorf("read the stamps of topic %s: %w", st.Topic, err)
		}
	}
	next := int64(0)
	for next < end {
		pctx, cancel := context.WithTimeout(ctx, stampReadIdle)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return "", false, fmt.Errorf("read the stamps of topic %s: %w", st.Topic, err)
		}
		if fs.Empty() || errors.Is(fs.Err0(), context.DeadlineExceeded) {
			if written >= 0 {
				continue // the stamp written is there: wait for it
			}
			// Nothing more came: the rest was compacted away (or the broker was slow, and the
			// stamp Claim writes next loses to the earlier one when read back).
			return "", false, nil
		}
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				return "", false, fmt.Errorf("read the stamps of topic %s: %w", st.Topic, fe.Err)
			}
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			next = r.Offset + 1
			if r.Attrs.IsControl() {
				continue
			}
			if id, ok := st.ClusterOf(r.Key); ok {
				return id, true, nil
			}
		}
	}
	return "", false, nil
}

// stampID is a random id that gives a stamp a key of its own.
func stampID() string {
	return rand.Text()[:16]
}

// endOffset returns the stamp partition's end offset, retrying for up to NewTopicWait while
// a topic just created has no leader yet.
func endOffset(ctx context.Context, cl *kgo.Client, topic string) (int64, error) {
	deadline := time.Now().Add(NewTopicWait)
	for {
		ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
		var e kadm.ListedOffset
		if err == nil {
			var ok bool
			if e, ok = ends.Lookup(topic, StampPartition); !ok {
				err = kerr.UnknownTopicOrPartition
			} else {
				err = e.Err
			}
		}
		if err == nil {
			return e.Offset, nil
		}
		if !kerr.IsRetriable(err) || time.Now().After(deadline) {
			return 0, fmt.Errorf("list end offsets: %w", err)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
