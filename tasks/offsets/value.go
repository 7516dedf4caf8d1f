package offsets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/tasks/resumetoken"
)

// FormatVersion is the value format this build writes, in the "v" field.
// Within a version fields are only ever added, and readers ignore fields they
// do not know; a change an older reader would misread gets a new version,
// which older readers refuse instead of guessing.
const FormatVersion = 1

// Value is what a key's record holds, as JSON:
//
//	{"v":1,
//	 "resume_token":{"_data":"8263..."} | null,
//	 "cluster_time":{"t":1666193824,"i":1} | null,
//	 "txn_op_index":0,
//	 "snapshot":{"min_id":"..","max_id":"..","last_id":"..","copied":0,"done":false} | null,
//	 "kafka_offset":42,  (a sink's key only)
//	 "incremental":{"handled":3,"request":4,"last_id":"..","copied":0},
//	 "updated_ms":1721140162914}
//
// A shard key holds its committed stream position; cluster_time and
// txn_op_index repeat the token's position for people and for reopening at
// startAtOperationTime when the token itself is refused. A snapshot key holds
// the range's copy progress and, in resume_token/cluster_time, the stream
// start point recorded before the copy began (a cluster time alone when the
// start point was an operation time rather than a token). A shard key's
// incremental holds the progress of the ad-hoc snapshots of its collection
// copied while it streams (absent before the shard's first stream commit).
type Value struct {
	Version     int          `json:"v"`
	ResumeToken *ResumeToken `json:"resume_token"`
	ClusterTime *ClusterTime `json:"cluster_time"`
	TxnOpIndex  int          `json:"txn_op_index"`
	Snapshot    *Snapshot    `json:"snapshot"`
	// KafkaOffset is a sink's topic partition's next offset to read (Kafka
	// Connect's sink offset); absent in a source's offsets.
	KafkaOffset *int64       `json:"kafka_offset,omitempty"`
	Incremental *Incremental `json:"incremental,omitempty"`
	// UpdatedMs is the wall-clock time of the write, in Unix milliseconds.
	UpdatedMs int64 `json:"updated_ms"`
}

// ResumeToken is a change stream resume token as the server sends it.
type ResumeToken struct {
	Data string `json:"_data"`
}

// ClusterTime is a BSON timestamp: seconds and the increment within them.
type ClusterTime struct {
	T uint32 `json:"t"`
	I uint32 `json:"i"`
}

// Snapshot is the progress of one snapshot range. _id values are canonical
// extended JSON (EncodeID); an empty string means none.
type Snapshot struct {
	// MinID (inclusive) and MaxID (exclusive) bound the range, fixed when
	// the collection was split so a restart copies the same ranges; empty
	// leaves that side open.
	MinID string `json:"min_id"`
	MaxID string `json:"max_id"`
	// LastID is the _id of the last document copied and delivered.
	LastID string `json:"last_id"`
	// Copied counts the documents copied so far.
	Copied int64 `json:"copied"`
	// Done is set once the whole range is copied.
	Done bool `json:"done"`
}

// Incremental is a shard's progress through the ad-hoc snapshot requests of
// its connector (POST /connectors/{name}/snapshot, the signal collection),
// which it copies in chunks while it streams.
type Incremental struct {
	// Handled is the id of the newest request this shard is done with: a
	// request with a greater id naming its collection is still to copy.
	Handled uint64 `json:"handled"`
	// Request is the id of the request being copied; 0 when none is.
	Request uint64 `json:"request,omitempty"`
	// LastID is the _id (EncodeID) of the last document of the last chunk
	// delivered; empty before the first.
	LastID string `json:"last_id,omitempty"`
	// Copied counts the documents of this shard the request has delivered.
	Copied int64 `json:"copied,omitempty"`
}

