package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
		value, err := json.Marshal(e.Value)
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

// offsetEntry reads one offset of a PATCH: a partition naming a collection shard (or a
// snapshot range, whose offset may only be deleted) and an offset that is null, a resume
// token ({"resume_token": {"_data": "..."}} or its _data as a string), a cluster time
// ({"cluster_time": {"t": .., "i": ..}}), or an offset as GET shows it (patchForm).
func offsetEntry(connector string, o api.Offset) (offsets.Entry, error) {
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
	if k.Snapshot {
		if v, ok := copiedRange(o.Offset); ok {
			return offsets.Entry{Key: k, Value: v}, nil
		}
		return offsets.Entry{}, fmt.Errorf("partition %s: a snapshot range's offset can only be deleted (null), or given back as GET shows it once the range is copied (done)", o.Partition)
	}
	offset, err := patchForm(o.Partition, o.Offset)
	if err != nil {
		return offsets.Entry{}, err
	}
	var v struct {
		ResumeToken json.RawMessage      `json:"resume_token"`
		ClusterTime *offsets.ClusterTime `json:"cluster_time"`
	}
	dec = json.NewDecoder(bytes.NewReader(offset))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return offsets.Entry{}, fmt.Errorf(`offset of %s: want {"resume_token": {"_data": ".."}} or {"cluster_time": {"t": .., "i": ..}}: %w`, o.Partition, err)
	}
	switch {
	case v.ResumeToken != nil && v.ClusterTime == nil:
		var data string
		var doc offsets.ResumeToken
		if json.Unmarshal(v.ResumeToken, &data) != nil {
			if err := json.Unmarshal(v.ResumeToken, &doc); err != nil || doc.Data == "" {
				return offsets.Entry{}, fmt.Errorf(`offset of %s: resume_token %s is neither {"_data": ".."} nor a string`, o.Partition, v.ResumeToken)
			}
			data = doc.Data
		}
		value, err := offsets.ResumeAt(data)
		if err != nil {
			return offsets.Entry{}, fmt.Errorf("offset of %s: resume_token %q: %w", o.Partition, data, err)
		}
		return offsets.Entry{Key: k, Value: value}, nil
	case v.ClusterTime != nil && v.ResumeToken == nil:
		if v.ClusterTime.T == 0 {
			return offsets.Entry{}, fmt.Errorf("offset of %s: cluster_time.t is 0: give the seconds of a cluster time", o.Partition)
		}
		return offsets.Entry{Key: k, Value: &offsets.Value{Version: offsets.FormatVersion, ClusterTime: v.ClusterTime}}, nil
	}
	return offsets.Entry{}, fmt.Errorf(`offset of %s: give one of resume_token and cluster_time`, o.Partition)
}

// patchForm turns an offset as GET .../offsets shows it (the offsets topic's value: v,
// resume_token, cluster_time, txn_op_index, snapshot, updated_ms) into the form PATCH takes,
// so that what GET answers is valid PATCH input (KIP-875): its resume token when it has one,
// else its cluster time. Any other offset is returned as it is, for offsetEntry to read. A
// value holding snapshot progress is refused: PATCH sets a position only, and would drop it.
func patchForm(partition, offset json.RawMessage) (json.RawMessage, error) {
	var shown struct {
		Version     *int                 `json:"v"`
		ResumeToken *offsets.ResumeToken `json:"resume_token"`
		ClusterTime *offsets.ClusterTime `json:"cluster_time"`
		TxnOpIndex  int                  `json:"txn_op_index"`
		Snapshot    json.RawMessage      `json:"snapshot"`
		UpdatedMs   int64                `json:"updated_ms"`
	}
	dec := json.NewDecoder(bytes.NewReader(offset))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&shown); err != nil || shown.Version == nil {
		return offset, nil
	}
	if s := bytes.TrimSpace(shown.Snapshot); len(s) > 0 && !bytes.Equal(s, []byte("null")) {
		return nil, fmt.Errorf(`offset of %s: holds snapshot progress, which PATCH cannot set: give {"resume_token": ..} or {"cluster_time": ..} alone, or wait for the snapshot to finish`, partition)
	}
	switch {
	case shown.ResumeToken != nil:
		return json.Marshal(map[string]any{"resume_token": shown.ResumeToken})
	case shown.ClusterTime != nil:
		return json.Marshal(map[string]any{"cluster_time": shown.ClusterTime})
	}
	return offset, nil
}

// copiedRange reads a snapshot range's offset as GET shows it, when the range is copied
// (done): writing it back changes nothing the tasks read, so that GET's output stays valid
// PATCH input after a snapshot. A range still being copied only its tasks may write.
func copiedRange(offset json.RawMessage) (*offsets.Value, bool) {
	var v offsets.Value
	dec := json.NewDecoder(bytes.NewReader(offset))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil || v.Version != offsets.FormatVersion || v.Snapshot == nil || !v.Snapshot.Done {
		return nil, false
	}
	return &v, true
}
