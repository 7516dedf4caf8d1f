package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/mongorelay/mongorelay/api"
	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/tasks/offsets"
)

// The offsets API (KIP-875) over the offsets topic (DESIGN.md 5): a partition is the object
// of an offsets key ({"db":..,"coll":..,"shard":"i-of-n"} or a snapshot range's "snapshot"),
// an offset its value. Changes are made by the leader while the connector is STOPPED: the
// coordinator records the request (which refuses any other state), the leader fences the
// connector's transactional ids so that no task still stopping can commit after it, writes
// the offsets and marks the request done.

// errNoOffsets is what a node without an offsets store (a test's) answers.
var errNoOffsets = errors.New("this node has no offsets store")

// ConnectorOffsets reads the offsets topic up to now, then lists the connector's offsets.
func (a nodeAPI) ConnectorOffsets(ctx context.Context, name string) ([]api.Offset, error) {
	if _, ok := a.c.node.State().Connector(name); !ok {
		return nil, fmt.Errorf("%w: connector %q", api.ErrNotFound, name)
	}
	store := a.c.offsets
	if store == nil {
		return nil, errNoOffsets
	}
	if !a.c.standalone() { // a standalone process's store has every commit: it made them
		if err := store.Refresh(ctx); err != nil {
			return nil, fmt.Errorf("read the offsets of connector %q: %w", name, err)
		}
	}
	var out []api.Offset
	for _, e := range store.List(name) {
		value, err := json.Marshal(shownOffset(e.Value))
		if err != nil {
			return nil, fmt.Errorf("encode offset %s: %w", e.Key, err)
		}
		out = append(out, api.Offset{Partition: partitionOf(e.Key), Offset: value})
	}
	return out, nil
}

// partitionOf is the object of k's bytes: ["<connector>",{...}] without the connector.
func partitionOf(k offsets.Key) json.RawMessage {
	var parts []json.RawMessage
	if err := json.Unmarshal(k.Bytes(), &parts); err != nil || len(parts) != 2 {
		panic(fmt.Sprintf("offset key %s does not decode: %v", k, err)) // Bytes always writes two elements
	}
	return parts[1]
}

// ResetOffsets deletes every offset of a STOPPED connector.
func (a nodeAPI) ResetOffsets(ctx context.Context, name string) error {
	return a.changeOffsets(ctx, name, func(store *offsets.Store) ([]offsets.Entry, error) {
		var tombstones []offsets.Entry
		for _, e := range store.List(name) {
			tombstones = append(tombstones, offsets.Entry{Key: e.Key})
		}
		return tombstones, nil
	})
}

// AlterOffsets writes the offsets given of a STOPPED connector.
func (a nodeAPI) AlterOffsets(ctx context.Context, name string, given []api.Offset) error {
	entries := make([]offsets.Entry, 0, len(given))
	for _, o := range given {
		e, err := offsetEntry(name, o)
		if err != nil {
			return fmt.Errorf("%w: %w", api.ErrBadRequest, err)
		}
		entries = append(entries, e)
	}
	return a.changeOffsets(ctx, name, func(*offsets.Store) ([]offsets.Entry, error) { return entries, nil })
}

// changeOffsets makes the change that entries returns to a STOPPED connector's offsets, on
// the leader.
func (a nodeAPI) changeOffsets(ctx context.Context, name string, entries func(*offsets.Store) ([]offsets.Entry, error)) error {
	n := a.c.node
	if !n.IsLeader() {
		return notLeader(n)
	}
	store := a.c.offsets
	if store == nil {
		return errNoOffsets
	}
	req, err := n.RequestOffsetReset(ctx, name)
	if err != nil {
		if errors.Is(err, coordinator.ErrNotStopped) {
			return fmt.Errorf("%w: %v", api.ErrNotStopped, err)
		}
		return apiError(err)
	}
	if cn, ok := n.State().Connector(name); ok {
		a.c.fenceTasks(ctx, cn, "offsets change")
	}
	if !a.c.standalone() {
		if err := store.Refresh(ctx); err != nil {
			return fmt.Errorf("read the offsets of connector %q: %w", name, err)
		}
	}
	change, err := entries(store)
	if err != nil {
		return err
	}
	if err := store.CommitMany(ctx, change); err != nil {
		return fmt.Errorf("write the offsets of connector %q: %w", name, err)
	}
	a.c.log.Info("connector offsets changed", "connector", name, "offsets", len(change))
	return apiError(n.CompleteOffsetReset(ctx, name, req.ID))
}