// ResumeAt returns the value of a stream position: the token's _data, with
// its decoded cluster time and txnOpIndex alongside.
func ResumeAt(data string) (*Value, error) {
	pos, err := resumetoken.Decode(data)
	if err != nil {
		return nil, err
	}
	return &Value{
		Version:     FormatVersion,
		ResumeToken: &ResumeToken{Data: data},
		ClusterTime: &ClusterTime{T: pos.ClusterTime.T, I: pos.ClusterTime.I},
		TxnOpIndex:  pos.TxnOpIndex,
	}, nil
}

// Position returns where v points in the stream: the token's position, or
// when there is only a cluster time, a high-water mark at it (the point a
// stream opened with startAtOperationTime starts from).
func (v *Value) Position() (resumetoken.Position, error) {
	switch {
	case v.ResumeToken != nil:
		return resumetoken.Decode(v.ResumeToken.Data)
	case v.ClusterTime != nil:
		return resumetoken.Position{
			ClusterTime: bson.Timestamp{T: v.ClusterTime.T, I: v.ClusterTime.I},
			TokenType:   resumetoken.HighWaterMark,
		}, nil
	default:
		return resumetoken.Position{}, errors.New("offset has neither a resume token nor a cluster time")
	}
}

// DecodeValue parses a record value. Versions newer than FormatVersion are
// refused: they were written by a newer mongorelay, and reading them with
// older rules could move a task to the wrong place.
func DecodeValue(b []byte) (*Value, error) {
	var v Value
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("decode offset value: %w", err)
	}
	switch {
	case v.Version < 1:
		return nil, fmt.Errorf("decode offset value %s: no format version", b)
	case v.Version > FormatVersion:
		return nil, fmt.Errorf("decode offset value: format version %d was written by a newer mongorelay (this one reads up to %d)", v.Version, FormatVersion)
	}
	return &v, nil
}

// encode returns v as JSON. It cannot fail: Value holds only strings,
// numbers, booleans and pointers to structs of them.
func (v *Value) encode() []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("offsets: encoding a Value failed: %v", err))
	}
	return b
}

// clone returns a deep copy, so callers never share a value with the store.
func (v *Value) clone() *Value {
	if v == nil {
		return nil
	}
	c := *v
	if v.ResumeToken != nil {
		t := *v.ResumeToken
		c.ResumeToken = &t
	}
	if v.ClusterTime != nil {
		t := *v.ClusterTime
		c.ClusterTime = &t
	}
	if v.Snapshot != nil {
		s := *v.Snapshot
		c.Snapshot = &s
	}
	if v.KafkaOffset != nil {
		o := *v.KafkaOffset
		c.KafkaOffset = &o
	}
	if v.Incremental != nil {
		inc := *v.Incremental
		c.Incremental = &inc
	}
	return &c
}

// EncodeID returns an _id as canonical extended JSON, the form Snapshot
// stores; equal _ids always give equal strings.
func EncodeID(id bson.RawValue) (string, error) {
	b, err := bson.MarshalExtJSON(bson.D{{Key: "_id", Value: id}}, true, false)
	if err != nil {
		return "", fmt.Errorf("encode _id as extended JSON: %w", err)
	}
	inner, ok := bytes.CutPrefix(b, []byte(`{"_id":`))
	if !ok || len(inner) == 0 || inner[len(inner)-1] != '}' {
		return "", fmt.Errorf("encode _id as extended JSON: unexpected output %s", b)
	}
	return string(inner[:len(inner)-1]), nil
}

// DecodeID parses an _id written by EncodeID.
func DecodeID(s string) (bson.RawValue, error) {
	var doc bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(`{"_id":`+s+`}`), true, &doc); err != nil {
		return bson.RawValue{}, fmt.Errorf("decode _id %s from extended JSON: %w", s, err)
	}
	id, err := doc.LookupErr("_id")
	if err != nil {
		return bson.RawValue{}, fmt.Errorf("decode _id %s from extended JSON: %w", s, err)
	}
	return id, nil
}