// offsetEntry reads one offset of a PATCH: a partition naming a collection shard or a
// snapshot range, and an offset that is null (deleting it) or as takenOffset reads it.
func offsetEntry(connector string, o api.Offset) (offsets.Entry, error) {
	if e, ok, err := sinkOffsetEntry(connector, o); ok {
		return e, err
	}
	var p struct {
		DB       string  `json:"db"`
		Coll     string  `json:"coll"`
		Shard    *string `json:"shard"`
		Snapshot *string `json:"snapshot"`
	}
	dec := json.NewDecoder(bytes.NewReader(o.Partition))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return offsets.Entry{}, fmt.Errorf(`partition %s: want {"db": "..", "coll": "..", "shard": "<i>-of-<n>"}: %w`, o.Partition, err)
	}
	k := offsets.Key{Connector: connector, DB: p.DB, Coll: p.Coll}
	slice := p.Shard
	if p.Snapshot != nil {
		k.Snapshot, slice = true, p.Snapshot
	}
	if p.DB == "" || p.Coll == "" || slice == nil || (p.Shard != nil && p.Snapshot != nil) {
		return offsets.Entry{}, fmt.Errorf(`partition %s: want {"db": "..", "coll": "..", "shard": "<i>-of-<n>"}`, o.Partition)
	}
	i, count, ok := strings.Cut(*slice, "-of-")
	var err1, err2 error
	k.Index, err1 = strconv.Atoi(i)
	k.Count, err2 = strconv.Atoi(count)
	if !ok || err1 != nil || err2 != nil || k.Count < 1 || k.Index < 0 || k.Index >= k.Count {
		return offsets.Entry{}, fmt.Errorf("partition %s: %q is not <i>-of-<n> with 0 <= i < n", o.Partition, *slice)
	}
	if raw := bytes.TrimSpace(o.Offset); len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return offsets.Entry{Key: k}, nil // deletes it
	}
	v, err := takenOffset(o.Offset, k.Snapshot)
	if err != nil {
		return offsets.Entry{}, fmt.Errorf("offset of %s: %w", o.Partition, err)
	}
	return offsets.Entry{Key: k, Value: v}, nil
}

// sinkOffsetEntry reads one offset of a PATCH when its partition is a sink's topic partition,
// as Kafka Connect takes it: {"kafka_topic": "..", "kafka_partition": N} and an offset that is
// null (deleting it) or {"kafka_offset": N}, the next offset to read (with the v and
// updated_ms GET shows, or without). ok is false for any other partition.
func sinkOffsetEntry(connector string, o api.Offset) (e offsets.Entry, ok bool, err error) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(o.Partition, &fields) != nil || fields["kafka_topic"] == nil {
		return offsets.Entry{}, false, nil
	}
	const want = `want {"kafka_topic": "..", "kafka_partition": N}`
	var p struct {
		Topic     string `json:"kafka_topic"`
		Partition *int32 `json:"kafka_partition"`
	}
	dec := json.NewDecoder(bytes.NewReader(o.Partition))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || p.Topic == "" || p.Partition == nil || *p.Partition < 0 {
		return offsets.Entry{}, true, fmt.Errorf("partition %s: %s", o.Partition, want)
	}
	k := offsets.PartitionKey(connector, p.Topic, *p.Partition)
	if raw := bytes.TrimSpace(o.Offset); len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return offsets.Entry{Key: k}, true, nil // deletes it
	}
	var v publicOffset
	dec = json.NewDecoder(bytes.NewReader(o.Offset))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil || v.KafkaOffset == nil || *v.KafkaOffset < 0 || v.ResumeToken != nil ||
		v.ClusterTime != nil || v.Snapshot != nil || v.TxnOpIndex != 0 {
		return offsets.Entry{}, true, fmt.Errorf(`offset of %s: want {"kafka_offset": N}, N >= 0`, o.Partition)
	}
	return offsets.Entry{Key: k, Value: &offsets.Value{Version: offsets.FormatVersion, KafkaOffset: v.KafkaOffset}}, true, nil
}

// publicOffset is an offset as the offsets API shows and takes it, so that GET's output is
// valid PATCH input (KIP-875). Its cluster_time is always the position *after which* the
// stream resumes: with a resume token, the time of the event the token names (the stream
// resumes after it, so the two must agree); alone, a time the user chose, or the time at which
// a snapshot's stream start was recorded, shown as the position just before it. Snapshot
// ranges show their copy progress, which PATCH takes back only as GET showed it.
type publicOffset struct {
	Version     int                  `json:"v,omitempty"`
	ResumeToken json.RawMessage      `json:"resume_token,omitempty"`
	ClusterTime *offsets.ClusterTime `json:"cluster_time,omitempty"`
	TxnOpIndex  int                  `json:"txn_op_index,omitempty"`
	Snapshot    *offsets.Snapshot    `json:"snapshot,omitempty"`
	// KafkaOffset is a sink's next offset to read (Kafka Connect's sink offset).
	KafkaOffset *int64 `json:"kafka_offset,omitempty"`
	UpdatedMs   int64  `json:"updated_ms,omitempty"`
}

// shownOffset is v as the offsets API shows it.
func shownOffset(v *offsets.Value) publicOffset {
	p := publicOffset{Version: v.Version, TxnOpIndex: v.TxnOpIndex, Snapshot: v.Snapshot, KafkaOffset: v.KafkaOffset, UpdatedMs: v.UpdatedMs}
	switch {
	case v.ResumeToken != nil:
		p.ResumeToken, _ = json.Marshal(v.ResumeToken)
		p.ClusterTime = v.ClusterTime
	case v.ClusterTime != nil:
		before := justBefore(*v.ClusterTime)
		p.ClusterTime = &before
	}
	return p
}

// takenOffset reads an offset of a PATCH: a resume token ({"resume_token": {"_data": ".."}}
// or its _data as a string, with its own cluster_time and txn_op_index if given), or a cluster
// time alone ({"cluster_time": {"t": .., "i": ..}}) after which the stream resumes. A snapshot
// range's offset (snapshot true) is taken only with its copy progress, as GET shows it.
func takenOffset(raw json.RawMessage, snapshot bool) (*offsets.Value, error) {
	var p publicOffset
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf(`want {"resume_token": {"_data": ".."}} or {"cluster_time": {"t": .., "i": ..}}: %w`, err)
	}
	if p.Version > offsets.FormatVersion {
		return nil, fmt.Errorf("v %d is newer than this version's offsets (%d): set it with a node of that version", p.Version, offsets.FormatVersion)
	}
	if snapshot != (p.Snapshot != nil) {
		if snapshot {
			return nil, errors.New("a snapshot range's offset can only be deleted (null) or given back as GET shows it, with its snapshot progress")
		}
		return nil, errors.New("snapshot progress belongs to a snapshot range's partition, not to a shard's")
	}
	if bytes.Equal(bytes.TrimSpace(p.ResumeToken), []byte("null")) {
		p.ResumeToken = nil // as the offsets topic's value shows none
	}
	v := &offsets.Value{Version: offsets.FormatVersion, Snapshot: p.Snapshot}
	switch {
	case p.ResumeToken != nil:
		var data string
		var doc offsets.ResumeToken
		if json.Unmarshal(p.ResumeToken, &data) != nil {
			if err := json.Unmarshal(p.ResumeToken, &doc); err != nil || doc.Data == "" {
				return nil, fmt.Errorf(`resume_token %s is neither {"_data": ".."} nor a string`, p.ResumeToken)
			}
			data = doc.Data
		}
		at, err := offsets.ResumeAt(data)
		if err != nil {
			return nil, fmt.Errorf("resume_token %q: %w", data, err)
		}
		if p.ClusterTime != nil && *p.ClusterTime != *at.ClusterTime {
			return nil, fmt.Errorf(`cluster_time {"t":%d,"i":%d} is not the resume token's {"t":%d,"i":%d}: `+
				"give the token alone, or a cluster_time alone", p.ClusterTime.T, p.ClusterTime.I, at.ClusterTime.T, at.ClusterTime.I)
		}
		if p.TxnOpIndex != 0 && p.TxnOpIndex != at.TxnOpIndex {
			return nil, fmt.Errorf("txn_op_index %d is not the resume token's (%d): give the token alone", p.TxnOpIndex, at.TxnOpIndex)
		}
		v.ResumeToken, v.ClusterTime, v.TxnOpIndex = at.ResumeToken, at.ClusterTime, at.TxnOpIndex
	case p.ClusterTime != nil:
		if p.ClusterTime.T == 0 {
			return nil, errors.New("cluster_time.t is 0: give the seconds of a cluster time")
		}
		if p.TxnOpIndex != 0 {
			return nil, errors.New("txn_op_index goes with a resume_token: give the token, or the cluster_time alone")
		}
		next := justAfter(*p.ClusterTime)
		v.ClusterTime = &next
	case !snapshot:
		return nil, errors.New("give one of resume_token and cluster_time")
	}
	return v, nil
}

// justAfter is the first cluster time after t: a stream opened at it (startAtOperationTime,
// inclusive) resumes after t.
func justAfter(t offsets.ClusterTime) offsets.ClusterTime {
	if t.I == math.MaxUint32 {
		return offsets.ClusterTime{T: t.T + 1}
	}
	return offsets.ClusterTime{T: t.T, I: t.I + 1}
}

// justBefore undoes justAfter.
func justBefore(t offsets.ClusterTime) offsets.ClusterTime {
	if t.I == 0 {
		return offsets.ClusterTime{T: t.T - 1, I: math.MaxUint32}
	}
	return offsets.ClusterTime{T: t.T, I: t.I - 1}
}
